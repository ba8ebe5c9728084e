"""Checks for lab 05 (break-even dashboard): the unit cost, the break-even, the idle trap.

The student writes three small cost functions and a dashboard; each function is compared on
random inputs with a reference kept in ``infralab.tooling.checks.references.lab05`` (public checks
where the references are absent), and the kit's own cost model handed in as the student's is
refused. The dashboard check calls the student's ``draw_chart`` at two prices and two traffics
and compares the Altair specs it returns (titled axes with units, the break-even marked), then
looks inside ``my_dashboard`` for the sliders, the output and the observers that redraw it.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from typing import Any

from infralab.economics.costs import billing
from infralab.economics.costs import model as m
from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    check_close,
    defined_in,
    expect,
    is_kind,
    number,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_beside,
    run_student_function,
    same_twice,
    scales_as,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_break_even",
    "check_break_even_function",
    "check_cost_per_1k",
    "check_dashboard",
    "check_trap_function",
]


def _ref() -> Any:
    return checks.reference_module("lab05")


def _kit() -> list[Callable[..., Any]]:
    return [
        billing.unit_cost,
        m.break_even,
        *(
            [ref.gpu_cost_per_1k, ref.break_even_requests_per_day, ref.trap_utilization]
            if (ref := _ref())
            else []
        ),
    ]


def _positive(low: float, high: float):
    from hypothesis import strategies as st

    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


# ---------------------------------------------------------------- public checks
COST_HINT = (
    "Count the requests the GPU actually serves in an hour you pay for (speed while busy, "
    "seconds per hour, share of time busy); the price of that hour spreads over them. No "
    "requests served: return None."
)
BREAK_EVEN_HINT = (
    "Write both daily bills: the API's grows with every request, the GPU's is its hourly price "
    "for every hour of the day. Set them equal and solve for requests; a free API never breaks "
    "even (None)."
)
TRAP_HINT = (
    "The cost per 1k at utilization u is the cost at full use divided by u: solve for the u at "
    "which that equals the API's price. Above 1 it can never happen: None."
)


def _nones(fn: Any, cases: list[tuple], name: str, why: str, hint: str) -> None:
    for args in cases:
        got = run_student_function(fn, *args, name=name)
        expect(got is None, f"{name}{args} returned {got!r}: {why}.", hint)


def _public_cost_per_1k(fn: Any) -> CheckPassed:
    """None when nothing is served; a positive price that doubles with the hourly price, halves
    with twice the speed, and never rises with more utilization."""
    name = "gpu_cost_per_1k"
    _nones(fn, [(2.69, 50.0, 0.0), (1.0, 0.0, 1.0)], name, "no request is served", COST_HINT)
    rng = public_rng(51)
    for _ in range(25):
        args = (rng.uniform(0.05, 100), rng.uniform(0.1, 5000), rng.uniform(0.01, 1.0))
        got = call_number(fn, *args, name=name)
        expect(got > 0, f"{name}{args} returned {got:g}.", COST_HINT)
        scales_as(fn, args, 0, 2.0, 1, name=name, what="the hourly price", hint=COST_HINT)
        scales_as(fn, args, 1, 2.0, -1, name=name, what="the speed", hint=COST_HINT)
        busier = call_number(fn, args[0], args[1], min(1.0, args[2] * 1.5), name=name)
        expect(busier <= got * (1 + 1e-9), "A busier GPU came out dearer per request.",
               COST_HINT)  # fmt: skip
        same_twice(fn, args, got, name=name)
    return public_pass(f"{name} is None with nothing served, doubles with the price, and more "
                       "utilization never raises the cost per request")  # fmt: skip


def _public_break_even(fn: Any) -> CheckPassed:
    """None for a free API; a positive volume in proportion to the GPU's price and in inverse
    proportion to the API's price per request."""
    name = "break_even_requests_per_day"
    _nones(fn, [(0.0, 2.69), (0.0, 50.0)], name, "a free API never breaks even", BREAK_EVEN_HINT)
    rng = public_rng(52)
    for _ in range(25):
        args = (rng.uniform(1e-6, 0.5), rng.uniform(0.05, 100))
        got = call_number(fn, *args, name=name)
        expect(got > 0, f"{name}{args} returned {got:g}.", BREAK_EVEN_HINT)
        scales_as(fn, args, 1, 2.0, 1, name=name, what="the GPU's hourly price",
                  hint=BREAK_EVEN_HINT)  # fmt: skip
        scales_as(fn, args, 0, 2.0, -1, name=name, what="the API's price per request",
                  hint=BREAK_EVEN_HINT)  # fmt: skip
        same_twice(fn, args, got, name=name)
    return public_pass(f"{name} is None for a free API and scales with both prices")


