"""Monthly bills for one workload under four ways to serve it, and where they break even.

The point the lesson makes: a managed API and serverless bill per request (rent flexibility),
a dedicated GPU bills per hour whether it is busy or not (own efficiency), and a per-second
GPU sits in between (it bills cold starts and idle timeouts). Which is cheapest depends on
traffic, and the idle GPU is the trap. Every figure here is either a published price
(``infralab.costs.pricing``), the student's measurement (``infralab.results``), or an
assumption that says so in its name or docstring.

Nothing here divides by zero: no traffic, zero utilization or an impossible latency target
give a :class:`Bill` whose ``note`` says why there is no unit cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

HOURS_PER_MONTH = 730.0  # the convention cloud price pages use (8,760 h / 12)
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24.0
NO_REQUESTS = "no requests served"

# Traffic shapes: (share of the month that carries the traffic, peak-to-mean within it).
# Assumptions for teaching, not measurements: business hours = 10 h on 5 of 7 days.
TRAFFIC_SHAPES: dict[str, tuple[float, float]] = {
    "steady": (1.0, 1.0),
    "diurnal": (1.0, 2.0),
    "business_hours": (10 / 24 * 5 / 7, 1.5),
    "spiky": (0.1, 3.0),
}

# Amdahl-style batching: throughput(b) = t1 * b / (1 + (b - 1) * s). s = 0.2467 makes batch 32
# give 3.7x, the gain NVIDIA's Triton optimization guide reports for dynamic batching
# (73 -> 272 inferences/s). An assumption: replace it with your own measured curve.
BATCH_SERIAL_FRACTION = 0.2467


class CostError(ValueError):
    """Bad input to the cost model; the message says which value and what is allowed."""


def _nonneg(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CostError(f"{name} must be a number, not {value!r}") from None
    if v != v or v < 0 or math.isinf(v):
        raise CostError(f"{name} must be a finite number >= 0, not {value!r}")
    return v


def batched_throughput(
    rps_at_batch_1: float, batch: int, serial_fraction: float = BATCH_SERIAL_FRACTION
) -> float:
    """Requests/s of one instance at batch size ``batch`` (Amdahl-style assumption)."""
    if int(batch) != batch or batch < 1:
        raise CostError(f"batch size must be a whole number >= 1, not {batch!r}")
    if not 0 <= serial_fraction <= 1:
        raise CostError("serial_fraction must be between 0 and 1")
    t1 = _nonneg("throughput", rps_at_batch_1)
    return t1 * batch / (1 + (batch - 1) * serial_fraction)


@dataclass(frozen=True)
class Workload:
    """What is served: traffic, tokens per request and the latency promise."""

    requests_per_day: float
    tokens_in: float = 500.0
    tokens_out: float = 200.0
    latency_target_s: float = 5.0
    traffic: str = "steady"

    def __post_init__(self) -> None:
        _nonneg("requests_per_day", self.requests_per_day)
        _nonneg("tokens_in", self.tokens_in)
        _nonneg("tokens_out", self.tokens_out)
        if _nonneg("latency_target_s", self.latency_target_s) == 0:
            raise CostError("latency_target_s must be > 0 seconds")
        if self.traffic not in TRAFFIC_SHAPES:
            raise CostError(
                f"traffic {self.traffic!r} is not a known shape; use one of "
                f"{', '.join(TRAFFIC_SHAPES)}"
            )

    @property
    def requests_per_month(self) -> float:
        return self.requests_per_day * DAYS_PER_MONTH

    @property
    def tokens_per_request(self) -> float:
        return self.tokens_in + self.tokens_out

    @property
    def busy_share(self) -> float:
        """Share of the month in which the requests arrive."""
        return TRAFFIC_SHAPES[self.traffic][0]

    @property
    def peak_rps(self) -> float:
        """Requests/s at the busiest moment the capacity must absorb."""
        share, peak = TRAFFIC_SHAPES[self.traffic]
        return self.requests_per_month / (SECONDS_PER_MONTH * share) * peak

    @property
    def busy_rps(self) -> float:
        """Mean requests/s while traffic is on."""
        return self.requests_per_month / (SECONDS_PER_MONTH * self.busy_share)

    def at(self, requests_per_day: float) -> Workload:
        """The same workload at another traffic level (for sweeps and break-evens)."""
        return replace(self, requests_per_day=requests_per_day)


@dataclass(frozen=True)
class Bill:
    """One option's month: what it costs, what it buys, and whether it keeps the promise."""

    option: str
    kind: str
    monthly_usd: float
    requests_per_month: float
    tokens_per_month: float
    utilization: float | None = None  # busy share of paid capacity; None when not applicable
    instances: int = 0
    latency_s: float | None = None
    meets_latency: bool = True
    note: str = ""
    breakdown: dict[str, float] = field(default_factory=dict)
    model: str = ""  # what the option runs: options running different models are other products

    @property
    def usd_per_1k_requests(self) -> float | None:
        """None (with ``note`` saying why) when no request is served."""
        if self.requests_per_month <= 0:
            return None
        return self.monthly_usd / self.requests_per_month * 1000.0

    @property
    def usd_per_1m_tokens(self) -> float | None:
        if self.tokens_per_month <= 0:
            return None
        return self.monthly_usd / self.tokens_per_month * 1e6

    def summary(self) -> str:
        """One line a student can read."""
        if not math.isfinite(self.monthly_usd):
            return f"{self.option}: cannot serve this ({self.note or NO_REQUESTS})"
        per_1k = self.usd_per_1k_requests
        unit = f"${per_1k:,.4f} per 1k requests" if per_1k is not None else self.note
        util = f", {self.utilization:.0%} utilized" if self.utilization is not None else ""
        lat = "" if self.meets_latency else " — MISSES the latency target"
        low = (
            " (a lower bound: some fees have no published price)"
            if "lower bound" in self.note
            else ""
        )
        return f"{self.option}: ${self.monthly_usd:,.2f}/month{low}, {unit}{util}{lat}"

    def as_row(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "kind": self.kind,
            "monthly_usd": self.monthly_usd,
            "usd_per_1k_requests": self.usd_per_1k_requests,
            "usd_per_1m_tokens": self.usd_per_1m_tokens,
            "utilization": self.utilization,
            "instances": self.instances,
            "latency_s": self.latency_s,
            "meets_latency": self.meets_latency,
            "note": self.note,
            "model": self.model,
        }


