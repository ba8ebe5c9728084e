"""Checks for lab 08 (fine-tune and schedule): spot hours with checkpoints, GPU packing.

Each check runs the student's function on many random inputs (Hypothesis when installed, a
seeded generator otherwise) against the kit's reference, and refuses two shortcuts: calling
the kit's own implementation, and returning a constant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from infralab.checks import CheckFailed, CheckPassed, check, points, run_student_function
from infralab.fleet import packing
from infralab.training import bill

N_CASES = 60


def _refuse_kit(fn: Any, kit: Callable[..., Any], name: str) -> None:
    if not callable(fn):
        raise CheckFailed(f"{name} should be a function.", "Define it with `def`.")
    if fn is kit or getattr(fn, "__wrapped__", None) is kit or _uses_kit(fn, kit):
        raise CheckFailed(
            f"{name} calls the kit's own {kit.__module__}.{kit.__name__}.",
            "Write the rule yourself: the point of the step is the arithmetic.",
        )


def _uses_kit(fn: Any, kit: Callable[..., Any]) -> bool:
    """True when the function's code reaches the kit's function by a global name."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    names = set(code.co_names)
    g = getattr(fn, "__globals__", {})
    for n in names:
        obj = g.get(n)
        if obj is kit or (kit.__name__ in names and getattr(obj, kit.__name__, None) is kit):
            return True
    return False


def _cases(draw_one: Callable[[random.Random], tuple], seed: int = 8) -> list[tuple]:
    """Random inputs: from Hypothesis when installed (it also tries edge cases), else seeded."""
    try:
        from hypothesis import given, settings
        from hypothesis import strategies as st

        found: list[tuple] = []

        @settings(max_examples=N_CASES, deadline=None, database=None, derandomize=True)
        @given(st.randoms(use_true_random=False))
        def collect(rng: random.Random) -> None:
            found.append(draw_one(rng))

        collect()
        return found
    except ImportError:
        rng = random.Random(seed)
        return [draw_one(rng) for _ in range(N_CASES)]


# ------------------------------------------------------------------ step 1: spot hours
def _spot_case(rng: random.Random) -> tuple[float, float, float, float, float]:
    work = round(rng.uniform(1, 200), 3)
    interval = round(rng.uniform(0.05, 1.2) * work, 3) or 0.05
    frac = (work / interval) % 1
    if frac < 1e-6 or frac > 1 - 1e-6:  # an exact multiple: float rounding is not the lesson
        interval = round(interval * 1.013, 3)
    return (
        work,
        interval,
        round(rng.uniform(0, 0.5), 3),  # checkpoint write, hours
        round(rng.choice([0.0, rng.uniform(0.001, 0.5)]), 4),  # interruptions per hour
        round(rng.uniform(0, 1), 3),  # restart, hours
    )


@points(3)
def check_spot_hours(fn: Any) -> CheckPassed:
    """``fn(work_h, interval_h, checkpoint_h, rate_per_h, restart_h)`` -> expected wall hours."""
    _refuse_kit(fn, bill.expected_spot_hours, "spot_hours")
    cases = _cases(_spot_case)
    outputs = set()
    for args in cases:
        got = run_student_function(fn, *args, name="spot_hours")
        want = bill.expected_spot_hours(*args)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"spot_hours{args} returned {got!r}, not a number.", "Return a float (hours)."
            ) from None
        if not math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9):
            raise CheckFailed(
                f"spot_hours{args} = {value:.6g}, expected {want:.6g}.",
                "Split the work into segments of interval_h (plus a shorter last one); a full "
                "segment runs interval_h + checkpoint_h. With interruption rate r and restart "
                "R, one segment of length T takes (1/r + R)(exp(r T) - 1) on average; with "
                "r = 0 it takes T. The last, partial segment writes no checkpoint.",
            )
        outputs.add(round(value, 9))
    return check(
        len(outputs) > len(cases) // 2,
        ok=f"spot_hours matches the expected wall time on {len(cases)} random jobs.",
        problem="spot_hours returns the same few values whatever the job.",
        hint="It must depend on every argument.",
    )


