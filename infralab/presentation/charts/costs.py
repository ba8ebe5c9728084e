"""Charts for lesson 05: what each option costs, where they cross, what idle capacity costs.

Each builder takes plain numbers or :class:`~infralab.economics.costs.model.Bill` objects and returns an
Altair chart with every axis titled in its unit. Options that serve nothing (or cannot serve)
are left out of per-unit charts and named in the subtitle, never drawn as an infinite bar.

Why the split into a fixed *skeleton* (marks, encodings, named datasets) and *data*: building
and validating Altair objects takes longer than the whole cost model, so the dashboard builds
each skeleton once and, on a slider move, only swaps the datasets and the subtitle in the
Vega-Lite spec (:func:`to_spec`). The notebook functions (``*_chart``) return the same chart.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

from infralab.economics.costs.billing import unit_cost
from infralab.economics.costs.model import (
    Bill,
    BreakEven,
    Option,
    Workload,
    sweep,
)
from infralab.presentation.charts import ChartError, titled

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "bill_vs_traffic_chart",
    "show",
    "tornado_chart",
    "utilization_chart",
]


WIDTH, HEIGHT = 300, 210
LABEL_LIMIT = 140
TORNADO_LABEL = 280  # px of input name a tornado chart shows before it truncates
_OFFLINE_READY = False


def enable_offline() -> bool:
    """Bundle Vega's JavaScript for charts once per kernel (no CDN); False if impossible.

    Altair's default HTML output fetches Vega from a CDN, which an air-gapped classroom (and
    this kit's CI browser) cannot reach. ``JupyterChart`` with the bundle renders anywhere a
    widget manager runs: JupyterLab, Notebook 7, Binder, Colab with custom widgets.
    """
    global _OFFLINE_READY
    if not _OFFLINE_READY:
        try:
            alt.JupyterChart.enable_offline()
            _OFFLINE_READY = True
        except Exception:  # anywidget or vl-convert missing
            return False
    return True


def show(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The chart as an offline-rendering widget when possible, else the chart itself."""
    if enable_offline():
        return alt.JupyterChart(chart, embed_options={"renderer": "svg", "actions": False})
    return chart


@dataclass(frozen=True)
class ChartData:
    """What changes between two drawings of one chart: its datasets and its titles."""

    skeleton: str  # a key of SKELETONS
    datasets: dict[str, list[dict[str, Any]]]
    title: str
    subtitle: str


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records")


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _data(name: str) -> alt.NamedData:
    return alt.NamedData(name=name)


# --- skeletons: marks and encodings, built once -------------------------------------------------


def _cost_skeleton() -> alt.TopLevelMixin:
    # rows arrive cheapest first; sorting in the spec would be dropped when layers merge
    y = alt.Y("option:N", sort=None, title="option", axis=alt.Axis(labelLimit=LABEL_LIMIT))
    x = alt.X("usd_per_1k:Q", title="cost per 1,000 requests (USD)", axis=alt.Axis(tickCount=5))
    bars = (
        alt.Chart(_data("bars"))
        .mark_bar()
        .encode(
            y=y,
            x=x,
            color=alt.Color(
                "latency:N",
                title="latency",
                scale=alt.Scale(
                    domain=["meets target", "misses target"], range=["#4c78a8", "#e45756"]
                ),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("option:N"),
                alt.Tooltip("usd_per_1k:Q", format="$.4f", title="USD per 1k"),
            ],
        )
    )
    text = alt.Chart(_data("bars")).mark_text(align="left", dx=3).encode(y=y, x=x, text="label:N")
    return alt.layer(bars, text).properties(width=WIDTH, height=HEIGHT)