class Option(Protocol):
    """Anything that can price a workload."""

    name: str

    def bill(self, workload: Workload) -> Bill: ...


def _base(option: Any, kind: str, w: Workload, usd: float, **kw: Any) -> Bill:
    served = w.requests_per_month
    note = kw.pop("note", "") or ("" if served > 0 else NO_REQUESTS)
    return Bill(
        option=option.name,
        kind=kind,
        monthly_usd=usd,
        requests_per_month=served,
        tokens_per_month=served * w.tokens_per_request,
        note=note,
        model=getattr(option, "model", ""),
        **kw,
    )


@dataclass(frozen=True)
class ManagedAPI:
    """A provider's API, billed per token (input and output priced apart)."""

    name: str
    usd_per_1m_input: float
    usd_per_1m_output: float
    latency_s: float | None = None  # unknown unless you measured it
    model: str = ""

    def __post_init__(self) -> None:
        _nonneg("usd_per_1m_input", self.usd_per_1m_input)
        _nonneg("usd_per_1m_output", self.usd_per_1m_output)

    def bill(self, w: Workload) -> Bill:
        n = w.requests_per_month
        usd_in = n * w.tokens_in * self.usd_per_1m_input / 1e6
        usd_out = n * w.tokens_out * self.usd_per_1m_output / 1e6
        ok = self.latency_s is None or self.latency_s <= w.latency_target_s
        return _base(
            self,
            "api",
            w,
            usd_in + usd_out,
            latency_s=self.latency_s,
            meets_latency=ok,
            breakdown={"input_tokens": usd_in, "output_tokens": usd_out},
        )


