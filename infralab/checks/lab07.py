"""Checks for lab 07 (capstone): your scenario, your unit economics, your flip point, your memo.

The student writes the cost per customer and a search for where two bills cross (compared
with references kept here on random inputs), then makes the decision and gives the reasons
in their own words: the memo check reads those words, not the headings the kit writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    check,
    check_close,
    points,
    refuse_kit_function,
)

CHOICES = {
    "traditional cloud": ("traditional cloud", "traditional", "cloud", "classic cloud"),
    "AI infrastructure": ("ai infrastructure", "ai infra", "ai", "gpu", "own gpus"),
    "hybrid": ("hybrid", "mixed", "both"),
}
MIN_REASON_WORDS = 60
COPIED_RUN = 8  # this many consecutive words shared with the kit's memo count as copied


def _reference_cost_per_customer(monthly_usd: float, customers: int) -> float | None:
    return None if customers <= 0 else monthly_usd / customers


def _reference_flip(
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


def _kit() -> list[Callable[..., Any]]:
    from infralab.costs import model as costs

    return [costs.break_even, _reference_cost_per_customer, _reference_flip]


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


@points(2)
def check_cost_per_customer(fn: Any) -> CheckPassed:
    """cost_per_customer(monthly_usd, customers) -> USD per customer per month; none -> None."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="cost_per_customer", sample_args=(1200.0, 40))
    tried = agrees_with_reference(
        fn,
        _reference_cost_per_customer,
        st.tuples(st.floats(0, 1e7, allow_nan=False), st.integers(-3, 100_000)),
        name="cost_per_customer",
        hint="Share the month's bill among the active customers; with none (or a negative "
        "count, which is an input error upstream) there is no cost per customer: None.",
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
    tried = agrees_with_reference(
        fn,
        _reference_flip,
        _bill_pairs(),
        name="find_flip",
        hint="Look at the sign of bill_a - bill_b at both ends: the same sign means no crossing "
        "(None). Otherwise halve the interval, keeping the half where the sign changes, until "
        "it is narrow (volumes span decades: halving on a log scale converges faster).",
        edge_cases=[(flat, linear, 10.0, 1e8), (linear, flat, 10.0, 50.0)],
        same=_same_flip,
    )
    return CheckPassed(f"find_flip finds the crossing (or says there is none) in {tried} cases.")


@points(1)
def check_flip_volume(value: Any, sc: Any) -> CheckPassed:
    """The requests/day where the cheapest API and the per-second GPU cost the same for ``sc``."""
    from infralab.costs import model as costs

    opts, _ = costs.llm_options(sc.workload, option_set="API vs per-second GPU")
    apis = [o for o in opts if isinstance(o, costs.ManagedAPI)]
    gpu = next(o for o in opts if isinstance(o, costs.PerSecondGPU))
    api = min(apis, key=lambda o: o.bill(sc.workload).monthly_usd)
    be = costs.break_even(api, gpu, sc.workload, low=10, high=1e8)
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
        hint=f"Compare {api.name} with {gpu.name} using costs.break_even.",
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