def _public_trap(fn: Any) -> CheckPassed:
    """None or a share in (0, 1]; in proportion to the hourly price while it stays at most 1;
    a dearer API only lowers it; a GPU that costs more than the API even fully busy: None."""
    name = "trap_utilization"
    rng = public_rng(53)
    found = 0
    for _ in range(40):
        args = (rng.uniform(0.05, 50), rng.uniform(0.5, 2000), rng.uniform(0.001, 5.0))
        got = call_number(fn, *args, name=name, allow_none=True)
        if got is None:
            cheaper_gpu = call_number(fn, args[0] / 1e6, args[1], args[2], name=name,
                                      allow_none=True)  # fmt: skip
            expect(cheaper_gpu is not None,
                   "A GPU a million times cheaper should be worth it at some utilization.",
                   TRAP_HINT)  # fmt: skip
            continue
        found += 1
        expect(0 < got <= 1 + 1e-9, f"{name}{args} returned {got:g}, not a share in (0, 1].",
               TRAP_HINT)  # fmt: skip
        scales_as(fn, args, 0, 0.5, 1, name=name, what="the hourly price", hint=TRAP_HINT)
        dearer_api = call_number(fn, args[0], args[1], args[2] * 2, name=name, allow_none=True)
        expect(
            dearer_api is not None and dearer_api <= got * (1 + 1e-9),
            "A dearer API made the GPU need more utilization to pay off.",
            TRAP_HINT,
        )
        dear_gpu = call_number(fn, args[0] * 2 / got, args[1], args[2], name=name,
                               allow_none=True)  # fmt: skip
        expect(
            dear_gpu is None,
            "A GPU that costs more per request than the API even when fully busy should give None.",
            TRAP_HINT,
        )
        same_twice(fn, args, got, name=name)
    expect(found > 0, f"{name} never returned a utilization.", TRAP_HINT)
    return public_pass(f"{name} gives a share of at most 1 that follows both prices, and None "
                       "where the GPU can never pay off")  # fmt: skip


# ---------------------------------------------------------------- 1. cost per 1k
@points(2)
def check_cost_per_1k(fn: Any) -> CheckPassed:
    """``fn(usd_per_hour, requests_per_s, utilization)`` -> USD per 1,000 requests, None at 0."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="gpu_cost_per_1k", sample_args=(2.69, 50.0, 0.5))
    ref = _ref()
    if ref is None:
        return _public_cost_per_1k(fn)
    tried = agrees_with_reference(
        fn,
        ref.gpu_cost_per_1k,
        st.tuples(_positive(0.01, 100), _positive(0.01, 5000), _positive(0.0, 1.0)),
        name="gpu_cost_per_1k",
        hint=COST_HINT,
        edge_cases=[(2.69, 50.0, 1.0), (2.69, 50.0, 0.0), (6.88, 3.0, 0.6), (1.0, 0.0, 1.0)],
    )
    return CheckPassed(f"gpu_cost_per_1k agrees with the definition on {tried} cases.")


# ---------------------------------------------------------------- 2. break-even
@points(2)
def check_break_even_function(fn: Any) -> CheckPassed:
    """``fn(api_usd_per_request, gpu_usd_per_hour)`` -> requests/day where both cost the same."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="break_even_requests_per_day", sample_args=(1e-4, 2.69))
    ref = _ref()
    if ref is None:
        return _public_break_even(fn)
    tried = agrees_with_reference(
        fn,
        ref.break_even_requests_per_day,
        st.tuples(_positive(0.0, 0.5), _positive(0.01, 100)),
        name="break_even_requests_per_day",
        hint=BREAK_EVEN_HINT,
        edge_cases=[(1e-4, 2.69), (0.0, 2.69), (0.01, 0.5)],
    )
    return CheckPassed(f"break_even_requests_per_day is right on {tried} price pairs.")