def _lambda_bill(
    requests: float, duration_s: float, memory_gb: float, *, per_gb_s: float, per_1m: float, free
) -> dict[str, float]:
    """Call infralab.costs.serverless.lambda_bill; a local copy of its formula if absent."""
    try:
        from infralab.costs.serverless import lambda_bill
    except ImportError:  # the serverless module lands separately; same formula
        gb_s = requests * math.ceil(duration_s * 1000 - 1e-9) / 1000 * memory_gb
        req_units = requests / 1e6
        if free:
            gb_s, req_units = max(0.0, gb_s - 400_000), max(0.0, req_units - 1.0)
        return {"total_usd": gb_s * per_gb_s + req_units * per_1m}
    return lambda_bill(
        int(round(requests)),
        duration_s,
        memory_gb,
        price_per_gb_s=per_gb_s,
        price_per_million_requests=per_1m,
        free_tier=free,
    )


@dataclass(frozen=True)
class ServerlessCPU:
    """A Lambda-style function: billed per request and per GB-second of run time."""

    name: str
    duration_s: float  # mean run time of one request (measure it: lesson 02 / 04)
    memory_gb: float = 2.0
    usd_per_gb_s: float = 0.00001667  # AWS Lambda, datasets/pricing/serverless_cpu.csv
    usd_per_1m_requests: float = 0.20
    free_tier: bool = False
    cold_start_s: float = 0.085  # Python 3.12 zip init, lambda-perf 2026-08-22 (x86)
    cold_share: float = 0.01  # assumption: share of requests that start cold
    model: str = ""

    def __post_init__(self) -> None:
        for n in ("duration_s", "memory_gb", "usd_per_gb_s", "usd_per_1m_requests"):
            _nonneg(n, getattr(self, n))

    def bill(self, w: Workload) -> Bill:
        n = w.requests_per_month
        usd = 0.0
        if n > 0:
            out = _lambda_bill(
                n,
                self.duration_s,
                self.memory_gb,
                per_gb_s=self.usd_per_gb_s,
                per_1m=self.usd_per_1m_requests,
                free=self.free_tier,
            )
            usd = float(out["total_usd"])
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
    usd_per_vcpu_s: float = 0.000024  # datasets/pricing/serverless_cpu.csv
    usd_per_gib_s: float | None = 0.0000025  # the same file (a 2022-10 figure: re-check)
    usd_per_1m_requests: float | None = 0.40
    free_tier: bool = False
    cold_start_s: float = 0.0  # not in the kit's sources for Cloud Run
    cold_share: float = 0.0
    model: str = ""

    def __post_init__(self) -> None:
        for n in ("duration_s", "usd_per_vcpu_s"):
            _nonneg(n, getattr(self, n))
        for n in ("vcpu", "memory_gib"):
            if _nonneg(n, getattr(self, n)) == 0:
                raise CostError(f"{n} must be > 0")
        if _nonneg("concurrency", self.concurrency) < 1:
            raise CostError("concurrency must be >= 1 (requests sharing one instance)")

    def bill(self, w: Workload) -> Bill:
        from infralab.costs.serverless import cloud_run_bill

        n = w.requests_per_month
        usd, unpriced = 0.0, []
        if n > 0:
            out = cloud_run_bill(
                int(round(n)),
                self.duration_s,
                self.vcpu,
                self.memory_gib,
                concurrency=self.concurrency,
                free_tier=self.free_tier,
                price_per_vcpu_s=self.usd_per_vcpu_s,
                price_per_gib_s=self.usd_per_gib_s,
                price_per_million_requests=self.usd_per_1m_requests,
            )
            usd, unpriced = float(out["total_usd"]), list(out.get("unpriced", []))
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
        usd = instances * self.usd_per_hour * HOURS_PER_MONTH
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
        usd = billed_s * self.usd_per_hour / 3600.0
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