# ------------------------------------------------------------------ step 2: first fit
def _packing_case(rng: random.Random) -> tuple[list[float], int]:
    n = rng.randint(1, 4)
    demands = [rng.choice([0.25, 0.5, 0.75, 1.0, 0.3, 0.6, 0.1]) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.2 and n >= 2:
        demands.append(float(rng.randint(2, n)))  # a multi-GPU job
    return demands, n


@points(3)
def check_first_fit(fn: Any) -> CheckPassed:
    """``fn(demands, n_gpus)`` -> one GPU index (or None: queued) per job, first fit."""
    _refuse_kit(fn, packing.first_fit, "first_fit")
    cases = _cases(_packing_case)
    distinct = set()
    for demands, n in cases:
        got = run_student_function(fn, list(demands), n, name="first_fit")
        want = packing.first_fit(demands, n)
        if not isinstance(got, list) or len(got) != len(demands):
            raise CheckFailed(
                f"first_fit({demands}, {n}) returned {got!r}.",
                "Return a list with one entry per job: a GPU index, or None when it must queue.",
            )
        if got != want:
            raise CheckFailed(
                f"first_fit({demands}, {n}) = {got}, expected {want}.",
                "Keep each GPU's free share (start at 1.0). For each job in order, take the "
                "lowest-numbered GPU whose free share is at least the demand (allow 1e-9 for "
                "rounding); a job of k >= 2 GPUs needs k GPUs that are completely free and "
                "reports the first of them.",
            )
        distinct.add(tuple(got))
    return check(
        len(distinct) > 5,
        ok=f"first_fit packs like the reference on {len(cases)} random fleets.",
        problem="first_fit gives the same answer whatever the jobs.",
        hint="It must depend on the demands and the number of GPUs.",
    )


# ------------------------------------------------------------------ uses of the two rules
@points(2)
def check_spot_choice(
    best_interval: Any,
    spot_cost: Any,
    on_demand_cost: Any,
    work_h: float,
    intervals: Any,
    checkpoint_h: float,
    rate_per_h: float,
    restart_h: float,
    spot_usd_h: float,
    on_demand_usd_h: float,
) -> CheckPassed:
    """The cheapest interval among ``intervals`` on spot, its cost, and on-demand's cost."""
    from infralab.checks import check_close

    costs = [
        bill.expected_spot_hours(work_h, float(i), checkpoint_h, rate_per_h, restart_h) * spot_usd_h
        for i in intervals
    ]
    cheapest = min(costs)
    try:
        chosen = float(best_interval)
        i = min(range(len(costs)), key=lambda j: abs(float(intervals[j]) - chosen))
    except (TypeError, ValueError):
        raise CheckFailed("best_interval should be a number (hours).") from None
    if abs(float(intervals[i]) - chosen) > 1e-9 * max(1.0, chosen) or costs[i] > cheapest * 1.001:
        raise CheckFailed(
            f"best_interval = {best_interval!r} is not the cheapest of the intervals given.",
            "Compute spot_hours(...) x the spot price for every interval and take the argmin.",
        )
    check_close(spot_cost, cheapest, rel=1e-3, name="spot_cost")
    best = float(intervals[i])
    od = bill.expected_spot_hours(work_h, best, checkpoint_h, 0.0, restart_h) * on_demand_usd_h
    check_close(
        on_demand_cost,
        od,
        rel=1e-3,
        name="on_demand_cost",
        hint="On-demand is never interrupted (rate 0) but still writes its checkpoints.",
    )
    verdict = "spot" if cheapest < od else "on-demand"
    return CheckPassed(
        f"Right: checkpoint every {best:.2f} h; {verdict} is cheaper "
        f"({cheapest:,.0f} vs {od:,.0f} USD)."
    )


@points(2)
def check_fragmentation(
    demands: list[float], n_gpus: int, free_total: Any, queued_demand: Any
) -> CheckPassed:
    """Free GPU share left after first-fit, and the share the queued jobs wanted."""
    from infralab.checks import check_close

    ref = packing.fragmentation(demands, n_gpus)
    check_close(free_total, ref["free_total"], rel=1e-6, name="free_total",
                hint="n_gpus minus the demands of every job that was placed.")  # fmt: skip
    check_close(queued_demand, ref["queued_demand"], rel=1e-6, name="queued_demand",
                hint="Add the demands of the jobs first_fit returned None for.")  # fmt: skip
    hidden = ref["free_total"] >= ref["queued_demand"] > 0
    return CheckPassed(
        f"Right: {ref['free_total']:.2f} GPU free in total, largest free share on one GPU "
        f"{ref['largest_free_share']:.2f}; "
        + (
            "the queued jobs would fit in the total: fragmentation."
            if hidden
            else "no hidden room."
        )
    )
