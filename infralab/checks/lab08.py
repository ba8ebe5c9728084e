"""Checks for lab 08 (fine-tune and schedule): spot hours with checkpoints, GPU packing.

Each check runs the student's function on many random inputs (Hypothesis when installed, a
seeded generator otherwise) against the reference reached through
``infralab.checks.references.lab08`` (public checks where the references are absent), and
refuses two shortcuts: calling the kit's own implementation, and returning a constant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from infralab import checks
from infralab.checks import (
    CheckFailed,
    CheckPassed,
    call_number,
    check,
    expect,
    number,
    points,
    public_pass,
    public_rng,
    run_student_function,
    same_twice,
)
from infralab.fleet import packing
from infralab.training import bill

N_CASES = 60
SPOT_HINT = (
    "Split the work into segments of interval_h (plus a shorter last one); a full segment runs "
    "interval_h + checkpoint_h. With interruption rate r and restart R, one segment of length T "
    "takes (1/r + R)(exp(r T) - 1) on average; with r = 0 it takes T. The last, partial segment "
    "writes no checkpoint."
)  # the lab's own statement of the rule
FIT_HINT = (
    "Keep each GPU's free share (start at 1.0). For each job in order, take the lowest-numbered "
    "GPU whose free share is at least the demand (allow 1e-9 for rounding); a job of k >= 2 GPUs "
    "needs k GPUs that are completely free and reports the first of them."
)  # the lab's own statement of the rule


def _ref() -> Any:
    return checks.reference_module("lab08")


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
    ref = _ref()
    if ref is None:
        return _public_spot_hours(fn)
    cases = _cases(_spot_case)
    outputs = set()
    for args in cases:
        got = run_student_function(fn, *args, name="spot_hours")
        want = ref.spot_hours(*args)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise CheckFailed(
                f"spot_hours{args} returned {got!r}, not a number.", "Return a float (hours)."
            ) from None
        if not math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-9):
            raise CheckFailed(
                f"spot_hours{args} = {value:.6g}, expected {want:.6g}.",
                SPOT_HINT,
            )
        outputs.add(round(value, 9))
    return check(
        len(outputs) > len(cases) // 2,
        ok=f"spot_hours matches the expected wall time on {len(cases)} random jobs.",
        problem="spot_hours returns the same few values whatever the job.",
        hint="It must depend on every argument.",
    )


def _public_spot_hours(fn: Any) -> CheckPassed:
    """A number of hours: the work alone with no interruptions and no checkpoints, never less
    than the work; more interruptions, longer checkpoints or slower restarts never shorten it,
    and any interruptions at all lengthen it."""
    name = "spot_hours"
    rng = public_rng(81)
    for _ in range(30):
        work, interval, ckpt, rate, restart = _spot_case(rng)
        rate = rate or 0.05
        args = (work, interval, ckpt, rate, restart)
        got = call_number(fn, *args, name=name)
        expect(got >= work * (1 - 1e-9), f"spot_hours{args} = {got:.6g}: less than the work.",
               SPOT_HINT)  # fmt: skip
        calm = call_number(fn, work, interval, 0.0, 0.0, restart, name=name)
        expect(
            math.isclose(calm, work, rel_tol=1e-6),
            f"With no interruptions and free checkpoints a job of {work:g} h took {calm:.6g} h.",
            SPOT_HINT,
        )
        for i, what in (
            (2, "longer checkpoints"),
            (3, "more interruptions"),
            (4, "slower restarts"),
        ):
            worse = list(args)
            worse[i] = args[i] * 2 + 0.01
            expect(call_number(fn, *worse, name=name) >= got * (1 - 1e-9),
                   f"{what.capitalize()} made the job shorter.", SPOT_HINT)  # fmt: skip
        unbroken = call_number(fn, work, interval, ckpt, 0.0, restart, name=name)
        expect(got > unbroken, "Interruptions did not lengthen the job.", SPOT_HINT)
        same_twice(fn, args, got, name=name)
    return public_pass(f"{name} is the work alone without interruptions or checkpoints, and "
                       "grows with interruptions, checkpoints and restarts")  # fmt: skip


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
    ref = _ref()
    if ref is None:
        return _public_first_fit(fn)
    cases = _cases(_packing_case)
    distinct = set()
    for demands, n in cases:
        got = run_student_function(fn, list(demands), n, name="first_fit")
        want = ref.first_fit(demands, n)
        if not isinstance(got, list) or len(got) != len(demands):
            raise CheckFailed(
                f"first_fit({demands}, {n}) returned {got!r}.",
                "Return a list with one entry per job: a GPU index, or None when it must queue.",
            )
        if got != want:
            raise CheckFailed(
                f"first_fit({demands}, {n}) = {got}, expected {want}.",
                FIT_HINT,
            )
        distinct.add(tuple(got))
    return check(
        len(distinct) > 5,
        ok=f"first_fit packs like the reference on {len(cases)} random fleets.",
        problem="first_fit gives the same answer whatever the jobs.",
        hint="It must depend on the demands and the number of GPUs.",
    )


def _public_first_fit(fn: Any) -> CheckPassed:
    """One entry per job, a GPU index or None; the first job that fits goes on GPU 0; no GPU
    carries more than its whole; a job too big for the fleet queues; a job never queues while
    some GPU still has room for it."""
    name = "first_fit"
    rng = public_rng(82)
    for _ in range(40):
        n = rng.randint(1, 4)
        demands = [
            rng.choice([0.25, 0.5, 0.75, 1.0, 0.3, 0.6, 0.1]) for _ in range(rng.randint(1, 12))
        ]
        got = run_student_function(fn, list(demands), n, name=name)
        expect(
            isinstance(got, list) and len(got) == len(demands)
            and all(g is None or (isinstance(g, int) and not isinstance(g, bool) and 0 <= g < n)
                    for g in got),
            f"first_fit({demands}, {n}) returned {got!r}.",
            "Return a list with one entry per job: a GPU index, or None when it must queue.",
        )  # fmt: skip
        expect(got[0] == 0, f"first_fit({demands}, {n}) did not put the first job on GPU 0.",
               FIT_HINT)  # fmt: skip
        free = [1.0] * n
        for d, g in zip(demands, got, strict=True):
            if g is None:
                expect(all(f + 1e-9 < d for f in free),
                       f"first_fit({demands}, {n}) queued a job of {d} while a GPU had room.",
                       FIT_HINT)  # fmt: skip
                continue
            free[g] -= d
            expect(free[g] >= -1e-9, f"first_fit({demands}, {n}) = {got} overfills GPU {g}.",
                   FIT_HINT)  # fmt: skip
        big = run_student_function(fn, [float(n + 1)], n, name=name)
        expect(big == [None], f"A job of {n + 1} GPUs on a fleet of {n} should queue.", FIT_HINT)
        same_twice(fn, (list(demands), n), got, name=name)
    return public_pass(f"{name} never overfills a GPU, never queues a job that fits, and "
                       "queues what cannot")  # fmt: skip


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

    ref = _ref()
    if ref is None:
        chosen = number(best_interval, name="best_interval")
        expect(
            any(abs(float(i) - chosen) <= 1e-9 * max(1.0, chosen) for i in intervals),
            f"best_interval = {best_interval!r} is not one of the intervals given.",
            "Compute the spot cost of every interval and take the cheapest.",
        )
        for value, price, what in ((spot_cost, spot_usd_h, "spot_cost"),
                                   (on_demand_cost, on_demand_usd_h, "on_demand_cost")):  # fmt: skip
            got = number(value, name=what)
            expect(got >= work_h * price * (1 - 1e-6),
                   f"{what} = {got:,.2f} USD is less than the work alone costs at that price.",
                   "Price the expected wall hours (your spot_hours), not the work.")  # fmt: skip
        return public_pass("best_interval is one of the intervals and both costs cover the work")
    costs = ref.spot_choice(work_h, intervals, checkpoint_h, rate_per_h, restart_h, spot_usd_h)
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
    od = ref.on_demand_cost(work_h, best, checkpoint_h, restart_h, on_demand_usd_h)
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

    refs = _ref()
    if refs is None:
        free = number(free_total, name="free_total")
        queued = number(queued_demand, name="queued_demand")
        expect(0 <= free <= n_gpus + 1e-9, f"free_total = {free:g} on a fleet of {n_gpus} GPUs.",
               "n_gpus minus the demands of every job that was placed.")  # fmt: skip
        expect(0 <= queued <= sum(demands) + 1e-9,
               f"queued_demand = {queued:g} is more than all jobs asked for.",
               "Add the demands of the jobs first_fit returned None for.")  # fmt: skip
        return public_pass("free_total and queued_demand are within the fleet and the jobs")
    ref = refs.fragmentation(demands, n_gpus)
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