def cost_per_1k_at_utilization(
    usd_per_hour: float, throughput_rps: float, utilization: float
) -> float | None:
    """What an hourly-billed instance costs per 1k requests when it is busy ``utilization`` of the time.

    The idle-GPU trap in one line: halve the utilization, double the unit cost. Returns None
    (no requests served) at zero utilization or zero throughput, never a division error.
    """
    price = _nonneg("usd_per_hour", usd_per_hour)
    rps = _nonneg("throughput_rps", throughput_rps)
    util = _nonneg("utilization", utilization)
    if util > 1:
        raise CostError(f"utilization is a share between 0 and 1, not {utilization}")
    served_per_hour = rps * 3600.0 * util
    if served_per_hour <= 0:
        return None
    return price / served_per_hour * 1000.0


def usd_per_1m_tokens_hourly(
    usd_per_hour: float, tokens_per_s: float, utilization: float = 1.0
) -> float | None:
    """Cost per 1M tokens of an hourly instance that generates ``tokens_per_s`` when busy."""
    per_1k = cost_per_1k_at_utilization(usd_per_hour, tokens_per_s, utilization)
    return None if per_1k is None else per_1k * 1000.0


@dataclass(frozen=True)
class BreakEven:
    """Where two options cost the same per month, or why they never do."""

    a: str
    b: str
    requests_per_day: float | None  # the first crossing; None when there is none
    crossings: tuple[float, ...]
    verdict: str
    cheaper_below: str | None = None  # which option wins at low traffic
    cheaper_above: str | None = None

    def __str__(self) -> str:
        return self.verdict


def break_even(
    a: Option,
    b: Option,
    workload: Workload,
    *,
    low: float = 1.0,
    high: float = 1e9,
    points: int = 400,
) -> BreakEven:
    """Requests/day at which ``a`` and ``b`` cost the same per month (scanned on a log grid).

    Bills are step functions (whole instances, free tiers), so there may be several crossings;
    all are returned and the verdict names the first. "never" means one option is cheaper (or
    equal) everywhere in [low, high] requests/day.
    """
    low, high = _nonneg("low", low), _nonneg("high", high)
    if not 0 < low < high:
        raise CostError("need 0 < low < high requests/day")

    def diff(r: float) -> float:
        ca, cb = a.bill(workload.at(r)).monthly_usd, b.bill(workload.at(r)).monthly_usd
        if math.isinf(ca) and math.isinf(cb):
            return 0.0
        return ca - cb

    grid = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    values = [diff(r) for r in grid]
    crossings: list[float] = []
    last: tuple[float, float] | None = None  # the last grid point where the costs differ
    for r1, d1 in zip(grid, values, strict=True):
        if d1 == 0:
            continue
        if last is not None and (last[1] < 0) != (d1 < 0):
            lo, hi, d0 = last[0], r1, last[1]
            while hi / lo > 1 + 1e-7:  # bisection on the sign change, to 1e-7 relative
                mid = math.sqrt(lo * hi)
                dm = diff(mid)
                # equal costs count as "crossed": the same answer whichever option is a
                if dm != 0 and (dm < 0) == (d0 < 0):
                    lo = mid
                else:
                    hi = mid
            crossings.append(hi)
        last = (r1, d1)
    rng = f"between {low:,.0f} and {high:,.0f} requests/day"
    sign_low = next((v for v in values if v != 0), 0.0)
    if not crossings:
        if all(v == 0 for v in values):
            verdict = f"never: {a.name} and {b.name} cost the same {rng}"
            return BreakEven(a.name, b.name, None, (), verdict)
        win = a.name if sign_low < 0 else b.name
        lose = b.name if win == a.name else a.name
        verdict = f"never: {win} is always cheaper than (or equal to) {lose} {rng}"
        return BreakEven(a.name, b.name, None, (), verdict, win, win)
    below = a.name if sign_low < 0 else b.name
    sign_high = next((v for v in reversed(values) if v != 0), 0.0)
    above = a.name if sign_high < 0 else b.name
    other = b.name if below == a.name else a.name
    verdict = (
        f"break-even at {crossings[0]:,.0f} requests/day: {below} is cheaper below, {other} above"
    )
    if len(crossings) > 1:
        where = ", ".join(f"{c:,.0f}" for c in crossings)
        verdict += (
            f"; they cross {len(crossings)} times ({where} requests/day) because whole "
            f"instances make the bill a staircase, and {above} is cheaper at the top of the range"
        )
    return BreakEven(a.name, b.name, crossings[0], tuple(crossings), verdict, below, above)


