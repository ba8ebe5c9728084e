"""Small interactive front ends (ipywidgets) over the engines: the decision explorer of lesson
07 and the landscape filter of lesson 01.

Why a module of their own: widgets belong above the engines (CONTRIBUTING.md, layers), so
``infralab.economics.decision`` and ``infralab.economics.landscape`` stay plain functions a test or a script can
call; the cost dashboards are ``infralab.presentation.widgets``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from infralab.economics import landscape
from infralab.economics.decision import Input, Scenario, decide, gather_inputs, scenario
from infralab.economics.decision.memo import money

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "decision_explorer",
    "landscape_widget",
]


def decision_explorer(sc: Scenario | str = "legal", inputs: dict[str, Input] | None = None) -> Any:
    """Controls for volume, demand, team and confidentiality; the decision redraws as they move.

    Returns an ``ipywidgets.VBox`` whose ``decision`` attribute holds the latest
    :class:`Decision` (so code, and tests, can read what the widgets show).
    """
    import ipywidgets as w

    base = scenario(sc) if isinstance(sc, str) else sc
    inputs = gather_inputs() if inputs is None else inputs
    volume, demand, team, secret = _explorer_controls(base)
    out = w.Output()
    box = w.VBox([w.HBox([volume, demand]), w.HBox([team, secret]), out])

    def redraw(_: Any = None) -> None:
        current = replace(
            base.with_traffic(volume.value),
            demand=demand.value,
            ml_engineers=team.value,
            sensitive_data=secret.value,
        )
        d = decide(current, inputs)
        box.decision = d
        _show_decision(out, d, volume.value)

    for control in (volume, demand, team, secret):
        control.observe(redraw, names="value")
    redraw()
    return box


def _explorer_controls(base: Scenario) -> tuple[Any, Any, Any, Any]:
    """The volume, demand, team and confidentiality widgets, set to the scenario's values."""
    import ipywidgets as w

    volume = w.FloatLogSlider(
        value=base.workload.requests_per_day,
        base=10,
        min=2,
        max=7,
        step=0.05,
        description="requests/day",
        readout_format=",.0f",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    demand = w.Dropdown(
        options=["volatile", "growing", "stable"], value=base.demand, description="demand"
    )
    team = w.IntSlider(
        value=base.ml_engineers,
        min=0,
        max=5,
        description="ML engineers",
        style={"description_width": "initial"},
    )
    secret = w.Checkbox(value=base.sensitive_data, description="confidential data")
    return volume, demand, team, secret


def _show_decision(out: Any, d: Any, requests_per_day: float) -> None:
    """Replace ``out``'s content with the recommendation and the bill of every option."""
    import pandas as pd
    from IPython.display import Markdown, display

    table = pd.DataFrame([b.as_row() for b in d.bills])[
        ["option", "monthly_usd", "usd_per_1k_requests", "utilization", "meets_latency"]
    ]
    out.clear_output(wait=True)
    with out:
        display(
            Markdown(
                f"**{d.recommendation}**: LLM inference on **{d.inference_on}** "
                f"({money(d.chosen.monthly_usd)}/month at {requests_per_day:,.0f} requests/day)"
            )
        )
        display(table.round(3))


def landscape_widget(df: pd.DataFrame | None = None) -> Any:
    """Dropdowns (layer, side) and a search box above the filtered table.

    Returns an ``ipywidgets.VBox``. Where widgets do not render (a plain terminal, a
    notebook viewer) call :func:`infralab.economics.landscape.filter_landscape` instead: same table, no widgets.
    """
    import ipywidgets as w
    from IPython.display import display

    df = landscape.load_landscape() if df is None else df
    layer = w.Dropdown(options=["all", *landscape.layers(df)], value="all", description="layer")
    side = w.Dropdown(options=["all", *dict.fromkeys(df["side"])], value="all", description="side")
    text = w.Text(value="", placeholder="e.g. batching, vector, per second", description="search")
    count = w.HTML()
    out = w.Output()

    def redraw(_: Any = None) -> None:
        table = landscape.filter_landscape(df, layer=layer.value, side=side.value, text=text.value)
        count.value = f"<b>{len(table)}</b> of {len(df)} tools"
        out.clear_output(wait=True)
        with out:
            display(table.drop(columns=["source"]).style.hide(axis="index"))

    for control in (layer, side, text):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([layer, side]), w.HBox([text, count]), out])
