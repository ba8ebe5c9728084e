"""Where two options cost the same per month, and a sweep of bills over traffic."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from infralab.economics.costs.pricing import (
    CostError,
)
from infralab.economics.costs.pricing import (
    check_nonneg as _nonneg,
)
from infralab.economics.costs.workload import Option, Workload

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = ["crossings"]


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

    found, values = crossings(diff, low, high, points)
    rng = f"between {low:,.0f} and {high:,.0f} requests/day"
    sign_low = next((v for v in values if v != 0), 0.0)
    if not found:
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
    verdict = f"break-even at {found[0]:,.0f} requests/day: {below} is cheaper below, {other} above"
    if len(found) > 1:
        where = ", ".join(f"{c:,.0f}" for c in found)
        verdict += (
            f"; they cross {len(found)} times ({where} requests/day) because whole "
            f"instances make the bill a staircase, and {above} is cheaper at the top of the range"
        )
    return BreakEven(a.name, b.name, found[0], tuple(found), verdict, below, above)


def crossings(
    diff: Callable[[float], float], low: float, high: float, points: int = 400
) -> tuple[list[float], list[float]]:
    """Where ``diff(r)`` (one bill minus the other at r requests/day) changes sign, scanning a
    log grid from ``low`` to ``high`` and refining each change by bisection; and the grid's
    values. Equal bills count as crossed: the same answer whichever option is first."""
    grid = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    values = [diff(r) for r in grid]
    found: list[float] = []
    last: tuple[float, float] | None = None  # the last grid point where the bills differ
    for r1, d1 in zip(grid, values, strict=True):
        if d1 == 0:
            continue
        if last is not None and (last[1] < 0) != (d1 < 0):
            lo, hi, d0 = last[0], r1, last[1]
            while hi / lo > 1 + 1e-7:  # bisection on the sign change, to 1e-7 relative
                mid = math.sqrt(lo * hi)
                dm = diff(mid)
                if dm != 0 and (dm < 0) == (d0 < 0):
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        last = (r1, d1)
    return found, values


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