def sweep(
    options: Iterable[Option], workload: Workload, requests_per_day: Iterable[float]
) -> list[dict[str, Any]]:
    """Rows (option, requests_per_day, monthly_usd, ...) for charts of bill against traffic."""
    opts = list(options)
    rows = []
    for r in requests_per_day:
        for o in opts:
            row = o.bill(workload.at(r)).as_row()
            row["requests_per_day"] = r
            rows.append(row)
    return rows


# --- throughput from what the student measured ---------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A number with where it came from: 'measured', 'recorded' or 'default'."""

    value: float
    unit: str
    source: str
    detail: str

    def label(self) -> str:
        return f"{self.value:,.4g} {self.unit} ({self.source}: {self.detail})"


# Used only when neither the student's result nor the kit's recorded run can be read (a
# partial checkout): the llama.cpp reference figure written down in the recorded run.
DEFAULTS: dict[str, Measured] = {
    "generation": Measured(
        49.0,
        "tokens/s",
        "default",
        "datasets/benchmarks/generation.json, llama.cpp reference run (SmolLM2-135M Q4_1, 2 cores)",
    ),
}

_FIELDS: dict[str, str] = {
    "generation": "decode_tokens_per_s",
    "embedding": "sentences_per_s",
    "serving": "throughput_rps",
}


def _measured(kind: str, name: str) -> Measured | None:
    """One field of a typed result (``infralab.results.load``) as a labelled Measured."""
    from infralab import results

    try:
        record = results.load(kind)
    except (FileNotFoundError, results.ResultError, OSError):
        return None
    fig = record.figure(name)
    return Measured(fig.value, fig.unit, fig.origin, f"{fig.source}, {fig.detail}")


def measured_throughput(kind: Literal["generation", "embedding", "serving"]) -> Measured | None:
    """The student's throughput from lesson 02-04 results, else the kit's recorded one.

    Reads the typed record's field (no key guessing) and says which source was used; falls
    back to :data:`DEFAULTS` (itself labelled) or None.
    """
    if kind not in _FIELDS:
        raise CostError(f"kind must be one of {', '.join(_FIELDS)}")
    return _measured(kind, _FIELDS[kind]) or DEFAULTS.get(kind)


def measured_duration_s(kind: str = "serving") -> Measured | None:
    """Mean seconds per request, alone, from lesson 02's (or lab 02's) result."""
    if kind not in ("serving", "loadtest"):
        raise CostError("kind must be 'serving' or 'loadtest'")
    return _measured(kind, "mean_duration_s")


# --- an LLM chat service: the options the lesson and the dashboard compare ------------------


@dataclass(frozen=True)
class DecodePoint:
    """One operating point of a GPU decoding ``batch`` streams at once."""

    batch: int
    tokens_per_s: float  # all streams together
    step_s: float  # time per decode step = seconds per token for each stream