def _traffic_skeleton() -> alt.TopLevelMixin:
    x = alt.X("requests_per_day:Q", scale=alt.Scale(type="log"), title="traffic (requests per day)")
    lines = (
        alt.Chart(_data("lines"))
        .mark_line()
        .encode(
            x=x,
            y=alt.Y("monthly_usd:Q", scale=alt.Scale(type="log"), title="monthly bill (USD)"),
            color=alt.Color(
                "option:N",
                title="option",
                legend=alt.Legend(orient="bottom", columns=2, labelLimit=LABEL_LIMIT),
            ),
            tooltip=[
                alt.Tooltip("option:N"),
                alt.Tooltip("requests_per_day:Q", format=",.0f", title="requests/day"),
                alt.Tooltip("monthly_usd:Q", format="$,.0f", title="USD/month"),
            ],
        )
    )
    marks = (
        alt.Chart(_data("break_even"))
        .mark_rule(strokeDash=[4, 3], color="gray")
        .encode(x=x, tooltip=[alt.Tooltip("label:N", title="break-even")])
    )
    now = alt.Chart(_data("now")).mark_rule(color="black", strokeWidth=2).encode(x=x)
    return alt.layer(lines, marks, now).properties(width=WIDTH, height=HEIGHT)


def _utilization_skeleton() -> alt.TopLevelMixin:
    x = alt.X(
        "utilization:Q",
        title="GPU utilization (share of paid hours busy)",
        axis=alt.Axis(format="%"),
        scale=alt.Scale(domain=[0, 1]),
    )
    y = alt.Y("usd_per_1k:Q", scale=alt.Scale(type="log"), title="cost per 1,000 requests (USD)")
    line = alt.Chart(_data("curve")).mark_line(color="#f58518").encode(x=x, y=y)
    point = (
        alt.Chart(_data("here")).mark_point(size=80, filled=True, color="black").encode(x=x, y=y)
    )
    label = alt.Chart(_data("here")).mark_text(dx=8, align="left").encode(x=x, y=y, text="label:N")
    ref = alt.Chart(_data("reference")).mark_rule(strokeDash=[4, 3]).encode(y=y)
    ref_label = (
        alt.Chart(_data("reference"))
        .mark_text(align="right", dy=-5, x=WIDTH)
        .encode(y=y, text="label:N")
    )
    return alt.layer(line, point, label, ref, ref_label).properties(width=WIDTH, height=HEIGHT)


