"""The lesson 05 dashboard: move a slider, watch the cheapest way to serve an LLM change.

Sliders and dropdowns feed :mod:`infralab.economics.costs.model`; four Altair charts redraw in place.
Charts are Altair ``JupyterChart`` widgets with Vega bundled offline (no CDN), so they render
in JupyterLab, Binder and an air-gapped classroom. Slider moves are debounced: a drag sends
many events and only the last one (after ``debounce_s`` of quiet) recomputes and redraws.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import math
import time
from typing import Any

import altair as alt
import ipywidgets as w

from infralab.economics.costs import model as m
from infralab.presentation.charts import costs as charts


class ChartSlot:
    """One chart on the dashboard, replaced in place (no flicker) when its data change."""

    def __init__(self, data: charts.ChartData, *, interactive: bool) -> None:
        self.data = data
        self._jc: Any = None
        if interactive and charts.enable_offline():
            self._jc = alt.JupyterChart(
                charts.to_chart(data), embed_options={"renderer": "svg", "actions": False}
            )
            self.widget: w.Widget = self._jc
            charts.to_spec(data)  # builds and caches the skeleton now, not on the first move
        else:
            self.widget = w.Output()
            self._render_output()

    @property
    def chart(self) -> alt.TopLevelMixin:
        """The current chart as an Altair object."""
        return charts.to_chart(self.data)

    def _render_output(self) -> None:
        from IPython.display import clear_output, display

        with self.widget:  # type: ignore[attr-defined]
            clear_output(wait=True)
            display(self.chart)

    def show(self, data: charts.ChartData) -> None:
        self.data = data
        if self._jc is not None:
            # swap datasets and titles in the cached spec: no Altair objects, no re-validation
            self._jc.spec = charts.to_spec(data)
        else:
            self._render_output()


def _api_reference(bills: list[m.Bill]) -> tuple[float | None, str]:
    api = [b for b in bills if b.kind == "api" and b.usd_per_1k_requests is not None]
    if not api:
        return None, "API"
    cheapest = min(api, key=lambda b: b.monthly_usd)
    return cheapest.usd_per_1k_requests, cheapest.option


def _make_controls(requests_per_day: float) -> dict[str, w.ValueWidget]:
    """The dashboard's sliders and dropdowns, in display order (six on the left, five right).

    The GPU price starts at the default dedicated GPU's price in the cost model.
    """
    style = {"description_width": "190px"}
    lay = w.Layout(width="430px")
    default_gpu = m.llm_options(m.Workload(1), option_set="API vs dedicated GPU")[0]
    gpu_price = next((o.usd_per_hour for o in default_gpu if isinstance(o, m.DedicatedGPU)), 2.69)
    return {
        **_workload_controls(requests_per_day, style, lay),
        **_gpu_controls(gpu_price, style, lay),
        **_customer_controls(style, lay),
    }


def _workload_controls(
    requests_per_day: float, style: dict[str, str], lay: w.Layout
) -> dict[str, w.ValueWidget]:
    """The workload: traffic volume, tokens per request, latency target, shape."""
    return {
        "requests_per_day": w.FloatLogSlider(
            value=requests_per_day,
            base=10,
            min=1,
            max=8,
            step=0.05,
            description="requests per day",
            readout_format=",.0f",
            style=style,
            layout=lay,
        ),
        "tokens_in": w.IntSlider(
            value=500,
            min=0,
            max=8000,
            step=50,
            description="input tokens per request",
            style=style,
            layout=lay,
        ),
        "tokens_out": w.IntSlider(
            value=200,
            min=10,
            max=2000,
            step=10,
            description="output tokens per request",
            style=style,
            layout=lay,
        ),
        "latency_target_s": w.FloatSlider(
            value=10.0,
            min=0.5,
            max=60,
            step=0.5,
            description="latency target (s)",
            style=style,
            layout=lay,
        ),
        "traffic": w.Dropdown(
            options=list(m.TRAFFIC_SHAPES),
            value="steady",
            description="traffic shape",
            style=style,
            layout=lay,
        ),
    }


def _gpu_controls(
    gpu_price: float, style: dict[str, str], lay: w.Layout
) -> dict[str, w.ValueWidget]:
    """The dedicated GPU's price, utilization and batch size, and which options compete."""
    return {
        "gpu_usd_per_hour": w.FloatSlider(
            value=round(gpu_price, 2),
            min=0.5,
            max=12,
            step=0.01,
            description="GPU price (USD/hour)",
            style=style,
            layout=lay,
        ),
        "utilization": w.FloatSlider(
            value=0.7,
            min=0.0,
            max=1.0,
            step=0.05,
            description="GPU target utilization",
            readout_format=".0%",
            style=style,
            layout=lay,
        ),
        "batch": w.SelectionSlider(
            options=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            value=64,
            description="GPU batch size",
            style=style,
            layout=lay,
        ),
        "option_set": w.Dropdown(
            options=list(m.OPTION_SETS),
            value="all",
            description="options",
            style=style,
            layout=lay,
        ),
    }


def _customer_controls(style: dict[str, str], lay: w.Layout) -> dict[str, w.ValueWidget]:
    """What a customer pays and uses per month (the unit economics)."""
    return {
        "customer_price": w.FloatSlider(
            value=20.0,
            min=1,
            max=200,
            step=1,
            description="customer pays (USD/month)",
            style=style,
            layout=lay,
        ),
        "customer_requests": w.FloatLogSlider(
            value=1000,
            base=10,
            min=1,
            max=5,
            step=0.1,
            description="requests per customer/month",
            readout_format=",.0f",
            style=style,
            layout=lay,
        ),
    }


