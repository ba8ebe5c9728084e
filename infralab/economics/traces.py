"""Request traces and a scale-to-zero simulation: who waits for a cold start, and what avoids it.

A serverless platform keeps an idle instance warm for a while (the keep-alive window) and
then reclaims it; the next request after that waits for a cold start. How often that
happens depends on the shape of the traffic, not only its volume: a steady trickle, a
day-night cycle and sudden bursts with the same daily total behave very differently.
This module makes seeded traces of those three shapes and replays them against a
keep-alive policy, with an optional number of always-warm (provisioned) instances.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError
from infralab.economics.costs.pricing import HOURS_PER_MONTH

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "KINDS",
    "make_trace",
    "provisioned_cost",
    "simulate_keep_alive",
]


DAY_S = 86_400.0
MAX_TRACE_REQUESTS = 5_000_000
KINDS = ("steady", "diurnal", "bursty")


class TraceError(ValueError, InfralabError):
    """Bad input to a trace or the keep-alive simulation; the message names the value."""

    hint = "make_trace's docstring (help(make_trace)) lists each argument and its range."


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceError(
            f"{name} must be a finite number, got {value!r}",
            hint=f"Pass {name} as a plain int or float (seconds or requests per second).",
        )
    if value < 0 or (value == 0 and not allow_zero):
        raise TraceError(
            f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}",
            hint=f"Use a {name} {'of 0 or more' if allow_zero else 'above 0'}.",
        )
    return float(value)


def _poisson(rng: np.random.Generator, rate: float, start: float, end: float) -> np.ndarray:
    n = rng.poisson(rate * (end - start))
    return np.sort(rng.uniform(start, end, size=n))


def _diurnal(
    rng: np.random.Generator, rate: float, period: float, peak_to_mean: float
) -> np.ndarray:
    """A day-shaped rate (peak mid-afternoon), drawn by thinning a Poisson trace at the peak rate."""
    if not 1 <= peak_to_mean < 2:
        raise TraceError(
            f"peak_to_mean must be in [1, 2), got {peak_to_mean!r}",
            hint="peak_to_mean=1 is flat; 1.8 (the default) is a strong afternoon peak.",
        )
    amp = peak_to_mean - 1
    candidates = _poisson(rng, rate * peak_to_mean, 0.0, period)
    # Thinning: keep each candidate with probability rate(t) / peak rate.
    phase = 2 * np.pi * (candidates / DAY_S - 0.375)  # peak at 15:00
    keep = rng.uniform(size=candidates.size) < (1 + amp * np.sin(phase)) / peak_to_mean
    return candidates[keep]


def _bursty(
    rng: np.random.Generator,
    rate: float,
    period: float,
    *,
    burst_share: float,
    bursts_per_hour: float,
    burst_s: float,
) -> np.ndarray:
    """A low background plus random bursts that carry ``burst_share`` of all requests."""
    if not 0 <= burst_share < 1:
        raise TraceError(
            f"burst_share must be in [0, 1), got {burst_share!r}",
            hint="burst_share is the share of requests that arrive in bursts, e.g. 0.8.",
        )
    _positive("bursts_per_hour", bursts_per_hour)
    _positive("burst_s", burst_s)
    starts = _poisson(rng, bursts_per_hour / 3600.0, 0.0, period)
    lengths = rng.exponential(burst_s, size=starts.size)
    parts = [_poisson(rng, rate * (1 - burst_share), 0.0, period)]
    total_burst = float(np.minimum(lengths, period - starts).sum())
    if total_burst > 0 and burst_share > 0:
        burst_rate = rate * burst_share * period / total_burst
        for s, length in zip(starts, lengths, strict=True):
            parts.append(_poisson(rng, burst_rate, s, min(s + length, period)))
    return np.sort(np.concatenate(parts))


def make_trace(
    kind: str,
    *,
    mean_rps: float,
    period_s: float = DAY_S,
    seed: int = 0,
    peak_to_mean: float = 1.8,
    burst_share: float = 0.8,
    bursts_per_hour: float = 1.0,
    burst_s: float = 120.0,
) -> np.ndarray:
    """Sorted request times (seconds from 0) over ``period_s``, averaging ``mean_rps``.

    - ``steady``: independent users at a constant rate (Poisson).
    - ``diurnal``: the rate follows the day, peaking mid-afternoon at ``peak_to_mean`` times
      the mean and falling near ``2 - peak_to_mean`` times it at night.
    - ``bursty``: a low background plus bursts (about ``bursts_per_hour``, each lasting about
      ``burst_s``) that carry ``burst_share`` of all requests, like a batch job or a
      campaign.
    The same ``seed`` gives the same trace.
    """
    if kind not in KINDS:
        raise TraceError(
            f"kind must be one of {', '.join(KINDS)}; got {kind!r}",
            hint="infralab.economics.traces.KINDS lists the trace shapes: 'steady', 'diurnal', 'bursty'.",
        )
    rate = _positive("mean_rps", mean_rps)
    period = _positive("period_s", period_s)
    expected = rate * period
    if expected > MAX_TRACE_REQUESTS:
        raise TraceError(
            f"{rate:g} req/s over {period:g} s is {expected:,.0f} requests; the limit is "
            f"{MAX_TRACE_REQUESTS:,}. Lower mean_rps or period_s.",
            hint="Simulate one day (period_s=86400) at a lower rate and scale the counts up.",
        )
    rng = np.random.default_rng(seed)
    if kind == "steady":
        return _poisson(rng, rate, 0.0, period)
    if kind == "diurnal":
        return _diurnal(rng, rate, period, peak_to_mean)
    return _bursty(rng, rate, period, burst_share=burst_share,
                   bursts_per_hour=bursts_per_hour, burst_s=burst_s)  # fmt: skip


def _checked_timestamps(timestamps: np.ndarray) -> np.ndarray:
    """The request times as a 1-D float array, refused when too long, unsorted or not finite."""
    ts = np.asarray(timestamps, dtype=float)
    if ts.ndim != 1:
        raise TraceError(
            "timestamps must be a 1-D array of request times in seconds",
            hint="Pass the array make_trace returns (one request time per entry).",
        )
    if ts.size > MAX_TRACE_REQUESTS:
        raise TraceError(
            f"at most {MAX_TRACE_REQUESTS:,} requests, got {ts.size:,}",
            hint="Replay a shorter period or a lower rate and scale the counts up.",
        )
    if ts.size and (not np.all(np.isfinite(ts)) or np.any(np.diff(ts) < 0)):
        raise TraceError(
            "timestamps must be finite and sorted (use np.sort)",
            hint="Sort the times with np.sort(ts) and drop NaN or inf entries first.",
        )
    return ts


def _check_instance_counts(concurrency: int, min_warm: int) -> None:
    """Instances hold whole requests and are counted whole: refuse fractions and negatives."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise TraceError(
            f"concurrency must be a whole number >= 1, got {concurrency!r}",
            hint="concurrency is how many requests one instance serves at once (Lambda: 1).",
        )
    if not isinstance(min_warm, int) or min_warm < 0:
        raise TraceError(
            f"min_warm must be a whole number >= 0, got {min_warm!r}",
            hint="min_warm is the number of always-warm instances; 0 means pure scale-to-zero.",
        )