def _customer_skeleton() -> alt.TopLevelMixin:
    x = alt.X(
        "usd_per_customer:Q",
        scale=alt.Scale(type="log"),
        title="infrastructure cost per customer (USD/month, log scale)",
    )
    dots = (
        alt.Chart(_data("customers"))
        .mark_point(filled=True, size=120)
        .encode(
            y=alt.Y("option:N", sort=None, title="option", axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            x=x,
            color=alt.Color(
                "margin:N",
                title="at this price",
                scale=alt.Scale(
                    domain=["margin left", "loses money"], range=["#54a24b", "#e45756"]
                ),
                legend=alt.Legend(orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("option:N"),
                alt.Tooltip("usd_per_customer:Q", format="$.3f", title="USD per customer"),
                alt.Tooltip("share:Q", format=".1%", title="share of the price"),
            ],
        )
    )
    rule = alt.Chart(_data("price")).mark_rule(strokeDash=[4, 3]).encode(x=x)
    label = (
        alt.Chart(_data("price")).mark_text(align="right", dx=-4, y=8).encode(x=x, text="label:N")
    )
    return alt.layer(dots, rule, label).properties(width=WIDTH, height=HEIGHT)


SKELETONS: dict[str, Callable[[], alt.TopLevelMixin]] = {
    "cost_per_1k": _cost_skeleton,
    "bill_vs_traffic": _traffic_skeleton,
    "utilization": _utilization_skeleton,
    "customer": _customer_skeleton,
}


@functools.cache
def _template(name: str) -> dict[str, Any]:
    return SKELETONS[name]().to_dict()  # validated once, here


def to_spec(cd: ChartData) -> dict[str, Any]:
    """The Vega-Lite spec for ``cd``: the cached skeleton with new datasets and titles."""
    spec = copy.copy(_template(cd.skeleton))
    spec["datasets"] = cd.datasets
    spec["title"] = {"text": cd.title, "subtitle": [cd.subtitle] if cd.subtitle else []}
    return spec


def to_chart(cd: ChartData) -> alt.TopLevelMixin:
    """The same chart as an Altair object (for notebooks, tests and saving)."""
    chart = SKELETONS[cd.skeleton]().properties(datasets=cd.datasets)
    return titled(chart, cd.title, cd.subtitle or None)


# --- data: what a slider move recomputes ---------------------------------------------------------


def cost_per_1k_data(bills: Sequence[Bill], subtitle: str | None = None) -> ChartData:
    """Bars of USD per 1,000 requests per option; unservable options named in the subtitle."""
    rows = [
        {
            "option": b.option,
            "usd_per_1k": b.usd_per_1k_requests,
            "latency": "meets target" if b.meets_latency else "misses target",
            "label": f"${b.usd_per_1k_requests:,.3f}",
        }
        for b in sorted(bills, key=lambda b: b.usd_per_1k_requests or 0.0)
        if _finite(b.usd_per_1k_requests)
    ]
    left_out = [
        f"{b.option}: {b.note or 'no unit cost'}"
        for b in bills
        if not _finite(b.usd_per_1k_requests)
    ]
    sub = subtitle or ""
    if left_out:
        sub = (sub + " | " if sub else "") + "not shown: " + "; ".join(left_out)
    return ChartData("cost_per_1k", {"bars": rows}, "Cost per 1,000 requests", sub)


def bill_vs_traffic_data(
    options: Iterable[Option],
    workload: Workload,
    break_evens: Iterable[BreakEven] = (),
    *,
    low: float = 100.0,
    high: float = 1e8,
    points: int = 40,
) -> ChartData:
    """Monthly bill against requests/day, break-even markers, and today's traffic."""
    grid = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    lines = [
        {k: r[k] for k in ("option", "requests_per_day", "monthly_usd")}
        for r in sweep(options, workload, grid)
        if _finite(r["monthly_usd"]) and r["monthly_usd"] > 0
    ]
    marks = [
        {"requests_per_day": be.requests_per_day, "label": f"{be.a} = {be.b}: {be.verdict}"}
        for be in break_evens
        if be.requests_per_day is not None and low <= be.requests_per_day <= high
    ]
    now = [{"requests_per_day": min(max(workload.requests_per_day, low), high)}]
    sub = f"dashed: break-even points ({len(marks)}); black: your traffic"
    return ChartData(
        "bill_vs_traffic",
        {"lines": lines, "break_even": marks, "now": now},
        "Monthly bill vs traffic",
        sub,
    )


def utilization_data(
    usd_per_hour: float,
    throughput_rps: float,
    utilization: float,
    *,
    reference_usd_per_1k: float | None = None,
    reference_label: str = "API",
) -> ChartData:
    """Cost per 1,000 requests of an hourly instance against its utilization (the idle trap)."""
    grid = [i / 100 for i in range(2, 101, 2)]
    curve = [
        {"utilization": u, "usd_per_1k": c}
        for u in grid
        if (c := unit_cost(usd_per_hour, throughput_rps, u, per=1000.0)) is not None
    ]
    here = unit_cost(usd_per_hour, throughput_rps, utilization, per=1000.0)
    points = (
        [{"utilization": utilization, "usd_per_1k": here, "label": f"you: ${here:,.4f}"}]
        if here is not None
        else []
    )
    ref = (
        [{"usd_per_1k": reference_usd_per_1k, "label": reference_label}]
        if reference_usd_per_1k is not None and reference_usd_per_1k > 0
        else []
    )
    sub = (
        f"${usd_per_hour:.2f}/h, {throughput_rps:,.1f} requests/s when busy; "
        f"you are at {utilization:.0%}"
        if here is not None
        else "0 % utilization: no requests served"
    )
    return ChartData(
        "utilization",
        {"curve": curve, "here": points, "reference": ref},
        "What an idle GPU costs",
        sub,
    )


def customer_data(
    bills: Sequence[Bill], requests_per_customer_per_month: float, price_per_customer_usd: float
) -> ChartData:
    """Infrastructure cost per active customer per month against what a customer pays."""
    rows = []
    for b in bills:
        per_1k = b.usd_per_1k_requests
        if _finite(per_1k):
            cost = per_1k * requests_per_customer_per_month / 1000.0
            margin = "margin left" if cost < price_per_customer_usd else "loses money"
            share = cost / price_per_customer_usd if price_per_customer_usd > 0 else None
            rows.append(
                {"option": b.option, "usd_per_customer": cost, "margin": margin, "share": share}
            )
    rows.sort(key=lambda r: r["usd_per_customer"])
    sub = (
        f"{requests_per_customer_per_month:,.0f} requests per customer per month; "
        f"dashed: the customer pays ${price_per_customer_usd:,.2f}/month"
    )
    return ChartData(
        "customer",
        {
            "customers": rows,
            "price": [
                {
                    "usd_per_customer": price_per_customer_usd,
                    "label": f"customer pays ${price_per_customer_usd:,.0f}",
                }
            ],
        },
        "Cost per active customer",
        sub,
    )


# --- the notebook API: one call, one Altair chart -----------------------------------------------


def cost_per_1k_chart(bills: Sequence[Bill], subtitle: str | None = None) -> alt.TopLevelMixin:
    """Horizontal bars: USD per 1,000 requests for each option, latency misses in red."""
    return to_chart(cost_per_1k_data(bills, subtitle))


def bill_vs_traffic_chart(
    options: Iterable[Option],
    workload: Workload,
    break_evens: Iterable[BreakEven] = (),
    **kwargs: Any,
) -> alt.TopLevelMixin:
    """Monthly bill against requests/day (log-log), with break-even markers and your traffic."""
    return to_chart(bill_vs_traffic_data(options, workload, break_evens, **kwargs))


def utilization_chart(
    usd_per_hour: float, throughput_rps: float, utilization: float, **kwargs: Any
) -> alt.TopLevelMixin:
    """The idle-GPU trap: cost per 1,000 requests against utilization, you marked on it."""
    return to_chart(utilization_data(usd_per_hour, throughput_rps, utilization, **kwargs))


def customer_chart(
    bills: Sequence[Bill], requests_per_customer_per_month: float, price_per_customer_usd: float
) -> alt.TopLevelMixin:
    """Infrastructure cost per active customer against the customer's monthly price."""
    return to_chart(customer_data(bills, requests_per_customer_per_month, price_per_customer_usd))


def workload_bill_chart(
    offers: Sequence[Any],
    people: Any,
    units: str,
    current: float,
    *,
    low: float = 1e3,
    high: float = 1e11,
    points: int = 60,
) -> alt.LayerChart:
    """Monthly bill against monthly volume for each way to run one measured workload.

    A per-unit option is a straight line on log axes; an always-on machine is flat, then
    steps up a machine at a time, and people cost lifts only the options you run yourself.
    """
    grid = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    rows = []
    for o in offers:
        for x in grid:
            usd = o.monthly_usd(x, people)
            if _finite(usd) and usd > 0:
                rows.append({"option": o.name, "volume": x, "monthly_usd": usd})
    df = pd.DataFrame(rows)
    lines = (
        alt.Chart(df)
        .mark_line()
        .encode(
            x=alt.X("volume:Q", scale=alt.Scale(type="log"), title=f"{units} per month"),
            y=alt.Y("monthly_usd:Q", scale=alt.Scale(type="log"), title="monthly bill (USD)"),
            color=alt.Color("option:N", legend=alt.Legend(orient="bottom", columns=1)),
            tooltip=[
                "option:N",
                alt.Tooltip("volume:Q", format=",.0f"),
                alt.Tooltip("monthly_usd:Q", format=",.2f"),
            ],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"volume": [current]}))
        .mark_rule(strokeDash=[4, 4], color="black")
        .encode(x="volume:Q")
    )
    return (lines + rule).properties(
        width=520, height=300, title=f"Monthly bill against {units} per month (dashed: yours)"
    )


