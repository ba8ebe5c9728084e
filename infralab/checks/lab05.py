"""Checks for lab 05 (break-even dashboard): the unit cost, the break-even, the idle trap.

The student writes three small cost functions and a dashboard; each function is compared on
random inputs with a reference kept in ``infralab.checks.references.lab05`` (public checks
where the references are absent), and the kit's own cost model handed in as the student's is
refused. The dashboard check moves the sliders and looks for a redrawn chart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infralab import checks
from infralab.checks import (
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
    run_student_function,
    same_twice,
    scales_as,
)
from infralab.costs import billing
from infralab.costs import model as m


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
def _fingerprint(result: Any) -> str:
    for get in (
        lambda r: r.chart.to_json(),
        lambda r: r.to_json(),
        lambda r: repr(r),
    ):
        try:
            return str(get(result))
        except Exception:
            continue
    return ""


@points(2)
def check_dashboard(obj: Any) -> CheckPassed:
    """An ``ipywidgets.interactive`` of the student's own function whose chart follows each slider."""
    import ipywidgets as w

    if not is_kind(obj, w.interactive):
        raise CheckFailed(
            f"my_dashboard should be what ipywidgets.interactive returns, not "
            f"{type(obj).__name__}.",
            "Wrap your draw function with ipywidgets.interactive and give it sliders.",
        )
    fn = getattr(obj, "f", None)
    if defined_in(fn).startswith("infralab"):
        raise CheckFailed("The dashboard draws with the kit's function, not yours.",
                          "Write draw(...) yourself in the lab.")  # fmt: skip
    sliders = [
        c for c in obj.kwargs_widgets if is_kind(c, w.FloatSlider, w.IntSlider, w.FloatLogSlider)
    ]
    if len(sliders) < 2:
        raise CheckFailed(
            f"Your dashboard has {len(sliders)} slider(s); the lab asks for two.",
            "One for the traffic, one for the GPU's hourly price.",
        )
    moved = 0
    for slider in sliders:
        before = _fingerprint(obj.result)
        old = slider.value
        slider.value = slider.min + 0.37 * (slider.max - slider.min)
        if slider.value == old:
            slider.value = slider.max
        after = _fingerprint(obj.result)
        slider.value = old
        if after and after != before:
            moved += 1
        else:
            raise CheckFailed(
                f"Moving the slider '{slider.description}' did not change what draw returns.",
                "draw must use the slider's value and return the chart it builds.",
            )
    return CheckPassed(f"Your dashboard redraws when each of its {moved} sliders moves.")
