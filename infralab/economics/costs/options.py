"""Five ways to serve a workload and what each bills for a month: a managed API, a
Lambda-style function, Cloud Run, a dedicated GPU by the hour, a per-second GPU.

Prices default to the kit's price data (``infralab.economics.costs.serverless`` reads them through
``infralab.economics.costs.pricing``); pass your own to any option.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from infralab.economics.costs import billing, serverless
from infralab.economics.costs.pricing import (
    CostError,
)
from infralab.economics.costs.pricing import (
    check_nonneg as _nonneg,
)
from infralab.economics.costs.workload import (
    NO_REQUESTS,
    SECONDS_PER_MONTH,
    Bill,
    Option,
    Workload,
    _base,
)


@dataclass(frozen=True)
class ManagedAPI:
    """A provider's API, billed per token (input and output priced apart)."""

    name: str
    usd_per_1m_input: float
    usd_per_1m_output: float
    latency_s: float | None = None  # unknown unless you measured it
    model: str = ""
    provider: str = ""

    def __post_init__(self) -> None:
        _nonneg("usd_per_1m_input", self.usd_per_1m_input)
        _nonneg("usd_per_1m_output", self.usd_per_1m_output)

    def bill(self, w: Workload) -> Bill:
        b = billing.managed_api(
            w.requests_per_month,
            w.tokens_in,
            w.tokens_out,
            usd_per_1m_input=self.usd_per_1m_input,
            usd_per_1m_output=self.usd_per_1m_output,
        )
        ok = self.latency_s is None or self.latency_s <= w.latency_target_s
        return _base(self, "api", w, b.monthly_usd, latency_s=self.latency_s, meets_latency=ok,
                     breakdown=b.breakdown, basis=b.basis)  # fmt: skip


@dataclass(frozen=True)
class ServerlessCPU:
    """A Lambda-style function: billed per request and per GB-second of run time."""

    name: str
    duration_s: float  # mean run time of one request (measure it: lesson 02 / 04)
    memory_gb: float = 2.0
    usd_per_gb_s: float = serverless.LAMBDA_PRICE_PER_GB_S  # datasets/pricing/serverless_cpu.csv
    usd_per_1m_requests: float = serverless.LAMBDA_PRICE_PER_MILLION_REQUESTS
    free_tier: bool = False
    cold_start_s: float = 0.085  # Python 3.12 zip init, lambda-perf 2026-08-22 (x86)
    cold_share: float = 0.01  # assumption: share of requests that start cold
    model: str = ""
    provider: str = "aws"

    def __post_init__(self) -> None:
        for n in ("duration_s", "memory_gb", "usd_per_gb_s", "usd_per_1m_requests"):
            _nonneg(n, getattr(self, n))

    def bill(self, w: Workload) -> Bill:
        n = w.requests_per_month
        usd = 0.0
        if n > 0:
            usd = billing.lambda_function(
                int(round(n)),
                self.duration_s,
                self.memory_gb * 1024.0,
                usd_per_gb_s=self.usd_per_gb_s,
                usd_per_1m_requests=self.usd_per_1m_requests,
                free_tier=self.free_tier,
            ).monthly_usd
        # p95 sees a cold start only when more than 5 % of requests start cold
        lat = self.duration_s + (self.cold_start_s if self.cold_share > 0.05 else 0.0)
        ok = lat <= w.latency_target_s
        note = "" if ok else f"one request takes {lat:.2f} s > target {w.latency_target_s} s"
        return _base(self, "serverless_cpu", w, usd, latency_s=lat, meets_latency=ok, note=note)


MAX_INSTANCES = 1_000_000  # beyond this a "fleet" is a modelling error, not a plan


def _instances_needed(peak_rps: float, capacity_rps: float, minimum: int) -> int | None:
    """Whole instances to absorb ``peak_rps``; None when no finite fleet can."""
    if capacity_rps <= 0:
        return None
    ratio = peak_rps / capacity_rps
    if not math.isfinite(ratio) or ratio > MAX_INSTANCES:
        return None
    return max(minimum, math.ceil(ratio - 1e-9))