class _WarmPool:
    """A scale-to-zero platform's instances while a trace replays: busy, idle, reclaimed."""

    def __init__(
        self, keep: float, dur: float, cold: float, concurrency: int, min_warm: int
    ) -> None:
        self.keep, self.dur, self.cold = keep, dur, cold
        self.concurrency, self.min_warm = concurrency, min_warm
        self.active: dict[int, int] = {}  # instance -> requests in flight
        self.finishing: list[tuple[float, int]] = []  # heap of (finish time, instance)
        self.partial: set[int] = set()  # busy but with a free slot
        self.reserved = set(range(min_warm))
        self.reserved_idle: list[int] = list(range(min_warm))
        self.idle: list[tuple[float, int]] = []  # on-demand, idle since t (stack: newest last)
        self.next_id = min_warm
        self.cold_starts = 0
        self.busy_s = self.idle_warm_s = 0.0
        self.peak = self.live = min_warm

    def finish_before(self, t: float) -> None:
        """Free the slots of requests done by ``t``; an instance with none left goes idle."""
        while self.finishing and self.finishing[0][0] <= t:
            done_at, inst = heapq.heappop(self.finishing)
            self.active[inst] -= 1
            if self.active[inst] == 0:
                self.partial.discard(inst)
                del self.active[inst]
                if inst in self.reserved:
                    self.reserved_idle.append(inst)
                else:
                    self.idle.append((done_at, inst))
            else:
                self.partial.add(inst)

    def reclaim_before(self, t: float) -> None:
        """Reclaim on-demand instances idle for longer than the keep-alive window."""
        k = 0  # the stack is ordered by idle-since time, oldest first
        while k < len(self.idle) and self.idle[k][0] + self.keep < t:
            k += 1
        if k:
            self.idle_warm_s += self.keep * k
            self.live -= k
            del self.idle[:k]

    def take_instance(self, t: float) -> tuple[int, float]:
        """A free slot at ``t``, warm first; else a new instance and its cold-start wait."""
        if self.partial:
            return next(iter(self.partial)), 0.0
        if self.reserved_idle:
            return self.reserved_idle.pop(), 0.0
        if self.idle:
            since, inst = self.idle.pop()  # the most recently used: it stays warm longest
            self.idle_warm_s += t - since
            return inst, 0.0
        inst = self.next_id
        self.next_id += 1
        self.cold_starts += 1
        self.live += 1
        self.peak = max(self.peak, self.live)
        return inst, self.cold

    def serve(self, t: float) -> None:
        """One request arriving at ``t``: settle what finished, reclaim, then place it."""
        self.finish_before(t)
        self.reclaim_before(t)
        inst, extra = self.take_instance(t)
        self.active[inst] = self.active.get(inst, 0) + 1
        if self.active[inst] < self.concurrency:
            self.partial.add(inst)
        else:
            self.partial.discard(inst)
        heapq.heappush(self.finishing, (t + extra + self.dur, inst))
        self.busy_s += extra + self.dur

    def summary(self, ts: np.ndarray) -> dict[str, Any]:
        """The counts after the last request, idle instances kept warm to the end."""
        end = float(ts[-1]) + self.cold + self.dur if ts.size else 0.0
        self.idle_warm_s += sum(min(self.keep, max(end - since, 0.0)) for since, _ in self.idle)
        n = int(ts.size)
        return {
            "requests": n,
            "cold_starts": self.cold_starts,
            "cold_fraction": self.cold_starts / n if n else 0.0,
            "peak_instances": self.peak,
            "instances_started": self.next_id - self.min_warm,
            "busy_instance_s": self.busy_s,
            "idle_warm_instance_s": float(self.idle_warm_s),
            "keep_alive_s": self.keep,
            "min_warm": self.min_warm,
        }