def decode_operating_point(
    batch: int,
    *,
    weights_gb: float = 8.0,
    bandwidth_gb_s: float = 3350.0,
    anchor_batch: int = 512,
    anchor_tokens_per_s: float = 16542.0,
) -> DecodePoint:
    """Decode throughput and per-token time at ``batch`` from a memory-bandwidth model.

    Each decode step reads all weights once (weights_gb / bandwidth: 8 GB of Qwen3-8B FP8 over
    an H100's 3.35 TB/s ~ 2.4 ms) plus a per-sequence cost, fitted so that batch 512 gives the
    published 16,542 output tokens/s (silybench, 2026-09-24). Batching amortizes the weight
    read: more tokens/s per GPU, but each user waits longer per token. A model, not a
    measurement: the anchor is measured, the curve between is the roofline argument.
    """
    if int(batch) != batch or batch < 1:
        raise CostError(f"batch size must be a whole number >= 1, not {batch!r}")
    w = _nonneg("weights_gb", weights_gb)
    bw = _nonneg("bandwidth_gb_s", bandwidth_gb_s)
    if bw == 0 or anchor_batch < 1 or _nonneg("anchor_tokens_per_s", anchor_tokens_per_s) == 0:
        raise CostError("bandwidth, anchor batch and anchor tokens/s must be > 0")
    weight_s = w / bw
    anchor_step = anchor_batch / anchor_tokens_per_s
    per_seq = max(0.0, (anchor_step - weight_s) / anchor_batch)
    step = weight_s + batch * per_seq
    return DecodePoint(int(batch), batch / step, step)