@dataclass(frozen=True)
class CloudRunCPU:
    """A Cloud Run service (request-based billing): vCPU- and GiB-seconds while serving, in
    100 ms steps, plus a fee per request (datasets/pricing/serverless_cpu.csv). A price set
    to None is left out and the bill's ``note`` then calls it a lower bound.
    """

    name: str
    duration_s: float
    vcpu: float = 1.0
    memory_gib: float = 2.0
    concurrency: float = 1.0
    usd_per_vcpu_s: float = serverless.CLOUD_RUN_PRICE_PER_VCPU_S  # serverless_cpu.csv
    usd_per_gib_s: float | None = serverless.CLOUD_RUN_PRICE_PER_GIB_S  # a 2022-10 figure
    usd_per_1m_requests: float | None = serverless.CLOUD_RUN_PRICE_PER_MILLION_REQUESTS
    free_tier: bool = False
    cold_start_s: float = 0.0  # not in the kit's sources for Cloud Run
    cold_share: float = 0.0
    model: str = ""
    provider: str = "gcp"

    def __post_init__(self) -> None:
        for n in ("duration_s", "usd_per_vcpu_s"):
            _nonneg(n, getattr(self, n))
        for n in ("vcpu", "memory_gib"):
            if _nonneg(n, getattr(self, n)) == 0:
                raise CostError(f"{n} must be > 0")
        if _nonneg("concurrency", self.concurrency) < 1:
            raise CostError("concurrency must be >= 1 (requests sharing one instance)")

    def bill(self, w: Workload) -> Bill:
        n = w.requests_per_month
        usd, unpriced = 0.0, []
        if n > 0:
            unpriced = [what for what, p in (("memory GiB-seconds (no price given)", self.usd_per_gib_s),
                        ("per-request fee (no price given)", self.usd_per_1m_requests)) if p is None]  # fmt: skip
            usd = billing.cloud_run(
                int(round(n)),
                self.duration_s,
                self.vcpu,
                self.memory_gib,
                concurrency=self.concurrency,
                free_tier=self.free_tier,
                usd_per_vcpu_s=self.usd_per_vcpu_s,
                usd_per_gib_s=self.usd_per_gib_s or 0.0,
                usd_per_1m_requests=self.usd_per_1m_requests or 0.0,
            ).monthly_usd
        lat = self.duration_s + (self.cold_start_s if self.cold_share > 0.05 else 0.0)
        ok = lat <= w.latency_target_s
        notes = [] if ok else [f"one request takes {lat:.2f} s > target {w.latency_target_s} s"]
        if unpriced:
            notes.append("lower bound: not priced: " + "; ".join(unpriced))
        return _base(
            self, "serverless_cpu", w, usd, latency_s=lat, meets_latency=ok, note=" | ".join(notes)
        )


@dataclass(frozen=True)
class DedicatedGPU:
    """Instances rented by the hour, always on: the bill does not care if they are idle.

    ``throughput_rps`` is one instance's requests/s at its batch size; ``max_utilization``
    is how busy you plan each instance to be at peak (headroom for latency). Spot capacity
    is lost for ``recovery_s`` at each interruption, so more instances are needed.
    """

    name: str
    usd_per_hour: float
    throughput_rps: float
    latency_s: float
    pricing: Literal["on_demand", "reserved", "spot"] = "on_demand"
    max_utilization: float = 0.7
    interruptions_per_hour: float = 0.0
    recovery_s: float = 300.0
    min_instances: int = 1
    model: str = ""
    provider: str = ""
    prefill_s: float = 0.0  # GPU time per request spent on the prompt (in latency_s too)

    def __post_init__(self) -> None:
        for n in ("usd_per_hour", "throughput_rps", "latency_s", "interruptions_per_hour"):
            _nonneg(n, getattr(self, n))
        if not 0 <= self.max_utilization <= 1:
            raise CostError(f"max_utilization must be between 0 and 1, not {self.max_utilization}")
        if self.pricing not in ("on_demand", "reserved", "spot"):
            raise CostError("pricing must be on_demand, reserved or spot")

    @property
    def available_share(self) -> float:
        """Share of paid time an instance can serve (spot interruptions eat the rest)."""
        lost = self.interruptions_per_hour * _nonneg("recovery_s", self.recovery_s) / 3600.0
        return max(0.0, 1.0 - lost)

    def bill(self, w: Workload) -> Bill:
        n = w.requests_per_month
        capacity = self.throughput_rps * self.max_utilization * self.available_share
        if capacity <= 0:
            why = (
                "0 % utilization planned"
                if self.max_utilization == 0
                else "no throughput"
                if self.throughput_rps == 0
                else "interruptions leave no serving time"
            )
            return _base(
                self,
                "dedicated_gpu",
                w,
                math.inf if n > 0 else 0.0,
                meets_latency=False,
                note=f"{NO_REQUESTS}: {why}",
            )
        needed = _instances_needed(w.peak_rps, capacity, self.min_instances)
        if needed is None:
            return _base(
                self,
                "dedicated_gpu",
                w,
                math.inf,
                meets_latency=False,
                note=f"{NO_REQUESTS}: capacity per instance is too small for this traffic",
            )
        instances = needed
        usd = billing.hourly(self.usd_per_hour, instances, kind="dedicated_gpu").monthly_usd
        paid_rps = instances * self.throughput_rps * self.available_share
        util = (n / SECONDS_PER_MONTH) / paid_rps if paid_rps > 0 else 0.0
        ok = self.latency_s <= w.latency_target_s
        note = (
            ""
            if ok
            else f"one request takes {self.latency_s:.2f} s > target {w.latency_target_s} s"
        )
        return _base(
            self,
            "dedicated_gpu",
            w,
            usd,
            utilization=min(util, 1.0),
            instances=instances,
            latency_s=self.latency_s,
            meets_latency=ok,
            note=note,
        )