def simulate_keep_alive(
    timestamps: np.ndarray,
    keep_alive_s: float,
    *,
    duration_s: float = 0.05,
    cold_start_s: float = 1.0,
    concurrency: int = 1,
    min_warm: int = 0,
) -> dict[str, Any]:
    """Replay ``timestamps`` against a scale-to-zero platform.

    Each instance serves up to ``concurrency`` requests at once (Lambda: 1). A request that
    finds no free warm instance starts a new one and waits ``cold_start_s`` first. An
    instance idle for longer than ``keep_alive_s`` is reclaimed; ``min_warm`` instances
    (provisioned concurrency, or Cloud Run's minimum instances) are never reclaimed and
    start warm. Returns counts of cold starts, the peak number of instances, and the
    instance-seconds spent busy and kept warm while idle.
    """
    ts = _checked_timestamps(timestamps)
    keep = _positive("keep_alive_s", keep_alive_s, allow_zero=True)
    dur = _positive("duration_s", duration_s, allow_zero=True)
    cold = _positive("cold_start_s", cold_start_s, allow_zero=True)
    _check_instance_counts(concurrency, min_warm)
    pool = _WarmPool(keep, dur, cold, concurrency, min_warm)
    for t in ts:
        pool.serve(t)
    return pool.summary(ts)


def provisioned_cost(
    instances: int,
    memory_gb: float,
    *,
    hours: float = HOURS_PER_MONTH,
    price_per_gb_s: float | None = None,
) -> dict[str, Any]:
    """Monthly cost of keeping ``instances`` warm all the time, at ``memory_gb`` each.

    The kit's price notes have no rate for Lambda provisioned concurrency, so by default
    the kept-warm GB-seconds are priced at the on-demand GB-second price; pass the published
    provisioned rate as ``price_per_gb_s`` when you have it.
    """
    from infralab.economics.costs.serverless import LAMBDA_PRICE_PER_GB_S

    if not isinstance(instances, int) or instances < 0:
        raise TraceError(
            f"instances must be a whole number >= 0, got {instances!r}",
            hint="instances is the count of provisioned (always-warm) instances, e.g. 1.",
        )
    memory = _positive("memory_gb", memory_gb)
    hrs = _positive("hours", hours, allow_zero=True)
    price = (
        LAMBDA_PRICE_PER_GB_S
        if price_per_gb_s is None
        else _positive("price_per_gb_s", price_per_gb_s)
    )
    gb_s = instances * memory * hrs * 3600
    return {
        "total_usd": gb_s * price,
        "gb_seconds": gb_s,
        "price_per_gb_s": price,
        "priced_as": "on-demand GB-second price (no provisioned rate in the kit's notes)"
        if price_per_gb_s is None
        else "given price",
    }
