"""The lesson 05 workload dashboard: the four measured workloads (requests, embeddings, tokens,
RAG questions) priced on every option, with each input's origin, the break-evens and whether
quality differs; the people cost of running your own machines is an input, zero by default.
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as w

from infralab.presentation.charts import costs as charts


class WorkloadDashboard:
    """One dashboard for the four measured workloads: pick one, set the volume, the planned
    utilization and the people cost of running your own machines; see every option's bill,
    the inputs behind it with their origin, the break-evens, and whether quality differs.
    """

    def __init__(
        self,
        *,
        workload: str = "requests",
        units_per_month: float = 10_000_000,
        interactive: bool = True,
    ) -> None:
        from infralab.economics.costs import offer_comparison as wl
        from infralab.economics.costs import unit

        self._wl = wl
        self.thread = unit.load_thread()
        self.controls = _controls(list(wl.WORKLOADS), workload, units_per_month)
        self.table = w.HTML()
        self.notes = w.HTML()
        self.chart_out = w.Output()
        self.interactive = interactive
        for c in self.controls.values():
            c.observe(self._on_change, names="value")
        intro = w.HTML(
            "<small>Every input below names its origin: <b>measured</b> (your saved run), "
            "<b>recorded</b> (the kit's run, with its file) or <b>default</b> (a sourced price). "
            "People cost starts at zero on purpose: enter your own.</small>"
        )
        self.widget = w.VBox(
            [intro, *self.controls.values(), self.notes, self.table, self.chart_out]
        )
        self.rows: list[dict[str, Any]] = []
        self.note_lines: list[str] = []
        self.redraw()

    @property
    def people(self) -> Any:
        c = self.controls
        return self._wl.PeopleCost(float(c["people_hours"].value), float(c["people_rate"].value))

    def _on_change(self, _: Any = None) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Recompute bills and break-evens for the current controls and show them."""
        c = self.controls
        kind = str(c["workload"].value)
        volume = float(c["units_per_month"].value)
        util = float(c["max_utilization"].value)
        people = self.people
        self.rows, self.note_lines = self._wl.comparison(
            kind, self.thread, volume, people, max_utilization=util
        )
        head = (
            "<tr><th>option</th><th>billing</th><th>monthly USD</th><th>USD per unit</th>"
            "<th>model</th><th>quality</th><th>inputs (origin: file)</th></tr>"
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(_fmt(r[k]))}</td>"
                for k in (
                    "option",
                    "billing",
                    "monthly_usd",
                    "usd_per_unit",
                    "model",
                    "quality",
                    "inputs (origin: file)",
                )
            )  # fmt: skip
            + "</tr>"
            for r in self.rows
        )
        self.table.value = f"<table class='infralab-workloads'>{head}{body}</table>"
        self.notes.value = (
            "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.note_lines) + "</ul>"
        )
        if self.interactive:
            from IPython.display import clear_output, display

            opts = self._wl.offers(kind, self.thread, max_utilization=util)
            with self.chart_out:
                clear_output(wait=True)
                display(charts.workload_bill_chart(opts, people, kind, volume))

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _controls(
    workloads: list[str], workload: str, units_per_month: float
) -> dict[str, w.ValueWidget]:
    """The dashboard's inputs: the workload, its volume, the planned utilization of your own
    machines and the people cost of running them (zero until you enter yours)."""
    style = {"description_width": "220px"}
    lay = w.Layout(width="480px")
    return {
        "workload": w.Dropdown(
            options=workloads, value=workload, description="workload",
            style=style, layout=lay,
        ),
        "units_per_month": w.FloatLogSlider(
            value=units_per_month, base=10, min=3, max=12, step=0.1,
            description="units per month", readout_format=",.0f",
            continuous_update=False, style=style, layout=lay,
        ),
        "max_utilization": w.FloatSlider(
            value=0.7, min=0.05, max=1.0, step=0.05, readout_format=".0%",
            description="planned utilization (own machines)",
            continuous_update=False, style=style, layout=lay,
        ),
        "people_hours": w.BoundedFloatText(
            value=0.0, min=0, max=2000, step=1,
            description="engineer hours per month", style=style, layout=lay,
        ),
        "people_rate": w.BoundedFloatText(
            value=0.0, min=0, max=1000, step=5,
            description="engineer cost (USD per hour)", style=style, layout=lay,
        ),
    }  # fmt: skip


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "cannot serve"
        return f"{value:,.2f}" if value >= 1 else f"{value:.3g}"
    return str(value)
