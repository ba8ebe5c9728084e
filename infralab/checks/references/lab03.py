"""Lab 03's references: the worst row cosine, the crossover model, the best batch, int8."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

INT8_BAR = 0.98  # the course's bar for keeping int8


def worst_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rows = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(rows.min())


def predict_crossover(
    hiddens: Sequence[int],
    batch: int,
    layers: int,
    cpu_overhead_ms: float,
    gpu_overhead_ms: float,
    cpu_gflops: float,
    gpu_gflops: float,
) -> int | None:
    for h in sorted(hiddens):
        flops = 2 * batch * h * h * layers
        cpu = cpu_overhead_ms + flops / (cpu_gflops * 1e9) * 1e3
        gpu = gpu_overhead_ms + flops / (gpu_gflops * 1e9) * 1e3
        if gpu < cpu:
            return h
    return None


def best_batch(sweep: Any) -> tuple[int, float]:
    """The fastest batch size of a sweep, and its sentences/s."""
    by_batch = sweep.groupby("batch")["sentences_per_s"].max()
    best = int(by_batch.idxmax())
    return best, float(by_batch[best])


def keep_int8(worst: float) -> bool:
    return worst >= INT8_BAR