def tornado_chart(rows: Sequence[dict[str, Any]], low: float = 0.25, high: float = 4.0,
                  subtitle: str | None = None) -> alt.TopLevelMixin:  # fmt: skip
    """How far each input can move before the decision changes (a tornado chart).

    ``rows`` are :meth:`infralab.economics.decision.sensitivity.Flip.row` dicts. Each bar spans the factors
    on the input over which the choice holds, from its lower flip (or ``low``) to its upper
    flip (or ``high``); a short bar is an input the decision is sensitive to. Log x axis.
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        raise ChartError(
            "tornado_chart needs at least one input row",
            hint="Pass [f.row() for f in infralab.economics.decision.sensitivity(decision)].",
        )
    df["from"] = df["low_factor"].fillna(low)
    df["to"] = df["high_factor"].fillna(high)
    df["flips"] = df["low_factor"].notna() | df["high_factor"].notna()
    df["reach"] = (df["to"] / df["from"]).map(math.log)
    df["label"] = df["input"] + " (" + df["origin"] + ")"

    def flip_at(v: Any, f: Any, unit: str) -> str:
        return "holds" if pd.isna(f) else f"{v:,.4g} {unit} (x{f:.2f})"

    for side in ("low", "high"):
        df[f"flips {'below' if side == 'low' else 'above'}"] = [
            flip_at(r[f"{side}_value"], r[f"{side}_factor"], r["unit"]) for _, r in df.iterrows()
        ]
    order = df.sort_values("reach")["label"].tolist()
    # the domain covers every bar and the x1 rule; nice=False keeps it at exactly that
    lo, hi = min(low, float(df["from"].min()), 1.0), max(high, float(df["to"].max()), 1.0)
    x = alt.X("from:Q", title="factor on the input (x its value now, log scale)",
              scale=alt.Scale(type="log", domain=[lo, hi], nice=False),
              axis=alt.Axis(values=[f for f in (0.25, 0.5, 1, 2, 4) if lo <= f <= hi] or None,
                            format="~g"))  # fmt: skip
    # labels up to TORNADO_LABEL px; the title sits above the labels, so the two never meet
    y = alt.Y("label:N", sort=order, title="input (origin)",
              axis=alt.Axis(labelLimit=TORNADO_LABEL, titleAngle=0, titleAlign="left",
                            titleAnchor="start", titleBaseline="bottom", titleY=-6,
                            titleX=-TORNADO_LABEL - 6))  # fmt: skip
    bars = alt.Chart(df).mark_bar().encode(
        x=x, x2="to:Q", y=y,
        color=alt.Color("flips:N", title="flips the choice in range",
                        scale=alt.Scale(domain=[True, False], range=["#e45756", "#9ecae9"])),
        tooltip=["input", "origin", alt.Tooltip("value:Q", format=",.4g"), "unit",
                 "flips below", "flips above", "low_to", "high_to"],
    )  # fmt: skip
    now = alt.Chart(pd.DataFrame({"x": [1.0]})).mark_rule(strokeDash=[4, 3]).encode(x="x:Q")
    chart = alt.layer(bars, now).properties(width=WIDTH + 100, height=max(HEIGHT, 18 * len(df)))
    return titled(chart, "How far each input can move before the choice changes",
                  subtitle or f"bar: the range over which the choice holds, scanned x{low:g}..x{high:g}")  # fmt: skip
