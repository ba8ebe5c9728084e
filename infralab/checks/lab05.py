"""Checks for lab 05 (break-even dashboard): the unit cost, the break-even, the idle trap.

The student writes three small cost functions and a dashboard; each function is compared
with a reference kept here on random inputs, and the kit's own cost model handed in as the
student's is refused. The dashboard check moves the sliders and looks for a redrawn chart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    check,
    check_close,
    defined_in,
    is_kind,
    points,
    refuse_kit_function,
)
from infralab.costs import model as m

HOURS_PER_DAY = 24


# ---------------------------------------------------------------- references (kept here)
def _reference_cost_per_1k(usd_per_hour: float, rps: float, utilization: float) -> float | None:
    served = rps * 3600 * utilization
    return None if served <= 0 else usd_per_hour / served * 1000


def _reference_break_even(api_usd_per_request: float, gpu_usd_per_hour: float) -> float | None:
    # one GPU costs the same every day; the API costs per request
    if api_usd_per_request <= 0:
        return None
    return gpu_usd_per_hour * HOURS_PER_DAY / api_usd_per_request


def _reference_trap(usd_per_hour: float, rps: float, api_usd_per_1k: float) -> float | None:
    full = _reference_cost_per_1k(usd_per_hour, rps, 1.0)
    if full is None or api_usd_per_1k <= 0:
        return None
    share = full / api_usd_per_1k
    return share if share <= 1 else None


def _kit() -> list[Callable[..., Any]]:
    return [
        m.cost_per_1k_at_utilization,
        m.usd_per_1m_tokens_hourly,
        m.break_even,
        _reference_cost_per_1k,
        _reference_break_even,
        _reference_trap,
    ]


def _positive(low: float, high: float):
    from hypothesis import strategies as st

    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


# ---------------------------------------------------------------- 1. cost per 1k
@points(2)
def check_cost_per_1k(fn: Any) -> CheckPassed:
    """``fn(usd_per_hour, requests_per_s, utilization)`` -> USD per 1,000 requests, None at 0."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="gpu_cost_per_1k", sample_args=(2.69, 50.0, 0.5))
    tried = agrees_with_reference(
        fn,
        _reference_cost_per_1k,
        st.tuples(_positive(0.01, 100), _positive(0.01, 5000), _positive(0.0, 1.0)),
        name="gpu_cost_per_1k",
        hint="Count the requests the GPU actually serves in an hour you pay for (speed while "
        "busy, seconds per hour, share of time busy); the price of that hour spreads over "
        "them. No requests served: return None.",
        edge_cases=[(2.69, 50.0, 1.0), (2.69, 50.0, 0.0), (6.88, 3.0, 0.6), (1.0, 0.0, 1.0)],
    )
    return CheckPassed(f"gpu_cost_per_1k agrees with the definition on {tried} cases.")


# ---------------------------------------------------------------- 2. break-even
@points(2)
def check_break_even_function(fn: Any) -> CheckPassed:
    """``fn(api_usd_per_request, gpu_usd_per_hour)`` -> requests/day where both cost the same."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="break_even_requests_per_day", sample_args=(1e-4, 2.69))
    tried = agrees_with_reference(
        fn,
        _reference_break_even,
        st.tuples(_positive(0.0, 0.5), _positive(0.01, 100)),
        name="break_even_requests_per_day",
        hint="Write both daily bills: the API's grows with every request, the GPU's is its "
        "hourly price for every hour of the day. Set them equal and solve for requests; a "
        "free API never breaks even (None).",
        edge_cases=[(1e-4, 2.69), (0.0, 2.69), (0.01, 0.5)],
    )
    return CheckPassed(f"break_even_requests_per_day is right on {tried} price pairs.")


@points(1)
def check_break_even(
    value: Any, api: m.ManagedAPI, gpu: m.DedicatedGPU, work: m.Workload
) -> CheckPassed:
    """The requests/day at which ``api`` and ``gpu`` cost the same per month (the kit's model)."""
    be = m.break_even(api, gpu, work)
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
    tried = agrees_with_reference(
        fn,
        _reference_trap,
        st.tuples(_positive(0.01, 50), _positive(0.01, 2000), _positive(0.0001, 5.0)),
        name="trap_utilization",
        hint="The cost per 1k at utilization u is the cost at full use divided by u: solve "
        "for the u at which that equals the API's price. Above 1 it can never happen: None.",
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
