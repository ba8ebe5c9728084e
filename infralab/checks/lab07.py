"""Checks for lab 07 (capstone): your scenario, your unit economics, your flip point, your memo.

The student writes the cost per customer and a search for where two bills cross (compared on
random inputs with references kept in ``infralab.checks.references.lab07``, public checks where
the references are absent), then makes the decision and gives the reasons
in their own words: the memo check reads those words, not the headings the kit writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infralab import checks
from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    check_close,
    expect,
    number,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_student_function,
    same_twice,
    scales_as,
)

CHOICES = {
    "traditional cloud": ("traditional cloud", "traditional", "cloud", "classic cloud"),
    "AI infrastructure": ("ai infrastructure", "ai infra", "ai", "gpu", "own gpus"),
    "hybrid": ("hybrid", "mixed", "both"),
}
MIN_REASON_WORDS = 60
COPIED_RUN = 8  # this many consecutive words shared with the kit's memo count as copied


def _ref() -> Any:
    return checks.reference_module("lab07")


def _kit() -> list[Callable[..., Any]]:
    from infralab.costs import model as costs

    ref = _ref()
    return [costs.break_even, *([ref.cost_per_customer, ref.find_flip] if ref else [])]


@points(1)
def check_scenario(sc: Any) -> CheckPassed:
    """A scenario the decision rules can use, with believable numbers."""
    from infralab.decision import Scenario

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


CUSTOMER_HINT = (
    "Share the month's bill among the active customers; with none (or a negative count, which "
    "is an input error upstream) there is no cost per customer: None."
)
FLIP_HINT = (
    "Look at the sign of bill_a - bill_b at both ends: the same sign means no crossing (None). "
    "Otherwise halve the interval, keeping the half where the sign changes, until it is narrow "
    "(volumes span decades: halving on a log scale converges faster)."
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


def _public_flip(fn: Any) -> CheckPassed:
    """Bills that cross: a volume inside [low, high] where bill_a - bill_b changes sign (within
    0.1 %), the same with the bills swapped; bills that never cross: None."""
    name = "find_flip"
    rng = public_rng(72)
    low, high = 10.0, 1e8
    crossing = none = 0
    for _ in range(40):
        fa, pa = rng.uniform(0, 50_000), rng.uniform(0, 0.05)
        fb, pb = rng.uniform(0, 50_000), rng.uniform(0, 0.05)
        a = lambda r, f=fa, p=pa: f + p * r  # noqa: E731
        b = lambda r, f=fb, p=pb: f + p * r  # noqa: E731
        d = lambda r, a=a, b=b: a(r) - b(r)  # noqa: E731
        if d(low) == 0 or d(high) == 0:
            continue
        got = call_number(fn, a, b, low, high, name=name, allow_none=True)
        if d(low) * d(high) > 0:
            none += 1
            expect(got is None, f"These two bills never cross in [{low:g}, {high:g}], but you "
                   f"gave {got!r}.", FLIP_HINT)  # fmt: skip
            continue
        crossing += 1
        expect(got is not None, "These two bills cross, but you gave None.", FLIP_HINT)
        expect(low <= got <= high, f"You gave {got:g}, outside [{low:g}, {high:g}].", FLIP_HINT)
        below, above = max(low, got * (1 - 1e-3)), min(high, got * (1 + 1e-3))
        expect(
            d(below) * d(above) <= 0,
            f"At {got:g} the two bills are not equal: they cross elsewhere.",
            FLIP_HINT,
        )
        swapped = call_number(fn, b, a, low, high, name=name, allow_none=True)
        expect(
            swapped is not None and math.isclose(swapped, got, rel_tol=2e-3),
            "Swapping the two bills moved the crossing.",
            FLIP_HINT,
        )
        same_twice(fn, (a, b, low, high), got, name=name)
    return public_pass(f"{name} finds where {crossing} pairs of bills cross and says None for "
                       f"{none} that never do")  # fmt: skip


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


def _affine_bill(fixed: float, per_request: float, requests: float) -> float:
    """A monthly bill of a fixed part and a per-request part (a module-level function, so the
    grader can send it into a student's kernel by name, with its two numbers)."""
    return fixed + per_request * requests


def _bill_pairs():
    from functools import partial

    from hypothesis import strategies as st

    def build(args: tuple[float, float, float, float]) -> tuple[Any, Any, float, float]:
        fixed_a, per_a, fixed_b, per_b = args
        return (
            partial(_affine_bill, fixed_a, per_a),
            partial(_affine_bill, fixed_b, per_b),
            10.0,
            1e8,
        )

    money = st.floats(0, 50_000, allow_nan=False)
    rate = st.floats(0, 0.05, allow_nan=False)

    def crosses_cleanly(case: tuple[Any, Any, float, float]) -> bool:
        # equal bills at an end point make "cross or not" a matter of convention: left out
        a, b, low, high = case
        return a(low) != b(low) and a(high) != b(high)

    return st.tuples(money, rate, money, rate).map(build).filter(crosses_cleanly)


def _same_flip(got: Any, want: float | None) -> bool:
    if want is None or got is None:
        return got is None and want is None
    return isinstance(got, (int, float)) and math.isclose(float(got), want, rel_tol=1e-3)


@points(2)
def check_find_flip(fn: Any) -> CheckPassed:
    """``fn(bill_a, bill_b, low, high)`` -> the volume in [low, high] where the bills cross."""
    from functools import partial

    flat, linear = partial(_affine_bill, 100.0, 0.0), partial(_affine_bill, 0.0, 0.001)
    refuse_kit_function(fn, _kit(), name="find_flip", sample_args=(flat, linear, 10.0, 1e8))
    ref = _ref()
    if ref is None:
        return _public_flip(fn)
    tried = agrees_with_reference(
        fn,
        ref.find_flip,
        _bill_pairs(),
        name="find_flip",
        hint=FLIP_HINT,
        edge_cases=[(flat, linear, 10.0, 1e8), (linear, flat, 10.0, 50.0)],
        same=_same_flip,
    )
    return CheckPassed(f"find_flip finds the crossing (or says there is none) in {tried} cases.")


@points(1)
def check_flip_volume(value: Any, sc: Any) -> CheckPassed:
    """The requests/day where the cheapest API and the per-second GPU cost the same for ``sc``."""
    ref = _ref()
    if ref is None:
        if value is None:
            return public_pass("flip volume: None (the two never cross?)")
        got = number(value, name="flip volume (requests/day)")
        expect(10 <= got <= 1e8, f"A flip volume of {got:g} requests/day is outside 10 to 1e8.",
               "Use costs.break_even(api, gpu, workload) with the scenario's cheapest API.")  # fmt: skip
        return public_pass(f"flip volume {got:.4g} requests/day is within the searched range")
    be, compare = ref.flip_volume(sc)
    if be.requests_per_day is None:
        return check(
            value is None,
            ok=f"Right: they never cross ({be.verdict}).",
            problem=f"You gave {value!r}, but {be.verdict}.",
            hint="break_even(...).requests_per_day is None when there is no crossing.",
        )
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise CheckFailed("You gave no number.", "Use costs.break_even(api, gpu, workload).")
    return check_close(
        value,
        be.requests_per_day,
        rel=0.05,
        name="flip volume (requests/day)",
        hint=compare,
    )


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.,][0-9]+)*", text.lower())