@dataclass(frozen=True)
class PerSecondGPU:
    """A GPU billed per second while it runs, including cold starts and the idle timeout.

    Requests arrive at random (Poisson) while traffic is on. After the last request the
    instance stays up, billed, for ``idle_timeout_s``; a request that finds it gone pays a
    cold start (billed too). Busy traffic keeps it warm; sparse traffic pays for cold starts.
    """

    name: str
    usd_per_hour: float
    throughput_rps: float
    latency_s: float
    cold_start_s: float = 70.0  # vLLM on Modal with GPU snapshots (infinitylogesh/vllm-serverless)
    idle_timeout_s: float = 5.0  # RunPod serverless default
    max_utilization: float = 0.7
    model: str = ""
    provider: str = ""

    def __post_init__(self) -> None:
        for n in ("usd_per_hour", "throughput_rps", "latency_s", "cold_start_s", "idle_timeout_s"):
            _nonneg(n, getattr(self, n))
        if not 0 <= self.max_utilization <= 1:
            raise CostError(f"max_utilization must be between 0 and 1, not {self.max_utilization}")

    def cold_share(self, w: Workload) -> float:
        """Share of requests that find no warm instance."""
        if w.requests_per_day <= 0 or self.throughput_rps <= 0:
            return 0.0
        instances = self._instances(w)
        if instances <= 0:
            return 0.0
        lam = w.busy_rps / instances
        u = min(lam / self.throughput_rps, 1.0)
        return (1 - u) * math.exp(-lam * self.idle_timeout_s)

    def _instances(self, w: Workload) -> int:
        cap = self.throughput_rps * self.max_utilization
        return (_instances_needed(w.peak_rps, cap, 1) or 0) if cap > 0 else 0

    def bill(self, w: Workload) -> Bill:
        n = w.requests_per_month
        if n <= 0:
            return _base(self, "per_second_gpu", w, 0.0, utilization=None)
        instances = self._instances(w)
        if instances <= 0:
            why = (
                "no usable throughput"
                if self.throughput_rps * self.max_utilization <= 0
                else "capacity per instance is too small for this traffic"
            )
            return _base(
                self,
                "per_second_gpu",
                w,
                math.inf,
                meets_latency=False,
                note=f"{NO_REQUESTS}: {why}",
            )
        busy_s = n / self.throughput_rps
        lam = w.busy_rps / instances  # arrivals per second at one instance
        u = min(lam / self.throughput_rps, 1.0)
        idle_periods = n * (1 - u)
        x = lam * self.idle_timeout_s
        # E[min(gap, timeout)] for exponential gaps; = timeout when arrivals are very rare
        idle_per_gap = self.idle_timeout_s if x < 1e-9 else -math.expm1(-x) / lam
        warm_idle_s = idle_periods * idle_per_gap
        cold = self.cold_share(w)
        cold_s = n * cold * self.cold_start_s
        billed_s = min(busy_s + warm_idle_s + cold_s, instances * SECONDS_PER_MONTH)
        usd = billing.per_second_gpu(billed_s, self.usd_per_hour).monthly_usd
        lat = self.latency_s + (self.cold_start_s if cold > 0.05 else 0.0)
        ok = lat <= w.latency_target_s
        note = (
            ""
            if ok
            else f"{cold:.0%} of requests start cold ({self.cold_start_s:.0f} s): p95 misses target"
            if cold > 0.05
            else f"one request takes {self.latency_s:.2f} s > target {w.latency_target_s} s"
        )
        return _base(
            self,
            "per_second_gpu",
            w,
            usd,
            utilization=busy_s / billed_s if billed_s > 0 else None,
            instances=instances,
            latency_s=lat,
            meets_latency=ok,
            note=note,
            breakdown={"busy_s": busy_s, "warm_idle_s": warm_idle_s, "cold_start_s": cold_s},
        )


def compare(options: Iterable[Option], workload: Workload) -> list[Bill]:
    """Bills for every option, cheapest first (options that cannot serve go last)."""
    bills = [o.bill(workload) for o in options]
    return sorted(bills, key=lambda b: (not math.isfinite(b.monthly_usd), b.monthly_usd))
