"""Lab 07's references: cost per customer, the flip search, the flip volume of a scenario."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def cost_per_customer(monthly_usd: float, customers: int) -> float | None:
    return None if customers <= 0 else monthly_usd / customers


def find_flip(
    bill_a: Callable[[float], float], bill_b: Callable[[float], float], low: float, high: float
) -> float | None:
    diff = lambda r: bill_a(r) - bill_b(r)  # noqa: E731
    lo, hi = low, high
    if diff(lo) == 0:
        return lo
    if diff(lo) * diff(hi) > 0:
        return None
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if diff(lo) * diff(mid) <= 0:
            hi = mid
        else:
            lo = mid
    return math.sqrt(lo * hi)


def flip_volume(sc: Any) -> tuple[Any, str]:
    """The kit's break-even of the cheapest API and the per-second GPU for ``sc``, and a
    sentence naming the two options."""
    from infralab.costs import model as costs

    opts, _ = costs.llm_options(sc.workload, option_set="API vs per-second GPU")
    apis = [o for o in opts if isinstance(o, costs.ManagedAPI)]
    gpu = next(o for o in opts if isinstance(o, costs.PerSecondGPU))
    api = min(apis, key=lambda o: o.bill(sc.workload).monthly_usd)
    be = costs.break_even(api, gpu, sc.workload, low=10, high=1e8)
    return be, f"Compare {api.name} with {gpu.name} using costs.break_even."
