"""Timing harness: warm-up, repeats, percentiles.

Shared machines drift, so every comparison the kit makes is two measurements in one run;
this module only makes each single measurement honest (warm-up excluded, wall clock,
percentiles rather than a mean that one slow outlier can move).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from infralab.core.errors import InfralabError


class TimingError(ValueError, InfralabError):
    """A timing asked for with settings that cannot measure anything."""


# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "Timing",
    "measure",
    "percentiles",
]


def percentiles(samples: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """Percentiles of ``samples`` keyed ``p50``, ``p95``...; NaN when there are none."""
    arr = np.asarray(samples, dtype=float)
    if arr.size == 0:
        return {f"p{q:g}": float("nan") for q in qs}
    return {f"p{q:g}": float(np.percentile(arr, q)) for q in qs}


@dataclass
class Timing:
    """Seconds per call of one measured function, and what that means per item."""

    label: str
    seconds: list[float]
    items_per_call: int = 1

    @property
    def total_s(self) -> float:
        return float(sum(self.seconds))

    @property
    def median_s(self) -> float:
        return float(np.median(self.seconds))

    @property
    def items_per_s(self) -> float:
        """Throughput from total time: robust to per-call jitter."""
        return self.items_per_call * len(self.seconds) / self.total_s if self.total_s else 0.0

    def summary(self) -> dict[str, float | str | int]:
        pct = percentiles(self.seconds)
        return {
            "label": self.label,
            "calls": len(self.seconds),
            "items_per_call": self.items_per_call,
            "p50_ms": pct["p50"] * 1e3,
            "p95_ms": pct["p95"] * 1e3,
            "p99_ms": pct["p99"] * 1e3,
            "items_per_s": self.items_per_s,
        }

    def to_dict(self) -> dict:
        return asdict(self)


def measure(
    fn: Callable[[], object],
    *,
    label: str = "",
    items_per_call: int = 1,
    warmup: int = 2,
    repeats: int = 10,
    min_time_s: float = 0.0,
    max_time_s: float | None = None,
) -> Timing:
    """Call ``fn`` ``warmup`` times unmeasured, then at least ``repeats`` times measured.

    ``min_time_s`` keeps measuring until that much time has passed (for fast functions);
    ``max_time_s`` stops early after at least one measured call (for slow ones).
    """
    if repeats < 1:
        # builtin on purpose: timing sits beside infralab.core.errors in the layer contract
        # (pyproject [tool.importlinter]) and may not import it
        raise TimingError(
            "repeats must be at least 1",
            hint="Pass repeats=5 (or more): a timing needs at least one measured run.",
        )
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        if max_time_s is not None and elapsed >= max_time_s:
            break
        if len(samples) >= repeats and elapsed >= min_time_s:
            break
    return Timing(label=label, seconds=samples, items_per_call=items_per_call)