def llm_options(
    workload: Workload,
    *,
    gpu_usd_per_hour: float | None = None,
    batch: int = 64,
    max_utilization: float = 0.7,
    spot_interruptions_per_hour: float = 0.05,
    cpu_tokens_per_s: float | None = None,
    option_set: str = "all",
) -> tuple[list[Option], list[str]]:
    """The options for an LLM chat workload, priced from datasets/pricing, and their labels.

    Returns ``(options, notes)``; each note says where a number came from or why an option
    is missing (a price the data does not hold is not guessed). ``option_set`` is one of
    :data:`OPTION_SETS`.
    """
    from infralab.costs import pricing

    if option_set not in OPTION_SETS:
        raise CostError(f"option_set must be one of {', '.join(OPTION_SETS)}")
    kinds = OPTION_SETS[option_set]
    notes: list[str] = []
    opts: list[Option] = []
    if "api" in kinds:
        api = pricing.load_prices("llm_api").set_index("model")
        for model in ("gpt-4o-mini", "Llama-3.1-8B-Instruct-Turbo"):
            row = api.loc[model]
            opts.append(
                ManagedAPI(
                    f"API {model}",
                    row["usd_per_1m_input_tokens"],
                    row["usd_per_1m_output_tokens"],
                    model=model,
                )
            )
            notes.append(f"API {model}: {row['provider']}, {row['source']}, {row['as_of']}")
    point = decode_operating_point(batch)
    out = max(workload.tokens_out, 1.0)
    rps = point.tokens_per_s / out
    latency = point.step_s * workload.tokens_out
    if "gpu" in kinds:
        for kind in ("on_demand", "reserved", "spot"):
            try:
                rows = pricing.gpu_hourly("H100", kind)
                sxm = rows[rows["instance"].str.contains("SXM|HGX|p5|a3", regex=True)]
                # the throughput anchor was measured on an H100 SXM: prefer an SXM price
                row = (sxm if not sxm.empty else rows).iloc[0]
            except pricing.PricingError:
                notes.append(f"H100 {kind}: no price in datasets/pricing (missing, not guessed)")
                continue
            price = float(row["usd_per_gpu_hour"])
            if kind == "on_demand" and gpu_usd_per_hour is not None:
                price = _nonneg("gpu_usd_per_hour", gpu_usd_per_hour)
                notes.append(f"H100 on-demand: ${price:.2f}/GPU-hour (your slider)")
            else:
                notes.append(
                    f"H100 {kind}: ${price:.3f}/GPU-hour, {row['provider']} {row['instance']}, "
                    f"{row['as_of']}"
                )
            if kind == "spot":
                notes.append(
                    f"H100 spot: assumed {spot_interruptions_per_hour:g} interruptions/hour, "
                    "5 min lost each (an assumption, not a published rate)"
                )
            opts.append(
                DedicatedGPU(
                    f"H100 {kind.replace('_', '-')}",
                    price,
                    rps,
                    latency,
                    pricing=kind,
                    max_utilization=max_utilization,
                    interruptions_per_hour=spot_interruptions_per_hour if kind == "spot" else 0.0,
                    model=GPU_MODEL,
                )
            )
    if "per_second" in kinds:
        sg = pricing.load_prices("serverless_gpu")
        row = sg[(sg["provider"] == "modal") & (sg["gpu"] == "H100")].iloc[0]
        opts.append(
            PerSecondGPU(
                "H100 per-second (Modal)",
                row["usd_per_hour"],
                rps,
                latency,
                max_utilization=max_utilization,
                model=GPU_MODEL,
            )
        )
        notes.append(f"Modal H100: ${row['usd_per_hour']:.4f}/h billed per second, {row['as_of']}")
    if "cpu" in kinds or "cloud_run" in kinds:
        tps = cpu_tokens_per_s
        if tps is None:
            m = measured_throughput("generation")
            tps = m.value if m else DEFAULTS["generation"].value
            notes.append(f"CPU decode speed: {(m or DEFAULTS['generation']).label()}")
        if _nonneg("cpu_tokens_per_s", tps) == 0:
            notes.append(f"serverless CPU left out: {NO_REQUESTS} at 0 tokens/s")
        else:
            duration = workload.tokens_out / tps
            if "cpu" in kinds:
                price, _ = pricing.serverless_cpu_price("aws", "lambda", "compute")
                per_req, _ = pricing.serverless_cpu_price("aws", "lambda", "requests")
                opts.append(
                    ServerlessCPU(
                        "Serverless CPU (SmolLM2-135M, Lambda 2 GB)",
                        duration,
                        usd_per_gb_s=price,
                        usd_per_1m_requests=per_req,
                        model=CPU_MODEL,
                    )
                )
            if "cloud_run" in kinds:
                run = "cloud_run_request_based"
                cpu_price, _ = pricing.serverless_cpu_price("gcp", run, "cpu")
                mem_price, _ = pricing.serverless_cpu_price("gcp", run, "memory")
                req_price, _ = pricing.serverless_cpu_price("gcp", run, "requests")
                opts.append(
                    CloudRunCPU(
                        "Serverless CPU (SmolLM2-135M, Cloud Run 1 vCPU)",
                        duration,
                        usd_per_vcpu_s=cpu_price,
                        usd_per_gib_s=mem_price,
                        usd_per_1m_requests=req_price,
                        model=CPU_MODEL,
                    )
                )
    notes.append(
        f"GPU at batch {point.batch}: {point.tokens_per_s:,.0f} tokens/s, "
        f"{1 / point.step_s:,.1f} tokens/s per user (bandwidth model anchored on silybench)"
    )
    return opts, notes


# What each option of llm_options runs. The GPU options' throughput is anchored on an 8B
# model (Qwen3-8B FP8, silybench); the serverless CPU runs lesson 04's 135M model.
GPU_MODEL = "an 8B model (Qwen3-8B FP8 throughput)"
CPU_MODEL = "SmolLM2-135M-Instruct"


def product_note(bills: Iterable[Bill]) -> str:
    """Empty when every bill runs the same model; else says these are different products."""
    models = sorted({b.model for b in bills if b.model})
    if len(models) <= 1:
        return ""
    return (
        "Not the same product: these options run different models ("
        + "; ".join(models)
        + "), so their answers differ in quality; compare price only between options that "
        "run the same model, or between models you have checked are good enough."
    )


OPTION_SETS: dict[str, tuple[str, ...]] = {
    "all": ("api", "gpu", "per_second", "cpu"),
    "API vs dedicated GPU": ("api", "gpu"),
    "API vs per-second GPU": ("api", "per_second"),
    "GPU: dedicated vs per-second": ("gpu", "per_second"),
    "serverless CPU vs GPU": ("cpu", "gpu", "per_second"),
    "serverless CPU: Lambda vs Cloud Run": ("cpu", "cloud_run"),
}
