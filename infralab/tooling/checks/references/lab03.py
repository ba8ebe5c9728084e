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


# ---------------------------------------------------------------- int8 by hand
def quantize_int8(x: Any) -> tuple[np.ndarray, float, int]:
    """Per-tensor affine int8: the range [min(x, 0), max(x, 0)] onto [-128, 127]."""
    x = np.asarray(x, dtype=np.float64)
    lo = min(float(x.min()), 0.0) if x.size else 0.0
    hi = max(float(x.max()), 0.0) if x.size else 0.0
    scale = (hi - lo) / 255 if hi > lo else 1.0
    zero_point = int(np.clip(-128 - np.round(lo / scale), -128, 127))
    q = np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)
    return q, scale, zero_point


def dequantize(q: Any, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale


def int8_matmul(a: Any, b: Any) -> np.ndarray:
    """Both sides quantized at call time; integer products summed exactly, then one rescale."""
    qa, sa, za = quantize_int8(a)
    qb, sb, zb = quantize_int8(b)
    acc = (qa.astype(np.int64) - za) @ (qb.astype(np.int64) - zb)
    return acc * (sa * sb)
