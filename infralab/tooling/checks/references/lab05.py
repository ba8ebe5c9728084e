"""Lab 05's references: cost per 1k requests, the break-even, the idle trap."""

from __future__ import annotations

from infralab.economics.costs import model as m

HOURS_PER_DAY = 24


def gpu_cost_per_1k(usd_per_hour: float, rps: float, utilization: float) -> float | None:
    served = rps * 3600 * utilization
    return None if served <= 0 else usd_per_hour / served * 1000


def break_even_requests_per_day(
    api_usd_per_request: float, gpu_usd_per_hour: float
) -> float | None:
    # one GPU costs the same every day; the API costs per request
    if api_usd_per_request <= 0:
        return None
    return gpu_usd_per_hour * HOURS_PER_DAY / api_usd_per_request


def trap_utilization(usd_per_hour: float, rps: float, api_usd_per_1k: float) -> float | None:
    full = gpu_cost_per_1k(usd_per_hour, rps, 1.0)
    if full is None or api_usd_per_1k <= 0:
        return None
    share = full / api_usd_per_1k
    return share if share <= 1 else None


def break_even(api: m.ManagedAPI, gpu: m.DedicatedGPU, work: m.Workload) -> m.BreakEven:
    """The kit's break-even of the two options (what the student's number must match)."""
    return m.break_even(api, gpu, work)