@points(1)
def check_break_even(
    value: Any, api: m.ManagedAPI, gpu: m.DedicatedGPU, work: m.Workload
) -> CheckPassed:
    """The requests/day at which ``api`` and ``gpu`` cost the same per month (the kit's model)."""
    ref = _ref()
    if ref is None:
        if value is None:
            return public_pass("break_even_rpd is None (these two never break even?)")
        got = number(value, name="break_even_rpd")
        expect(got > 0, f"break_even_rpd = {got:g} is not a positive volume.",
               "Call your function with the API's price per request and the GPU's hourly price.")  # fmt: skip
        return public_pass(f"break_even_rpd = {got:.4g} requests/day is a positive volume")
    be = ref.break_even(api, gpu, work)
    if be.requests_per_day is None:
        return check(
            value is None,
            ok=f"Right: {be.verdict}.",
            problem=f"These two never break even, but you gave {value!r}.",
            hint="Return None when one option is always cheaper.",
        )
    if value is None:
        raise CheckFailed("break_even_rpd is empty.", "Call your function with api and gpu prices.")
    return check_close(
        value,
        be.requests_per_day,
        rel=0.03,
        name="break_even_rpd",
        hint="Feed your function the API's price per request (its bill per 1k / 1000) and the "
        "GPU's hourly price.",
    )


# ---------------------------------------------------------------- 3. idle trap
@points(2)
def check_trap_function(fn: Any) -> CheckPassed:
    """``fn(usd_per_hour, requests_per_s, api_usd_per_1k)`` -> the utilization where both cost
    the same per request; None when even a fully busy GPU costs more."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="trap_utilization", sample_args=(2.69, 50.0, 0.1))
    ref = _ref()
    if ref is None:
        return _public_trap(fn)
    tried = agrees_with_reference(
        fn,
        ref.trap_utilization,
        st.tuples(_positive(0.01, 50), _positive(0.01, 2000), _positive(0.0001, 5.0)),
        name="trap_utilization",
        hint=TRAP_HINT,
        edge_cases=[(2.69, 71.6, 0.12), (10.0, 1.0, 0.01)],
    )
    return CheckPassed(f"trap_utilization is right on {tried} cases.")


# ---------------------------------------------------------------- 4. dashboard
UNIT_IN_TITLE = re.compile(r"\([^()]*[A-Za-z$%][^()]*\)")  # "cost (USD/day)"
DRAW_HINT = (
    "draw_chart(requests_per_day, gpu_usd_per_hour) must build a new Altair chart from its two "
    "arguments every time it is called: the GPU's line from the hourly price, a rule at the "
    "break-even from your break_even_requests_per_day, a rule at the traffic; and return it."
)
AXIS_HINT = (
    "Give every x and y encoding that names a field a title with its unit in brackets, "
    "e.g. alt.X('requests_per_day:Q', title='traffic (requests/day)')."
)
WIRING_HINT = (
    "Put the two sliders and an ipywidgets.Output in my_dashboard (a VBox); observe each "
    "slider's 'value' with a function that clears the output and displays draw_chart(...)."
)


def _spec(chart: Any, args: tuple[float, float]) -> dict:
    """The Vega-Lite spec of what the student's function returned (plain data)."""
    import altair as alt

    if not is_kind(chart, alt.TopLevelMixin):
        raise CheckFailed(
            f"draw_chart{args} returned {type(chart).__name__}, not an Altair chart.",
            DRAW_HINT,
        )
    try:
        spec = chart.to_dict()
    except Exception as exc:  # the student's chart is invalid: advice, not a crash
        if getattr(exc, "fatal", False):
            raise
        raise CheckFailed(f"Altair cannot export the chart of draw_chart{args}: {exc}",
                          DRAW_HINT) from None  # fmt: skip
    if not isinstance(spec, dict):
        raise CheckFailed(f"draw_chart{args} gave a chart without a spec.", DRAW_HINT)
    return spec


