"""Charts for lesson 05: what each option costs, where they cross, what idle capacity costs.

Each builder takes plain numbers or :class:`~infralab.costs.model.Bill` objects and returns an
Altair chart with every axis titled in its unit. Options that serve nothing (or cannot serve)
are left out of per-unit charts and named in the subtitle, never drawn as an infinite bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import altair as alt
import pandas as pd

from infralab.charts import titled
from infralab.costs.model import (
    Bill,
    BreakEven,
    Option,
    Workload,
    cost_per_1k_at_utilization,
    sweep,
)

WIDTH, HEIGHT = 380, 220
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


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def cost_per_1k_chart(bills: Sequence[Bill], subtitle: str | None = None) -> alt.Chart:
    """Horizontal bars: USD per 1,000 requests for each option, latency misses marked."""
    rows = [
        {
            "option": b.option,
            "usd_per_1k": b.usd_per_1k_requests,
            "latency": "meets target" if b.meets_latency else "misses target",
            "label": f"${b.usd_per_1k_requests:,.3f}",
        }
        for b in bills
        if _finite(b.usd_per_1k_requests)
    ]
    left_out = [
        f"{b.option}: {b.note or 'no unit cost'}"
        for b in bills
        if not _finite(b.usd_per_1k_requests)
    ]
    df = pd.DataFrame(rows, columns=["option", "usd_per_1k", "latency", "label"])
    order = list(df.sort_values("usd_per_1k")["option"]) if len(df) else []
    base = alt.Chart(df).encode(
        y=alt.Y("option:N", sort=order, title="option"),
        x=alt.X("usd_per_1k:Q", title="cost per 1,000 requests (USD)"),
    )
    bars = base.mark_bar().encode(
        color=alt.Color(
            "latency:N",
            title="latency",
            scale=alt.Scale(domain=["meets target", "misses target"], range=["#4c78a8", "#e45756"]),
        ),
        tooltip=["option", alt.Tooltip("usd_per_1k:Q", format="$.4f", title="USD per 1k")],
    )
    text = base.mark_text(align="left", dx=3).encode(text="label:N")
    sub = subtitle or ""
    if left_out:
        sub = (sub + " | " if sub else "") + "not shown: " + "; ".join(left_out)
    return titled(
        (bars + text).properties(width=WIDTH, height=HEIGHT), "Cost per 1,000 requests", sub
    )


def bill_vs_traffic_chart(
    options: Iterable[Option],
    workload: Workload,
    break_evens: Iterable[BreakEven] = (),
    *,
    low: float = 100.0,
    high: float = 1e8,
    points: int = 40,
) -> alt.Chart:
    """Monthly bill against requests/day (log-log), with break-even markers and today's traffic."""
    grid = [low * (high / low) ** (i / (points - 1)) for i in range(points)]
    rows = [
        r
        for r in sweep(options, workload, grid)
        if _finite(r["monthly_usd"]) and r["monthly_usd"] > 0
    ]
    df = pd.DataFrame(rows, columns=["option", "requests_per_day", "monthly_usd"])
    lines = (
        alt.Chart(df)
        .mark_line()
        .encode(
            x=alt.X(
                "requests_per_day:Q",
                scale=alt.Scale(type="log"),
                title="traffic (requests per day)",
            ),
            y=alt.Y("monthly_usd:Q", scale=alt.Scale(type="log"), title="monthly bill (USD)"),
            color=alt.Color(
                "option:N", title="option", legend=alt.Legend(orient="bottom", columns=2)
            ),
            tooltip=[
                "option",
                alt.Tooltip("requests_per_day:Q", format=",.0f", title="requests/day"),
                alt.Tooltip("monthly_usd:Q", format="$,.0f", title="USD/month"),
            ],
        )
    )
    marks = [
        {"requests_per_day": be.requests_per_day, "label": f"{be.a} = {be.b}"}
        for be in break_evens
        if be.requests_per_day is not None and low <= be.requests_per_day <= high
    ]
    now = pd.DataFrame([{"requests_per_day": max(workload.requests_per_day, low), "label": "you"}])
    layers: list[alt.Chart] = [lines]
    if marks:
        be_df = pd.DataFrame(marks)
        layers.append(
            alt.Chart(be_df)
            .mark_rule(strokeDash=[4, 3], color="gray")
            .encode(x="requests_per_day:Q", tooltip=["label:N"])
        )
        layers.append(
            alt.Chart(be_df)
            .mark_text(angle=270, align="left", dy=-4, fontSize=9, color="gray")
            .encode(x="requests_per_day:Q", y=alt.value(HEIGHT - 4), text="label:N")
        )
    layers.append(
        alt.Chart(now).mark_rule(color="black", strokeWidth=2).encode(x="requests_per_day:Q")
    )
    sub = f"dashed: break-even points ({len(marks)}); black: your traffic"
    return titled(
        alt.layer(*layers).properties(width=WIDTH, height=HEIGHT), "Monthly bill vs traffic", sub
    )


