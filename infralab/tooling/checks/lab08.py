"""Checks for lab 08 (fine-tune and schedule): the checkpoint interval under spot preemption
(Young/Daly), a seeded preemption simulator, GPU packing.

Each check runs the student's function on many random inputs (Hypothesis when installed, a
seeded generator otherwise) against the reference reached through
``infralab.tooling.checks.references.lab08`` (public checks where the references are absent), and
refuses two shortcuts: calling the kit's own implementation, and returning a constant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from infralab.economics.costs import training_bill as bill
from infralab.engines.fleet import packing
from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    expect,
    number,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_student_function,
    same_twice,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_checkpoint_interval",
    "check_first_fit",
    "check_fragmentation",
    "check_interval_waste",
    "check_simulate_waste",
    "check_spot_choice",
]


N_CASES = 60
INTERVAL_HINT = (
    "Young's rule: the square root of 2 x the checkpoint cost x the mean time between "
    "interruptions (MTBF), both in hours (Daly's higher-order form is accepted too). Check both "
    "inputs first and raise ValueError, saying which, when one is zero, negative or not finite."
)  # the lab's own statement of the rule
SIM_HINT = (
    "Split the work into segments of interval_h (each followed by a checkpoint write of "
    "checkpoint_h) and a shorter last one with no write. For each run, draw the time to the next "
    "interruption from rng.exponential(mtbf_h): if it comes after the segment ends, the segment "
    "is done; else add that lost time and restart_h and try the segment again. Waste = wall "
    "time - work_h; return its mean over the trials, with rng = np.random.default_rng(seed)."
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


# ------------------------------------------------------------------ step 1: the interval
BAD_INPUTS = [(0.0, 10.0), (-0.1, 10.0), (0.1, 0.0), (0.1, -5.0), (math.nan, 10.0), (0.1, math.inf)]


def _interval_case(rng: random.Random) -> tuple[float, float]:
    mtbf = round(rng.uniform(0.5, 200.0), 3)
    return round(rng.uniform(0.001, 0.4) * mtbf, 5) or 0.001, mtbf


def _close_to_either(got: Any, want: tuple[float, float]) -> bool:
    try:
        value = float(got)
    except (TypeError, ValueError):
        return False
    return any(math.isclose(value, w, rel_tol=1e-6) for w in want)


def _bad_inputs_raise(fn: Any, name: str) -> None:
    """Zero, negative or non-finite cost or MTBF: a ValueError with a message, not a number."""
    for args in BAD_INPUTS:
        try:
            got = fn(*args)
        except NotImplementedError:
            raise CheckFailed(f"{name} is still the placeholder.",
                              "Replace `raise NotImplementedError` with code.") from None  # fmt: skip
        except ValueError as exc:
            expect(bool(str(exc).strip()), f"{name}{args} raised a ValueError with no message.",
                   "Say which argument is wrong and why: the student who calls it reads it.")  # fmt: skip
            continue
        except Exception as exc:  # noqa: BLE001 - the student's error, reported as advice
            if getattr(exc, "fatal", False):
                raise
            raise CheckFailed(f"{name}{args} raised {type(exc).__name__}, not ValueError.",
                              INTERVAL_HINT) from None  # fmt: skip
        raise CheckFailed(f"{name}{args} returned {got!r} instead of raising ValueError.",
                          INTERVAL_HINT)  # fmt: skip


@points(3)
def check_checkpoint_interval(fn: Any) -> CheckPassed:
    """``fn(checkpoint_h, mtbf_h)`` -> Young's sqrt(2 C M) (or Daly's higher-order form);
    ValueError for a zero, negative or non-finite cost or MTBF."""
    name = "checkpoint_interval"
    refuse_kit_function(fn, [bill.checkpoint_interval, bill.young_interval], name=name,
                        sample_args=(0.1, 10.0), hint=INTERVAL_HINT)  # fmt: skip
    ref = _ref()
    if ref is None:
        return _public_interval(fn)
    from hypothesis import strategies as st

    tried = agrees_with_reference(
        fn,
        ref.checkpoint_interval,
        st.tuples(st.floats(0.5, 500.0), st.floats(0.0005, 0.45)).map(
            lambda a: (a[0] * a[1], a[0])
        ),
        name=name,
        hint=INTERVAL_HINT,
        edge_cases=[(5 / 60, 10.0), (0.5, 1.0), (1e-4, 1e4)],
        same=_close_to_either,
    )
    _bad_inputs_raise(fn, name)
    return CheckPassed(f"{name} matches Young/Daly on {tried} random jobs and refuses bad input.")


def _public_interval(fn: Any) -> CheckPassed:
    """Positive hours; longer checkpoints and rarer interruptions both lengthen the interval;
    for a cheap checkpoint it is close to sqrt(2 C M); bad input raises ValueError."""
    name = "checkpoint_interval"
    rng = public_rng(80)
    for _ in range(30):
        c, m = _interval_case(rng)
        got = call_number(fn, c, m, name=name)
        expect(got > 0, f"{name}({c:g}, {m:g}) = {got:g} is not a positive interval.",
               INTERVAL_HINT)  # fmt: skip
        expect(call_number(fn, c * 1.5, m, name=name) > got,
               "A longer checkpoint write should lengthen the interval.", INTERVAL_HINT)  # fmt: skip
        expect(call_number(fn, c, m * 1.5, name=name) > got,
               "Rarer interruptions should lengthen the interval.", INTERVAL_HINT)  # fmt: skip
        tiny = c * 1e-4
        near = call_number(fn, tiny, m, name=name) / math.sqrt(2 * tiny * m)
        expect(0.97 < near < 1.03, f"For a cheap checkpoint {name} is far from sqrt(2 C M).",
               INTERVAL_HINT)  # fmt: skip
        same_twice(fn, (c, m), got, name=name)
    _bad_inputs_raise(fn, name)
    return public_pass(f"{name} grows with the checkpoint cost and the MTBF and refuses bad input")


# The grid the optimum check searches, in hours of work, and its simulation's size: fixed, so
# the check is deterministic (the same seed at every interval: common random numbers).
GRID_H = [0.02 * 1.15**i for i in range(70)]  # 0.02 h to about 320 h
OPTIMUM_TRIALS = 3000
OPTIMUM_TOLERANCE = 0.05  # 5 % above the grid's minimum waste


def _optimum_cases() -> list[tuple[float, float, float, float]]:
    """(work_h, checkpoint_h, mtbf_h, restart_h): long jobs, checkpoints cheap next to the
    MTBF (the regime the rule is for); seeded, so every run tries the same jobs."""
    rng = public_rng(84)
    cases = []
    for _ in range(6):
        mtbf = round(rng.uniform(2.0, 60.0), 2)
        ckpt = round(mtbf * rng.uniform(0.001, 0.03), 4)
        cases.append(
            (round(mtbf * rng.uniform(3, 8), 1), ckpt, mtbf, round(rng.uniform(0, 0.5), 2))
        )
    return cases


@points(2)
def check_interval_waste(fn: Any) -> CheckPassed:
    """The simulated waste at ``fn(checkpoint_h, mtbf_h)`` is within 5 % of the least waste
    over a grid of intervals (the kit's seeded simulator, the same seed at each interval)."""
    name = "checkpoint_interval"
    worst = 0.0
    for work, ckpt, mtbf, restart in _optimum_cases():
        tau = call_number(fn, ckpt, mtbf, name=name)
        expect(tau > 0, f"{name}({ckpt:g}, {mtbf:g}) = {tau:g} is not a positive interval.",
               INTERVAL_HINT)  # fmt: skip

        def waste(interval: float, work=work, ckpt=ckpt, mtbf=mtbf, restart=restart) -> float:
            sim = bill.simulate_waste(work, interval, ckpt, mtbf, restart,
                                      trials=OPTIMUM_TRIALS, seed=8)  # fmt: skip
            return float(sim.mean())

        best = min(waste(g) for g in GRID_H if g <= work)
        mine = waste(tau)
        over = mine / best - 1 if best > 0 else 0.0
        worst = max(worst, over)
        expect(
            over <= OPTIMUM_TOLERANCE,
            f"Checkpointing every {tau:.3g} h (cost {ckpt:g} h, MTBF {mtbf:g} h, {work:g} h of "
            f"work) wastes {mine:.3g} h; an interval on the grid wastes {over:.0%} less.",
            INTERVAL_HINT,
        )
    text = (
        f"Your interval wastes at most {worst:.1%} more than the best interval of a "
        f"{len(GRID_H)}-point grid, on {len(_optimum_cases())} simulated jobs "
        f"({OPTIMUM_TRIALS} seeded runs each)"
    )
    # the same test in the release (it needs no reference); the grader runs it again
    return CheckPassed(text + ".") if _ref() else public_pass(text)


# ------------------------------------------------------------------ step 2: the simulator
SIM_TRIALS = 600
SIM_SIGMAS = 5.0


def _sim_case(rng: random.Random) -> tuple[float, float, float, float, float]:
    work = round(rng.uniform(2, 20), 2)
    interval = round(rng.uniform(0.4, 5), 3)
    if abs(work / interval - round(work / interval)) < 1e-3:
        interval = round(interval * 1.013, 3)
    return (work, interval, round(rng.uniform(0, 0.3), 3), round(rng.uniform(2, 30), 2),
            round(rng.uniform(0, 0.5), 3))  # fmt: skip


@points(3)
def check_simulate_waste(fn: Any) -> CheckPassed:
    """``fn(work_h, interval_h, checkpoint_h, mtbf_h, restart_h, trials, seed)`` -> mean
    wasted hours over ``trials`` seeded runs: within 5 standard errors of the expected waste,
    the same for the same seed, different for another, exact with no interruptions."""
    name = "simulate_waste"
    kit = [bill.simulate_waste, bill.simulate_spot, bill.expected_spot_hours,
           bill.expected_segment_hours, bill.waste_curve]  # fmt: skip
    refuse_kit_function(fn, kit, name=name, sample_args=(4.0, 1.0, 0.1, 3.0, 0.1, 20, 0),
                        hint=SIM_HINT)  # fmt: skip
    rng = public_rng(83)
    ref = _ref()
    cases = [_sim_case(rng) for _ in range(8)]
    for i, (work, interval, ckpt, mtbf, restart) in enumerate(cases):
        args = (work, interval, ckpt, mtbf, restart, SIM_TRIALS, 100 + i)
        got = call_number(fn, *args, name=name)
        same_twice(fn, args, got, name=name)
        if ref is not None:
            want, sem = ref.expected_waste(work, interval, ckpt, mtbf, restart, SIM_TRIALS)
            expect(
                abs(got - want) <= SIM_SIGMAS * sem + 1e-9 * work,
                f"{name}{args} = {got:.4g} h: more than {SIM_SIGMAS:g} standard errors from "
                "the expected waste of that job.",
                SIM_HINT,
            )
    work, interval, ckpt, mtbf, restart = cases[0]
    full = int(work // interval)
    calm = call_number(fn, work, interval, ckpt, 1e12, restart, SIM_TRIALS, 1, name=name)
    expect(math.isclose(calm, full * ckpt, rel_tol=1e-6, abs_tol=1e-9),
           f"With (almost) no interruptions {name} wasted {calm:.6g} h, not the {full} "
           "checkpoint writes alone.", SIM_HINT)  # fmt: skip
    seeds = {round(call_number(fn, work, interval, ckpt, 2.0, restart, 50, s, name=name), 9)
             for s in range(4)}  # fmt: skip
    expect(len(seeds) > 1, f"{name} gives the same waste whatever the seed.",
           "Draw the times between interruptions from np.random.default_rng(seed).")  # fmt: skip
    busy = call_number(fn, work, interval, ckpt, 1.0, restart, SIM_TRIALS, 7, name=name)
    quiet = call_number(fn, work, interval, ckpt, 40.0, restart, SIM_TRIALS, 7, name=name)
    expect(busy > quiet, "Forty times more frequent interruptions did not waste more.", SIM_HINT)
    if ref is None:
        return public_pass(f"{name} is seeded, exact without interruptions and grows with them")
    return CheckPassed(
        f"{name} agrees with the expected waste on {len(cases)} random jobs "
        f"({SIM_TRIALS} runs each), is seeded, and is exact without interruptions."
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
    checkpoint_h: float,
    mtbf_h: float,
    restart_h: float,
    spot_usd_h: float,
    on_demand_usd_h: float,
) -> CheckPassed:
    """The interval your rule gives for this job, the expected spot cost at it, and the
    on-demand cost (never interrupted, the same checkpoints)."""
    from infralab.tooling.checks import check_close

    ref = _ref()
    chosen = number(best_interval, name="best_interval")
    if ref is None:
        expect(chosen > 0, f"best_interval = {chosen:g} h is not a positive interval.",
               "Call your checkpoint_interval(ckpt_h, mtbf_h).")  # fmt: skip
        for value, price, what in ((spot_cost, spot_usd_h, "spot_cost"),
                                   (on_demand_cost, on_demand_usd_h, "on_demand_cost")):  # fmt: skip
            got = number(value, name=what)
            expect(got >= work_h * price * (1 - 1e-6),
                   f"{what} = {got:,.2f} USD is less than the work alone costs at that price.",
                   "Price the expected wall hours at your interval, not the work.")  # fmt: skip
        return public_pass("best_interval is positive and both costs cover the work")
    want = ref.checkpoint_interval(checkpoint_h, mtbf_h)
    expect(
        _close_to_either(chosen, want),
        f"best_interval = {chosen:.4g} h is not what Young/Daly give for this job.",
        "Call your checkpoint_interval(ckpt_h, mtbf_h) with this job's checkpoint cost and MTBF.",
    )
    spot, od = ref.spot_and_on_demand(
        work_h, chosen, checkpoint_h, mtbf_h, restart_h, spot_usd_h, on_demand_usd_h
    )
    check_close(spot_cost, spot, rel=1e-3, name="spot_cost",
                hint="bill.expected_spot_hours(work_h, best_interval, ckpt_h, 1 / mtbf_h, "
                "restart_h) x the spot price.")  # fmt: skip
    check_close(on_demand_cost, od, rel=1e-3, name="on_demand_cost",
                hint="On-demand is never interrupted (rate 0) but still writes its checkpoints.")  # fmt: skip
    verdict = "spot" if spot < od else "on-demand"
    return CheckPassed(
        f"Right: checkpoint every {chosen:.2f} h; {verdict} is cheaper "
        f"({spot:,.0f} vs {od:,.0f} USD)."
    )


@points(2)
def check_fragmentation(
    demands: list[float], n_gpus: int, free_total: Any, queued_demand: Any
) -> CheckPassed:
    """Free GPU share left after first-fit, and the share the queued jobs wanted."""
    from infralab.tooling.checks import check_close

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