def _copied(reasons: str, kit_text: str) -> str | None:
    mine, theirs = _words(reasons), _words(kit_text)
    runs = {tuple(theirs[i : i + COPIED_RUN]) for i in range(len(theirs) - COPIED_RUN + 1)}
    for i in range(len(mine) - COPIED_RUN + 1):
        if tuple(mine[i : i + COPIED_RUN]) in runs:
            return " ".join(mine[i : i + COPIED_RUN])
    return None


def _choice(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(value.lower().split())
    for name, words in CHOICES.items():
        if text in words:
            return name
    return None


@points(3)
def check_memo(path: Any, recommendation: Any, reasons: Any, decision: Any) -> CheckPassed:
    """Your decision and reasons, in your own words, in the exported memo."""
    choice = _choice(recommendation)
    if choice is None:
        raise CheckFailed(
            f"{recommendation!r} is not one of the three options.",
            "Choose traditional cloud, AI infrastructure or hybrid.",
        )
    if not isinstance(reasons, str) or len(_words(reasons)) < MIN_REASON_WORDS:
        count = len(_words(reasons)) if isinstance(reasons, str) else 0
        raise CheckFailed(
            f"Your reasons have {count} words; give at least {MIN_REASON_WORDS}.",
            "Say which inputs you measured, which rule or number decided, and what would "
            "make you change your mind.",
        )
    if not re.search(r"\d", reasons):
        raise CheckFailed(
            "Your reasons quote no number.",
            "A decision rests on numbers: name the volume, a cost, or a break-even.",
        )
    kit_text = decision.to_markdown() if hasattr(decision, "to_markdown") else ""
    copied = _copied(reasons, kit_text)
    if copied:
        raise CheckFailed(
            f'Part of your reasons is copied from the kit\'s memo ("{copied} ...").',
            "Write the reasons in your own words; quote numbers, not sentences.",
        )
    if path is None or not Path(path).is_file():
        raise CheckFailed("There is no memo file at memo_path.", "Export the memo, then add yours.")
    text = Path(path).read_text(encoding="utf-8")
    mine = " ".join(_words(reasons))
    if mine not in " ".join(_words(text)):
        raise CheckFailed(
            "The exported memo does not contain your reasons.",
            "Append your decision and reasons to the memo file after exporting it.",
        )
    if kit_text and " ".join(_words(kit_text))[:200] not in " ".join(_words(text)):
        raise CheckFailed(
            "The memo lacks the kit's analysis (inputs, options, what would flip it).",
            "Export my_decision's memo first, then append your section.",
        )
    rules = getattr(decision, "recommendation", None)
    agree = (
        "you agree with the rules"
        if rules == choice
        else f"you differ from the rules ({rules}): make sure your reasons say why"
    )
    return CheckPassed(
        f"Memo {Path(path).name}: your choice, {choice}, with {len(_words(reasons))} words of "
        f"your own reasons; {agree}."
    )