def _walk(node: Any) -> Any:
    """Every dict and number inside a spec."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _axis_titles(spec: dict) -> dict[str, list[Any]]:
    """Titles of every x and y encoding that names a field ({'x': [...], 'y': [...]})."""
    out: dict[str, list[Any]] = {"x": [], "y": []}
    for node in _walk(spec):
        if isinstance(node, dict) and isinstance(node.get("encoding"), dict):
            for channel in ("x", "y"):
                enc = node["encoding"].get(channel)
                if isinstance(enc, dict) and "field" in enc:
                    title = enc.get("title")
                    if title is None and isinstance(enc.get("axis"), dict):
                        title = enc["axis"].get("title")
                    out[channel].append(title)
    return out


def _has_number(spec: dict, value: float, rel: float = 1e-3) -> bool:
    return any(
        isinstance(n, (int, float)) and not isinstance(n, bool) and math.isfinite(n)
        and math.isclose(n, value, rel_tol=rel)
        for n in _walk(spec)
    )  # fmt: skip


def _value_observers(widget: Any) -> int:
    """How many functions observe a widget's ``value`` (run where the widget lives)."""
    notifiers = getattr(widget, "_trait_notifiers", {}).get("value", {})
    return len(notifiers.get("change", [])) + len(notifiers.get("all", []))


def _widgets_in(box: Any, depth: int = 0) -> list[Any]:
    import ipywidgets as w

    found = [box]
    if depth < 3 and is_kind(box, w.Box):
        for child in box.children:
            found += _widgets_in(child, depth + 1)
    return found


def _check_wiring(dashboard: Any, gpu: m.DedicatedGPU) -> int:
    import ipywidgets as w

    if not is_kind(dashboard, w.Box):
        raise CheckFailed(
            f"my_dashboard should be an ipywidgets box (VBox), not {type(dashboard).__name__}.",
            WIRING_HINT,
        )
    parts = _widgets_in(dashboard)
    sliders = [p for p in parts if is_kind(p, w.FloatSlider, w.IntSlider, w.FloatLogSlider)]
    if len(sliders) < 2:
        raise CheckFailed(f"my_dashboard holds {len(sliders)} slider(s); the lab asks for two.",
                          WIRING_HINT)  # fmt: skip
    if not any(is_kind(p, w.Output) for p in parts):
        raise CheckFailed("my_dashboard has no ipywidgets.Output to draw the chart in.",
                          WIRING_HINT)  # fmt: skip
    deaf = [s.description or "a slider" for s in sliders if run_beside(s, _value_observers, s) < 1]
    if deaf:
        raise CheckFailed(f"Nothing observes the slider(s) {deaf}: moving them redraws nothing.",
                          WIRING_HINT)  # fmt: skip
    at_price = [s for s in sliders if s.value == gpu.usd_per_hour]
    coarse = [s for s in at_price if is_kind(s, w.FloatSlider) and (s.step or 0) > 0.01 + 1e-12]
    if coarse:
        raise CheckFailed(
            f"The price slider moves in steps of {coarse[0].step:g} USD: its readout and its "
            f"first move round ${gpu.usd_per_hour} to another price.",
            "Give it step=0.01 and readout_format='.2f' (prices are quoted in cents).",
        )
    if not at_price:
        values = ", ".join(f"{s.value!r}" for s in sliders)
        raise CheckFailed(
            f"No slider starts at the GPU's price of ${gpu.usd_per_hour} (they start at {values}).",
            "Start the price slider at gpu.usd_per_hour, with step=0.01 and "
            "readout_format='.2f': a coarser step snaps the price to another value.",
        )
    return len(sliders)


