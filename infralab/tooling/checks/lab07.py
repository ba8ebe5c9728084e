"""Checks for lab 07 (capstone): your scenario, your decision rules, your flip search, your memo.

The student writes the decision itself: the constraint filter (``allowed``), the cheapest
allowed option (``cheapest_allowed``), the cost per customer and the flip search
(``flip_point``, a bisection over one input). Each is compared on random scenarios, bills and
choice functions (hypothesis, edge cases first) with references kept in
``infralab.tooling.checks.references.lab07`` (public property checks where they are absent); the
kit's own rules handed in as the student's are refused. The memo check reads the numbers
section of the student's memo and compares every figure with the one recomputed here from the
scenario and inputs; the recommendation must be one of the three labels exactly. The free-text
reasons are not judged here: the grader puts them on the rubric sheet for a person to score.
The judgements behind these checks live beside them: ``capstone_scenarios`` (random scenarios
and bills) and ``memo_reading`` (reading the memo); this module is the list of public checks.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    expect,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_student_function,
    same_twice,
    scales_as,
)
from infralab.tooling.checks.capstone_scenarios import (
    KINDS,
    OPTION_NAMES,
    _bill,
    _bills,
    _models,
    _scenario,
    _scenarios,
)
from infralab.tooling.checks.memo_reading import (
    FLIP_TOLERANCE,
    MEMO_HINT,
    _as_number,
    _compare,
    _parse_numbers,
    _section,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_cheapest",
    "check_constraint_filter",
    "check_cost_per_customer",
    "check_flip_point",
    "check_memo",
    "check_scenario",
]


LABELS = ("traditional cloud", "AI infrastructure", "hybrid")
# The memo's numbers section, label by label, and how each figure is compared: "count" exact,
# "usd0"/"rpd0" within the rounding of a whole number, "usd2" within a cent, "flip" within
# FLIP_TOLERANCE (a bisection), "text" exactly.
MEMO_NUMBERS = {
    "requests per day": "rpd0",
    "options priced": "count",
    "options allowed": "count",
    "chosen option": "text",
    "monthly bill (USD)": "usd0",
    "cost per customer (USD/month)": "usd2",
    "choice changes below (requests/day)": "flip",
    "choice changes above (requests/day)": "flip",
}


def _ref() -> Any:
    return checks.reference_module("lab07")


def _kit() -> list[Callable[..., Any]]:
    from infralab.economics.decision import rules
    from infralab.economics.decision.sensitivity import sensitivity

    ref = _ref()
    kit = [rules.constraints, rules.decide, rules.choose, sensitivity]
    if ref:
        kit += [ref.allowed, ref.cheapest_allowed, ref.cost_per_customer, ref.flip_point]
    return kit


# ---------------------------------------------------------------- 1. scenario
@points(1)
def check_scenario(sc: Any) -> CheckPassed:
    """A scenario the decision rules can use, with believable numbers."""
    from infralab.economics.decision import Scenario

    if not isinstance(sc, Scenario):
        raise CheckFailed(
            f"my_scenario should be a decision.Scenario, not {type(sc).__name__}.",
            "Start from decision.scenario('legal') and change fields with dataclasses.replace().",
        )
    w = sc.workload
    check(
        w.requests_per_day > 0,
        ok="",
        problem="requests_per_day is 0: nothing to decide.",
        hint="Give the traffic you expect per day.",
    )
    check(
        w.tokens_out > 0,
        ok="",
        problem="tokens_out is 0: the model writes nothing.",
        hint="A summary is a few hundred tokens.",
    )
    check(
        sc.title.strip() != "" and sc.story.strip() != "",
        ok="",
        problem="Give your scenario a title and a one-sentence story.",
    )
    return CheckPassed(
        f"Scenario '{sc.title}': {w.requests_per_day:,.0f} requests/day, "
        f"{w.tokens_in:,.0f} in / {w.tokens_out:,.0f} out tokens, {sc.demand} demand."
    )


# ---------------------------------------------------------------- 2. the constraint filter
ALLOWED_HINT = (
    "Go through the lab's five rules one by one: a bill that cannot serve (infinite cost), "
    "misses the latency target, sends confidential prompts to an API, runs the small model "
    "where it is not good enough, or commits to a reserved GPU under demand that is not "
    "stable, is not allowed. Return True or False."
)


def _public_allowed(fn: Any) -> CheckPassed:
    """Properties the lab states: an infinite bill or a missed target is never allowed; a
    finite GPU bill that meets the target is allowed for a scenario without constraints."""
    from infralab.economics.costs import model as costs

    name = "allowed"
    free = _scenario(False, True, "stable")
    rng = public_rng(73)
    for _ in range(20):
        kind = rng.choice(KINDS)
        usd = rng.uniform(1, 1e5)
        ok = _bill(rng.choice(OPTION_NAMES), kind, usd, True, costs.GPU_MODEL)
        got = run_student_function(fn, free, ok, name=name)
        expect(got is True, f"{name} refused {ok.option} ({kind}, ${usd:,.0f}, meets the "
               "target) for a scenario with no constraints.", ALLOWED_HINT)  # fmt: skip
        for bad in (_bill(ok.option, kind, math.inf, True, costs.GPU_MODEL),
                    _bill(ok.option, kind, usd, False, costs.GPU_MODEL)):  # fmt: skip
            got = run_student_function(fn, free, bad, name=name)
            expect(got is False, f"{name} allowed a bill that cannot serve or misses the "
                   "latency target.", ALLOWED_HINT)  # fmt: skip
    return public_pass(f"{name} refuses bills that cannot serve or miss the target")


@points(2)
def check_constraint_filter(fn: Any) -> CheckPassed:
    """``fn(scenario, bill)`` -> True when the scenario's explicit constraints allow the bill."""
    from hypothesis import strategies as st

    free = _scenario(False, True, "stable")
    sample = (free, _bill("H100 spot", "dedicated_gpu", 100.0, True, "x"))
    refuse_kit_function(fn, _kit(), name="allowed", sample_args=sample, hint=ALLOWED_HINT)
    ref = _ref()
    if ref is None:
        return _public_allowed(fn)
    models = _models()
    tried = agrees_with_reference(
        fn,
        ref.allowed,
        st.tuples(_scenarios(), _bills()),
        name="allowed",
        hint=ALLOWED_HINT,
        edge_cases=[
            (free, _bill("H100 spot", "dedicated_gpu", math.inf, True, models[1])),
            (free, _bill("H100 spot", "dedicated_gpu", 10.0, False, models[1])),
            (_scenario(True, True, "stable"), _bill("API gpt-4o-mini", "api", 10.0, True, "x")),
            (
                _scenario(False, False, "stable"),
                _bill(OPTION_NAMES[1], "serverless_cpu", 10.0, True, models[0]),
            ),
            (
                _scenario(False, True, "growing"),
                _bill("H100 reserved 1 yr", "dedicated_gpu", 10.0, True, models[1]),
            ),
            (free, _bill("H100 reserved 1 yr", "dedicated_gpu", 10.0, True, models[1])),
        ],  # fmt: skip
        max_examples=120,
    )
    return CheckPassed(f"allowed agrees with the decision rules on {tried} scenario-bill pairs.")