def utilization_chart(
    usd_per_hour: float,
    throughput_rps: float,
    utilization: float,
    *,
    reference_usd_per_1k: float | None = None,
    reference_label: str = "API",
) -> alt.Chart:
    """The idle-GPU trap: cost per 1,000 requests of an hourly instance against its utilization."""
    grid = [i / 100 for i in range(2, 101, 2)]
    df = pd.DataFrame(
        {
            "utilization": grid,
            "usd_per_1k": [
                cost_per_1k_at_utilization(usd_per_hour, throughput_rps, u) for u in grid
            ],
        }
    ).dropna()
    x = alt.X(
        "utilization:Q",
        title="GPU utilization (share of paid hours busy)",
        axis=alt.Axis(format="%"),
    )
    y = alt.Y("usd_per_1k:Q", scale=alt.Scale(type="log"), title="cost per 1,000 requests (USD)")
    line = alt.Chart(df).mark_line(color="#f58518").encode(x=x, y=y)
    layers: list[alt.Chart] = [line]
    here = cost_per_1k_at_utilization(usd_per_hour, throughput_rps, utilization)
    if here is not None:
        point = pd.DataFrame(
            [{"utilization": utilization, "usd_per_1k": here, "label": f"${here:,.4f}"}]
        )
        layers.append(
            alt.Chart(point).mark_point(size=80, filled=True, color="black").encode(x=x, y=y)
        )
        layers.append(
            alt.Chart(point).mark_text(dx=8, align="left").encode(x=x, y=y, text="label:N")
        )
    if reference_usd_per_1k is not None and reference_usd_per_1k > 0:
        ref = pd.DataFrame([{"usd_per_1k": reference_usd_per_1k, "label": reference_label}])
        layers.append(alt.Chart(ref).mark_rule(strokeDash=[4, 3]).encode(y="usd_per_1k:Q"))
        layers.append(
            alt.Chart(ref)
            .mark_text(align="right", dy=-5, x=WIDTH)
            .encode(y="usd_per_1k:Q", text="label:N")
        )
    sub = (
        f"${usd_per_hour:.2f}/h, {throughput_rps:,.1f} requests/s when busy"
        if here is not None
        else "0 % utilization: no requests served"
    )
    return titled(
        alt.layer(*layers).properties(width=WIDTH, height=HEIGHT), "What an idle GPU costs", sub
    )


def customer_chart(
    bills: Sequence[Bill], requests_per_customer_per_month: float, price_per_customer_usd: float
) -> alt.Chart:
    """Infrastructure cost per active customer per month against what a customer pays."""
    rows = []
    for b in bills:
        per_1k = b.usd_per_1k_requests
        if _finite(per_1k):
            cost = per_1k * requests_per_customer_per_month / 1000.0
            rows.append(
                {
                    "option": b.option,
                    "usd_per_customer": cost,
                    "margin": "margin left" if cost < price_per_customer_usd else "loses money",
                }
            )
    df = pd.DataFrame(rows, columns=["option", "usd_per_customer", "margin"])
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            y=alt.Y("option:N", sort="x", title="option"),
            x=alt.X(
                "usd_per_customer:Q", title="infrastructure cost per active customer (USD/month)"
            ),
            color=alt.Color(
                "margin:N",
                title="at this price",
                scale=alt.Scale(
                    domain=["margin left", "loses money"], range=["#54a24b", "#e45756"]
                ),
            ),
            tooltip=["option", alt.Tooltip("usd_per_customer:Q", format="$.3f")],
        )
    )
    price = pd.DataFrame([{"usd": price_per_customer_usd}])
    rule = alt.Chart(price).mark_rule(strokeDash=[4, 3]).encode(x="usd:Q")
    sub = (
        f"{requests_per_customer_per_month:,.0f} requests per customer per month; "
        f"dashed: the customer pays ${price_per_customer_usd:,.2f}/month"
    )
    return titled(
        (bars + rule).properties(width=WIDTH, height=HEIGHT), "Cost per active customer", sub
    )
