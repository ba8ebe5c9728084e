"""Lab 07's references: the constraint filter, the cheapest allowed option, the flip search,
cost per customer, and the memo's figures recomputed from the scenario and inputs.

The filter is the kit's own rule (``infralab.economics.decision.rules.constraints``): the student's
function must agree with it, which is why it lives here and not in the student's reach.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

FLIP_RATIO = 1.0001  # the reference bisects ten times tighter than the lab asks (1 %)
LOW, HIGH = 0.25, 4.0  # the traffic factors the memo's flip search spans


def allowed(sc: Any, bill: Any) -> bool:
    from infralab.economics.decision import rules

    return not rules.constraints(sc, bill)


def cheapest_allowed(sc: Any, bills: Sequence[Any]) -> Any | None:
    ok = [b for b in bills if allowed(sc, b)]
    return min(ok, key=lambda b: b.monthly_usd) if ok else None  # min keeps the first of ties


def cost_per_customer(monthly_usd: float, customers: int) -> float | None:
    return None if customers <= 0 else monthly_usd / customers


def flip_point(choice_at: Callable[[float], Any], base: float, far: float) -> float | None:
    start = choice_at(base)
    if choice_at(far) == start:
        return None
    lo, hi = base, far  # the choice holds at lo and has changed at hi
    while max(lo, hi) / min(lo, hi) > FLIP_RATIO:
        mid = math.sqrt(lo * hi)
        if choice_at(mid) == start:
            lo = mid
        else:
            hi = mid
    return hi


def bills(sc: Any, inputs: dict[str, Any]) -> list[Any]:
    from infralab.economics import decision

    return decision.decide(sc, inputs, explain=False).bills


def memo_figures(sc: Any, inputs: dict[str, Any], customers: int) -> dict[str, Any]:
    """What the memo's numbers section must say, computed here from the scenario and inputs."""
    from infralab.economics import decision

    priced = bills(sc, inputs)
    choice = cheapest_allowed(sc, priced)

    def choice_at(factor: float) -> str | None:
        s, i = decision.moved(sc, inputs, "requests_per_day", factor)
        best = cheapest_allowed(s, bills(s, i))
        return None if best is None else best.option

    rpd = sc.workload.requests_per_day
    down, up = flip_point(choice_at, 1.0, LOW), flip_point(choice_at, 1.0, HIGH)
    monthly = None if choice is None else choice.monthly_usd
    return {
        "requests per day": rpd,
        "options priced": len(priced),
        "options allowed": sum(allowed(sc, b) for b in priced),
        "chosen option": None if choice is None else choice.option,
        "monthly bill (USD)": monthly,
        "cost per customer (USD/month)": (
            None if monthly is None else cost_per_customer(monthly, customers)
        ),
        "choice changes below (requests/day)": None if down is None else down * rpd,
        "choice changes above (requests/day)": None if up is None else up * rpd,
    }