# ---------------------------------------------------------------- 3. the cheapest allowed
CHEAPEST_HINT = (
    "Keep the bills your allowed(scenario, bill) accepts; of those, return the one with the "
    "lowest monthly_usd (on a tie, the first in the list); when none is allowed, return None."
)


def _same_bill(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return got == want


def _public_cheapest(fn: Any) -> CheckPassed:
    from infralab.economics.costs import model as costs

    name = "cheapest_allowed"
    free = _scenario(False, True, "stable")
    got = run_student_function(fn, free, [], name=name)
    expect(got is None, f"{name} with no bills returned {got!r}.", CHEAPEST_HINT)
    rng = public_rng(74)
    for _ in range(20):
        bills = [_bill(rng.choice(OPTION_NAMES), rng.choice(KINDS),
                       rng.choice([100.0, 250.0, rng.uniform(1, 1e4)]), True, costs.GPU_MODEL)
                 for _ in range(rng.randint(1, 6))]  # fmt: skip
        low = min(b.monthly_usd for b in bills)
        first = next(b for b in bills if b.monthly_usd == low)
        got = run_student_function(fn, free, bills, name=name)
        expect(_same_bill(got, first), f"{name} did not return the cheapest bill (the first of "
               "equal ones) when every bill is allowed.", CHEAPEST_HINT)  # fmt: skip
        blocked = [_bill(b.option, b.kind, math.inf, True, b.model) for b in bills]
        got = run_student_function(fn, free, blocked, name=name)
        expect(got is None, f"{name} chose a bill that cannot serve.", CHEAPEST_HINT)
    return public_pass(f"{name} picks the cheapest (first of ties) and None when none serves")


@points(2)
def check_cheapest(fn: Any) -> CheckPassed:
    """``fn(scenario, bills)`` -> the cheapest bill the constraints allow (first of ties), or
    None when none is allowed."""
    from hypothesis import strategies as st

    models = _models()
    free = _scenario(False, True, "stable")
    spot = _bill("H100 spot", "dedicated_gpu", 100.0, True, models[1])
    refuse_kit_function(fn, _kit(), name="cheapest_allowed", sample_args=(free, [spot]),
                        hint=CHEAPEST_HINT)  # fmt: skip
    ref = _ref()
    if ref is None:
        return _public_cheapest(fn)
    tied = st.sampled_from([100.0, 100.0, 250.0, math.inf])
    api = _bill("API gpt-4o-mini", "api", 50.0, True, "gpt-4o-mini")
    tried = agrees_with_reference(
        fn,
        ref.cheapest_allowed,
        st.tuples(_scenarios(), st.lists(st.one_of(_bills(), _bills(tied)), max_size=7)),
        name="cheapest_allowed",
        hint=CHEAPEST_HINT,
        edge_cases=[
            (free, []),
            (_scenario(True, False, "volatile"), [api]),  # no option allowed
            (free, [_bill("H100 spot", "dedicated_gpu", math.inf, True, models[1])]),
            (free, [_bill("H100 on-demand", "dedicated_gpu", 100.0, True, models[1]), spot]),
            (_scenario(True, True, "stable"), [api, spot]),
        ],
        same=_same_bill,
    )
    return CheckPassed(f"cheapest_allowed makes the rules' choice on {tried} sets of bills.")


# ---------------------------------------------------------------- 4. cost per customer
CUSTOMER_HINT = (
    "Share the month's bill among the active customers; with none (or a negative count, which "
    "is an input error upstream) there is no cost per customer: None."
)


def _public_cost_per_customer(fn: Any) -> CheckPassed:
    """None without customers; a cost in proportion to the bill, halved by twice the
    customers; nothing to pay, nothing per customer."""
    name = "cost_per_customer"
    for args in ((1200.0, 0), (500.0, -2)):
        got = run_student_function(fn, *args, name=name)
        expect(got is None, f"{name}{args} returned {got!r}: there are no customers.",
               CUSTOMER_HINT)  # fmt: skip
    rng = public_rng(71)
    for _ in range(25):
        args = (rng.uniform(1, 1e6), rng.randint(1, 50_000))
        got = call_number(fn, *args, name=name)
        expect(got > 0, f"{name}{args} returned {got:g}.", CUSTOMER_HINT)
        scales_as(fn, args, 0, 3.0, 1, name=name, what="the monthly bill", hint=CUSTOMER_HINT)
        scales_as(fn, args, 1, 2, -1, name=name, what="the customers", hint=CUSTOMER_HINT)
        same_twice(fn, args, got, name=name)
    expect(call_number(fn, 0.0, 10, name=name) == 0, "A bill of 0 should cost 0 per customer.",
           CUSTOMER_HINT)  # fmt: skip
    return public_pass(f"{name} is None without customers and follows the bill and the count")


@points(2)
def check_cost_per_customer(fn: Any) -> CheckPassed:
    """cost_per_customer(monthly_usd, customers) -> USD per customer per month; none -> None."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="cost_per_customer", sample_args=(1200.0, 40))
    ref = _ref()
    if ref is None:
        return _public_cost_per_customer(fn)
    tried = agrees_with_reference(
        fn,
        ref.cost_per_customer,
        st.tuples(st.floats(0, 1e7, allow_nan=False), st.integers(-3, 100_000)),
        name="cost_per_customer",
        hint=CUSTOMER_HINT,
        edge_cases=[(1200.0, 40), (1200.0, 0), (0.0, 10)],
    )
    return CheckPassed(f"cost_per_customer is right on {tried} cases.")


# ---------------------------------------------------------------- 5. the flip search
FLIP_HINT = (
    "Compare the choice at `far` with the choice at `base`: the same means no flip (None). "
    "Otherwise keep two factors, lo (the choice is still today's) and hi (it has changed): "
    "try mid = sqrt(lo * hi), move lo or hi to it, and stop when max(lo, hi) / min(lo, hi) "
    "<= 1.01; return hi."
)


def _staircase(edges: tuple[float, ...], names: tuple[str, ...], factor: float) -> str:
    """A choice that changes at each edge (a module-level function, so the grader can send it
    into a student's kernel by name, with its edges and names)."""
    return names[bisect.bisect_right(edges, factor)]


def _true_flip(edges: tuple[float, ...], base: float, far: float) -> float | None:
    """The edge nearest ``base`` towards ``far`` (names never repeat, so it is the flip)."""
    between = [e for e in edges if min(base, far) < e <= max(base, far)]
    if not between:
        return None
    return min(between) if far > base else max(between)


def _flip_cases():
    from hypothesis import strategies as st

    def build(args: tuple[list[float], float, int]) -> tuple[Any, float, float]:
        edges, far, rotate = args
        edges = sorted(set(round(e, 4) for e in edges))
        names = ["API", "H100 spot", "per-second GPU", "serverless CPU", "H100 on-demand"]
        names = tuple((names[rotate:] + names[:rotate])[: len(edges) + 1])
        return partial(_staircase, tuple(edges), names), 1.0, far

    def clean(case: tuple[Any, float, float]) -> bool:
        edges = case[0].args[0]
        gaps = [b / a for a, b in zip(edges, edges[1:], strict=False)]
        near = [e for e in edges if abs(math.log(e)) < 0.02 or abs(math.log(e / case[2])) < 0.02]
        return all(g > 1.05 for g in gaps) and not near

    edge = st.floats(0.26, 3.9, allow_nan=False)
    far = st.one_of(st.sampled_from([0.25, 4.0]), st.floats(0.3, 0.9), st.floats(1.2, 3.5))
    return st.tuples(st.lists(edge, max_size=4), far, st.integers(0, 4)).map(build).filter(clean)


def _same_flip(got: Any, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return (isinstance(got, (int, float)) and not isinstance(got, bool)
            and math.isclose(float(got), want, rel_tol=FLIP_TOLERANCE))  # fmt: skip


@points(2)
def check_flip_point(fn: Any) -> CheckPassed:
    """``fn(choice_at, base, far)`` -> the factor between ``base`` and ``far`` where
    ``choice_at`` first changes (within 1 %), or None when the choice at ``far`` is today's."""
    up = partial(_staircase, (1.7,), ("API", "GPU"))
    refuse_kit_function(fn, _kit(), name="flip_point", sample_args=(up, 1.0, 4.0), hint=FLIP_HINT)
    ref = _ref()
    reference = ref.flip_point if ref else (lambda c, b, f: _true_flip(c.args[0], b, f))
    tried = agrees_with_reference(
        fn,
        reference,
        _flip_cases(),
        name="flip_point",
        hint=FLIP_HINT,
        edge_cases=[
            (up, 1.0, 4.0),
            (up, 1.0, 0.25),  # no flip downwards
            (partial(_staircase, (0.5,), ("GPU", "API")), 1.0, 0.25),
            (partial(_staircase, (4.0,), ("API", "GPU")), 1.0, 4.0),  # the flip at far itself
            (partial(_staircase, (0.4, 2.5), ("CPU", "API", "GPU")), 1.0, 0.25),
        ],
        same=_same_flip,
    )
    ok = f"flip_point finds the flip (or says there is none) in {tried} cases"
    return CheckPassed(ok + ".") if ref else public_pass(ok)


# ---------------------------------------------------------------- 6. the memo


@points(3)
def check_memo(
    path: Any, recommendation: Any, reasons: Any, sc: Any, inputs: Any, customers: Any
) -> CheckPassed:
    """The memo from the template: an allowed label, every number matching the results, and
    the reasons (scored by a person from the rubric) in it."""
    if not isinstance(recommendation, str) or recommendation not in LABELS:
        raise CheckFailed(
            f"my_recommendation is {recommendation!r}, not one of {', '.join(LABELS)}.",
            "Write one of the three labels exactly as the lab spells it.",
        )
    if not isinstance(reasons, str) or not reasons.strip() or "_Your answer here._" in reasons:
        raise CheckFailed("my_reasons is empty.", "Write your reasons in your own words: which "
                          "figures decided it, and what would change your mind.")  # fmt: skip
    if path is None or not Path(path).is_file():
        raise CheckFailed("There is no memo file at memo_path.", MEMO_HINT)
    text = Path(path).read_text(encoding="utf-8")
    said = _section(text, "Recommendation").splitlines()
    expect(bool(said) and said[0].strip().strip("*").strip() == recommendation,
           "The memo's recommendation section does not say my_recommendation.", MEMO_HINT)  # fmt: skip
    expect(" ".join(reasons.split()) in " ".join(_section(text, "Reasoning").split()),
           "The memo's reasoning section does not hold my_reasons.", MEMO_HINT)  # fmt: skip
    shown = _parse_numbers(_section(text, "Numbers"))
    missing = [label for label in MEMO_NUMBERS if label.lower() not in shown]
    expect(not missing, f"The memo's numbers section lacks {missing}.", MEMO_HINT)
    ref = _ref()
    if ref is None:
        monthly, per = _as_number(shown["monthly bill (usd)"]), _as_number(
            shown["cost per customer (usd/month)"])  # fmt: skip
        expect(monthly is not None and per is not None and isinstance(customers, int)
               and customers > 0 and abs(per - monthly / customers) <= 0.005 + 0.5 / customers,
               "The memo's cost per customer is not its monthly bill over the customers.",
               MEMO_HINT)  # fmt: skip
        return public_pass("the memo has its recommendation, numbers and reasons")
    want = ref.memo_figures(sc, inputs, customers)
    for label, how in MEMO_NUMBERS.items():
        _compare(label, how, shown[label.lower()], want[label])
    return CheckPassed(
        f"Memo {Path(path).name}: {recommendation}, on {want['chosen option']}; all "
        f"{len(MEMO_NUMBERS)} figures match your results. Your reasons go to your instructor's "
        "rubric."
    )
