"""Checks for lab 05 (break-even dashboard): one cost function, one break-even, the idle trap."""

from __future__ import annotations

import math
from typing import Any

from infralab.checks import CheckFailed, CheckPassed, check, check_close, run_student_function
from infralab.costs import model as m


def check_cost_per_1k(fn: Any) -> CheckPassed:
    """``fn(usd_per_hour, requests_per_s, utilization)`` -> USD per 1,000 requests, or None at 0."""
    if not callable(fn):
        raise CheckFailed("gpu_cost_per_1k should be a function.", "Define it with `def`.")
    cases = [(2.69, 50.0, 1.0), (2.69, 50.0, 0.25), (6.88, 3.0, 0.6)]
    for price, rps, util in cases:
        got = run_student_function(fn, price, rps, util, name="gpu_cost_per_1k")
        want = m.cost_per_1k_at_utilization(price, rps, util)
        if got is None:
            raise CheckFailed(
                f"gpu_cost_per_1k({price}, {rps}, {util}) returned None.",
                "Only zero utilization (or zero throughput) means 'no requests served'.",
            )
        check_close(
            got,
            want,
            rel=0.01,
            name=f"gpu_cost_per_1k({price}, {rps}, {util})",
            hint="Requests served per hour = requests_per_s x 3600 x utilization; "
            "cost per 1k = hourly price / served per hour x 1000.",
        )
    zero = run_student_function(fn, 2.69, 50.0, 0.0, name="gpu_cost_per_1k")
    return check(
        zero is None,
        ok="gpu_cost_per_1k is right, and says 'no requests served' at 0 % utilization.",
        problem=f"gpu_cost_per_1k(2.69, 50, 0.0) returned {zero!r}.",
        hint="At 0 % utilization the GPU serves nothing: return None instead of dividing by zero.",
    )


def check_break_even(
    value: Any, api: m.ManagedAPI, gpu: m.DedicatedGPU, work: m.Workload
) -> CheckPassed:
    """The requests/day at which ``api`` and ``gpu`` cost the same per month."""
    be = m.break_even(api, gpu, work)
    if be.requests_per_day is None:
        return check(
            value is None,
            ok=f"Right: {be.verdict}.",
            problem=f"These two never break even ({be.verdict}), but you gave {value!r}.",
            hint="Return None when one option is always cheaper.",
        )
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise CheckFailed(
            "break_even_rpd is empty.",
            "Use m.break_even(api, gpu, work).requests_per_day, or solve monthly cost A = B.",
        )
    return check_close(
        value,
        be.requests_per_day,
        rel=0.03,
        name="break_even_rpd",
        hint="The API bill grows with every request; one GPU costs price x 730 h whatever the "
        "traffic. Set them equal and solve for requests per month, then divide by 30.4 days.",
    )


def check_trap_utilization(
    value: Any, api: m.ManagedAPI, gpu: m.DedicatedGPU, work: m.Workload
) -> CheckPassed:
    """The utilization below which the GPU costs more per request than the API."""
    api_per_1k = api.bill(work.at(1000)).usd_per_1k_requests
    full = m.cost_per_1k_at_utilization(gpu.usd_per_hour, gpu.throughput_rps, 1.0)
    assert api_per_1k is not None and full is not None
    want = full / api_per_1k
    if want > 1:
        return check(
            value is None or float(value) > 1,
            ok="Right: even at 100 % utilization this GPU costs more per request than the API.",
            problem=f"Even fully busy the GPU costs ${full:.4f} per 1k vs the API's ${api_per_1k:.4f}.",
            hint="Return None: no utilization makes this GPU cheaper.",
        )
    return check_close(
        value,
        want,
        rel=0.03,
        name="trap_utilization",
        hint="Cost per 1k at utilization u is (cost at 100 %) / u. Solve (cost at 100 %) / u = "
        "API cost per 1k for u.",
    )


def check_dashboard(obj: Any) -> CheckPassed:
    """A widget with at least one slider that redraws something."""
    import ipywidgets as w

    widget = getattr(obj, "widget", obj)
    if not isinstance(widget, w.Widget):
        raise CheckFailed(
            f"my_dashboard should be an ipywidgets widget, not {type(obj).__name__}.",
            "Use ipywidgets.interactive(draw, requests_per_day=slider) and return that.",
        )

    def walk(node: Any) -> list[Any]:
        kids = list(getattr(node, "children", ()) or ())
        return [node] + [x for k in kids for x in walk(k)]

    parts = walk(widget)
    sliders = [p for p in parts if isinstance(p, (w.FloatSlider, w.IntSlider, w.FloatLogSlider))]
    return check(
        bool(sliders),
        ok=f"Your dashboard has {len(sliders)} slider(s). Move one and watch the break-even move.",
        problem="Your dashboard has no slider.",
        hint="Pass a FloatLogSlider for requests per day to ipywidgets.interactive.",
    )
