"""Checks for lab 07 (capstone): your scenario, your unit economics, your flip point, your memo."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from infralab.checks import CheckFailed, CheckPassed, check, check_close, run_student_function


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


def check_cost_per_customer(fn: Any) -> CheckPassed:
    """cost_per_customer(monthly_usd, customers) -> USD per customer per month; 0 customers -> None."""
    got = run_student_function(fn, 1200.0, 40, name="cost_per_customer")
    check_close(got, 30.0, name="cost_per_customer(1200, 40)")
    zero = run_student_function(fn, 1200.0, 0, name="cost_per_customer")
    return check(
        zero is None,
        ok="cost_per_customer works, and says 'no customers' instead of dividing by zero.",
        problem=f"cost_per_customer(1200, 0) returned {zero!r}.",
        hint="With no customers there is no cost per customer: return None.",
    )


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


def check_memo(path: Any) -> CheckPassed:
    """The exported memo: a Markdown file that recommends, shows its sources, and says what flips it."""
    if path is None:
        raise CheckFailed("memo_path is None.", "Use the path that decision.write() returned.")
    p = Path(path)
    if not p.is_file():
        raise CheckFailed(f"No file at {p}.", "Call my_decision.write('memos/my_memo.md').")
    text = p.read_text(encoding="utf-8")
    for needle, hint in (
        ("Recommendation:", "the memo states its recommendation"),
        ("## Inputs and where they came from", "the memo lists its inputs"),
        ("## What would flip it", "the memo says what would change the decision"),
    ):
        check(needle in text, ok="", problem=f"The memo lacks '{needle}'.", hint=hint)
    labels = [s for s in ("measured", "recorded", "default") if f"**{s}**" in text]
    return check(
        bool(labels),
        ok=f"Memo {p.name}: {len(text.splitlines())} lines; inputs labelled {', '.join(labels)}.",
        problem="The memo does not say where its inputs came from.",
        hint="Build it with decision.decide(), which labels every input.",
    )