class CostDashboard:
    """Sliders for the workload and the GPU, four charts, and a line that names the winner."""

    def __init__(
        self,
        *,
        requests_per_day: float = 100_000,
        debounce_s: float = 0.15,
        interactive: bool = True,
    ) -> None:
        self.debounce_s = debounce_s
        self._pending: asyncio.TimerHandle | None = None
        self.redraws = 0
        self.last_redraw_s = 0.0
        self.controls = _make_controls(requests_per_day)
        self.status = w.HTML()
        self.sources = w.HTML()
        self.timing = w.HTML()
        charts_now = self._build_charts()
        self.slots = [ChartSlot(c, interactive=interactive) for c in charts_now]
        for ctl in self.controls.values():
            ctl.observe(self._on_change, names="value")
        self.widget = self._layout()

    def _layout(self) -> w.VBox:
        """Controls in two columns, the winner line, the 2 x 2 charts, sources and timing."""
        names = list(self.controls)
        left = w.VBox([self.controls[n] for n in names[:6]])
        right = w.VBox([self.controls[n] for n in names[6:]])
        grid = w.GridBox(
            [s.widget for s in self.slots],
            layout=w.Layout(grid_template_columns="repeat(2, minmax(480px, 1fr))"),
        )
        widget = w.VBox(
            [w.HBox([left, right]), self.status, grid, self.sources, self.timing],
            layout=w.Layout(width="100%"),
        )
        widget.add_class("infralab-cost-dashboard")
        return widget

    # --- model -----------------------------------------------------------------------------

    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def workload(self) -> m.Workload:
        v = self.values()
        return m.Workload(
            requests_per_day=v["requests_per_day"],
            tokens_in=v["tokens_in"],
            tokens_out=v["tokens_out"],
            latency_target_s=v["latency_target_s"],
            traffic=v["traffic"],
        )

    def options(self) -> tuple[list[m.Option], list[str]]:
        v = self.values()
        return m.llm_options(
            self.workload(),
            gpu_usd_per_hour=v["gpu_usd_per_hour"],
            batch=int(v["batch"]),
            max_utilization=v["utilization"],
            option_set=v["option_set"],
        )

    def _build_charts(self) -> list[charts.ChartData]:
        work = self.workload()
        opts, notes = self.options()
        bills = m.compare(opts, work)
        self.bills = bills
        first = opts[0]
        self.break_evens = [m.break_even(first, o, work, points=80) for o in opts[1:]]
        gpu = next((o for o in opts if isinstance(o, m.DedicatedGPU)), None)
        ref, ref_label = _api_reference(bills)
        v = self.values()
        if gpu is not None:
            # where this workload actually sits: served requests over paid capacity
            actual = next(b for b in bills if b.option == gpu.name).utilization
            util = charts.utilization_data(
                gpu.usd_per_hour,
                gpu.throughput_rps,
                actual if actual is not None else 0.0,
                reference_usd_per_1k=ref,
                reference_label=ref_label,
            )
        else:
            util = charts.utilization_data(
                v["gpu_usd_per_hour"], 1.0, 0.0, reference_usd_per_1k=ref, reference_label=ref_label
            )
            util = dataclasses.replace(
                util, subtitle="choose an option set with a GPU to see where you sit"
            )
        built = [
            charts.cost_per_1k_data(bills, subtitle=f"{work.requests_per_day:,.0f} requests/day"),
            charts.bill_vs_traffic_data(opts, work, self.break_evens),
            util,
            charts.customer_data(bills, v["customer_requests"], v["customer_price"]),
        ]
        self._write_status(work, bills, notes)
        return built

    def _write_status(self, work: m.Workload, bills: list[m.Bill], notes: list[str]) -> None:
        ok = [b for b in bills if b.meets_latency and math.isfinite(b.monthly_usd)]
        if work.requests_per_day <= 0:
            head = m.NO_REQUESTS
        elif ok:
            best = ok[0]
            head = f"Cheapest option that meets the {work.latency_target_s:g} s target: {best.summary()}"
        else:
            head = "No option meets the latency target: raise it, shrink the batch or the output"
        lines = "".join(f"<li>{html.escape(b.summary())}</li>" for b in bills)
        bes = "".join(f"<li>{html.escape(str(be))}</li>" for be in self.break_evens)
        self.status.value = (
            f"<b class='infralab-headline'>{html.escape(head)}</b><ul>{lines}</ul>"
            f"<details><summary>break-even points</summary><ul>{bes}</ul></details>"
        )
        self.sources.value = (
            "<details><summary>where the numbers come from</summary><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
            + "</ul></details>"
        )

    # --- events ----------------------------------------------------------------------------

    def _on_change(self, _change: dict[str, Any]) -> None:
        if self.debounce_s <= 0:
            self.redraw()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                loop = None
        if loop is None or not loop.is_running():
            self.redraw()
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.call_later(self.debounce_s, self.redraw)

    def redraw(self) -> None:
        """Recompute every bill and replace the four charts (what a slider move triggers)."""
        self._pending = None
        start = time.perf_counter()
        try:
            built = self._build_charts()
        except (m.CostError, ValueError) as exc:
            self.status.value = f"<b style='color:#b00'>{html.escape(str(exc))}</b>"
            return
        for slot, chart in zip(self.slots, built, strict=True):
            slot.show(chart)
        self.redraws += 1
        self.last_redraw_s = time.perf_counter() - start
        self.timing.value = (
            f"<small class='infralab-redraw'>redraw {self.redraws}: "
            f"{self.last_redraw_s * 1000:.0f} ms in the kernel</small>"
        )

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def cost_dashboard(**kwargs: Any) -> CostDashboard:
    """The lesson 05 dashboard; display it as the last line of a cell."""
    return CostDashboard(**kwargs)