@points(2)
def check_dashboard(
    draw: Any, dashboard: Any, api: m.ManagedAPI, gpu: m.DedicatedGPU, work: m.Workload
) -> CheckPassed:
    """``draw(requests_per_day, gpu_usd_per_hour)`` returns an Altair chart with titled axes
    that marks the break-even and follows both arguments; ``dashboard`` holds the sliders that
    redraw it."""
    if not callable(draw):
        raise CheckFailed(f"draw_chart should be a function, not {type(draw).__name__}.",
                          "Define draw_chart with def and pass the function itself.")  # fmt: skip
    if defined_in(draw).startswith("infralab"):
        raise CheckFailed("draw_chart is one of the kit's functions, not yours.",
                          "Write draw_chart yourself in the lab.")  # fmt: skip
    rng = random.Random() if checks._GRADING.get() else public_rng(54)
    traffic, price = float(work.requests_per_day), float(gpu.usd_per_hour)
    other_price = round(rng.uniform(0.5, 12.0), 2)
    while abs(other_price - price) < 0.5:
        other_price = round(rng.uniform(0.5, 12.0), 2)
    other_traffic = round(traffic * rng.choice([0.1, 0.3, 3.0, 10.0]))
    cases = [(traffic, price), (traffic, other_price), (other_traffic, price)]
    specs = []
    for args in cases:
        chart = run_student_function(draw, *args, name="draw_chart")
        spec = _spec(chart, args)
        titles = _axis_titles(spec)
        for channel in ("x", "y"):
            if not titles[channel]:
                raise CheckFailed(f"The chart has no {channel} axis drawn from a field.",
                                  DRAW_HINT)  # fmt: skip
            bad = [
                t for t in titles[channel] if not isinstance(t, str) or not UNIT_IN_TITLE.search(t)
            ]
            if bad:
                raise CheckFailed(f"A {channel} axis title lacks its unit: {bad[0]!r}.", AXIS_HINT)
        if not _has_number(spec, args[0], rel=1e-6):
            raise CheckFailed(f"draw_chart{args} does not mark the traffic {args[0]:,.0f}.",
                              DRAW_HINT)  # fmt: skip
        specs.append(spec)
    if specs[1] == specs[0]:
        raise CheckFailed("Another GPU price gave the same chart.", DRAW_HINT)
    if specs[2] == specs[0]:
        raise CheckFailed("Another traffic gave the same chart.", DRAW_HINT)
    ref = _ref()
    if ref is not None:
        per_request = api.bill(work).usd_per_1k_requests / 1000
        for args, spec in zip(cases, specs, strict=True):
            be = ref.break_even_requests_per_day(per_request, args[1])
            if be is not None and not _has_number(spec, be):
                raise CheckFailed(
                    f"draw_chart{args} does not mark the break-even at that price.",
                    "Mark the value break_even_requests_per_day(api's price per request, "
                    "gpu_usd_per_hour) gives, with the price draw_chart was called with.",
                )
    sliders = _check_wiring(dashboard, gpu)
    done = (f"draw_chart marks the break-even and redraws for another price and another traffic; "
            f"my_dashboard wires {sliders} sliders to it")  # fmt: skip
    return CheckPassed(done + ".") if ref is not None else public_pass(done)
