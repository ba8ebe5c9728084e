"""A workload (traffic, tokens, latency target) and the bill every serving option returns.

Why apart from the options: the options, the break-even search and the LLM presets all
speak in these two records; ``infralab.economics.costs.model`` gathers them for the lessons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from infralab.economics.costs.constants import (  # noqa: F401  (re-exported for older imports)
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    NO_REQUESTS,
    SECONDS_PER_MONTH,
)
from infralab.economics.costs.pricing import (
    CostError,
)
from infralab.economics.costs.pricing import (
    check_nonneg as _nonneg,
)

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
    basis: str = ""  # how it was computed, in numbers (billing.* fill it)
    inputs: tuple[Any, ...] = ()  # every figure it used (results.Figure: value, origin, source)
    provider: str = ""  # who bills it (aws, gcp, runpod, openai, ...): where the data goes

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
        provider=getattr(option, "provider", ""),
        **kw,
    )
