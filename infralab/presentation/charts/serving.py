"""Charts for lesson 02: latency under load, cold-start parts, traffic traces, monthly bills."""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import numpy as np
import pandas as pd

from infralab.presentation.charts import ChartError, titled

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "break_even",
    "cold_start_bars",
    "percentiles_vs_concurrency",
    "trace_rate",
]


def latency_timeline(df: pd.DataFrame, *, title: str = "requests over time") -> alt.Chart:
    """Each request: when it started and how long it took (errors in red)."""
    data = df.assign(
        latency_ms=df["latency_s"] * 1e3,
        result=np.where(df["ok"], "ok", df["error_kind"].fillna("error")),
    )
    chart = (
        alt.Chart(data)
        .mark_circle(size=14, opacity=0.6)
        .encode(
            x=alt.X("start_s:Q", title="time since start of the run (s)"),
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=alt.Color("result:N", title="result"),
            tooltip=["i", "status", "latency_ms", "result"],
        )
    )
    return titled(chart, title)


def percentiles_vs_concurrency(sweep: pd.DataFrame, *, title: str | None = None) -> alt.Chart:
    """p50/p95/p99 latency (left) and throughput (right) against concurrent clients.

    ``sweep`` has one row per level with ``concurrency``, ``p50_ms``, ``p95_ms``, ``p99_ms``,
    ``throughput_rps`` and optionally ``mode`` (e.g. naive / batching).
    """
    data = sweep.copy()
    if "mode" not in data:
        data["mode"] = "server"
    long = data.melt(
        id_vars=["concurrency", "mode"],
        value_vars=["p50_ms", "p95_ms", "p99_ms"],
        var_name="percentile",
        value_name="latency_ms",
    )
    long["percentile"] = long["percentile"].str.replace("_ms", "")
    lat = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "concurrency:Q", title="concurrent clients", scale=alt.Scale(type="log", base=2)
            ),
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=alt.Color("percentile:N", title="percentile"),
            strokeDash=alt.StrokeDash("mode:N", title="mode"),
            tooltip=[
                "mode",
                "concurrency",
                "percentile",
                alt.Tooltip("latency_ms:Q", format=".1f"),
            ],
        )
        .properties(width=300, height=220)
    )
    thr = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "concurrency:Q", title="concurrent clients", scale=alt.Scale(type="log", base=2)
            ),
            y=alt.Y("throughput_rps:Q", title="throughput (requests/s)"),
            color=alt.Color("mode:N", title="mode"),
            tooltip=["mode", "concurrency", alt.Tooltip("throughput_rps:Q", format=".1f")],
        )
        .properties(width=300, height=220)
    )
    return titled(
        alt.hconcat(lat, thr).resolve_scale(color="independent"),
        title or "Latency and throughput under rising concurrency",
    )


def cold_start_bars(
    cold: Mapping[str, float | None], *, title: str = "Where a cold start goes"
) -> alt.Chart:
    """Stacked seconds of spawn, imports, model load, first response; a warm request beside it."""
    parts = [
        ("process spawn", cold.get("spawn_s")),
        ("imports", cold.get("imports_s")),
        ("model load", cold.get("model_load_s")),
        ("first response", cold.get("first_response_s")),
    ]
    known = sum(v for _, v in parts if v)
    other = (cold.get("ready_s") or 0) + (cold.get("first_response_s") or 0) - known
    if other > 1e-3:
        parts.insert(3, ("other start-up", other))
    rows = [
        {"request": "cold", "step": k, "seconds": float(v), "order": i}
        for i, (k, v) in enumerate(parts)
        if v
    ]
    rows.append(
        {
            "request": "warm",
            "step": "warm response",
            "seconds": float(cold.get("warm_response_s") or 0),
            "order": 9,
        }
    )
    chart = (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            y=alt.Y("request:N", title=None),
            x=alt.X("sum(seconds):Q", title="seconds until the response"),
            color=alt.Color("step:N", title="step", sort=[r["step"] for r in rows]),
            order=alt.Order("order:Q"),
            tooltip=["step", alt.Tooltip("seconds:Q", format=".3f")],
        )
        .properties(width=520, height=90)
    )
    return titled(chart, title)


def trace_rate(
    timestamps: np.ndarray, *, bin_s: float = 600, title: str = "Requests over the day"
) -> alt.Chart:
    """Requests per second, averaged over ``bin_s``-second bins, against hours."""
    ts = np.asarray(timestamps, dtype=float)
    if ts.size == 0:
        raise ChartError(
            "the trace has no requests",
            hint="Make a trace with infralab.economics.traces.make_trace and a mean_rps above 0.",
        )
    edges = np.arange(0, ts.max() + bin_s, bin_s)
    counts, _ = np.histogram(ts, bins=edges)
    data = pd.DataFrame({"hour": edges[:-1] / 3600, "rps": counts / bin_s})
    chart = (
        alt.Chart(data)
        .mark_area(opacity=0.7, interpolate="step-after")
        .encode(
            x=alt.X("hour:Q", title="time (hours)"),
            y=alt.Y("rps:Q", title=f"requests per second ({bin_s:g} s average)"),
        )
        .properties(width=520, height=180)
    )
    return titled(chart, title)


def bills(rows: pd.DataFrame, *, title: str = "Monthly bill by option") -> alt.Chart:
    """Bars of ``total_usd`` per ``option`` (a DataFrame with those two columns, maybe ``pattern``)."""
    enc = {
        "x": alt.X("total_usd:Q", title="bill per month (USD)"),
        "y": alt.Y("option:N", title=None, sort="-x"),
        "tooltip": ["option", alt.Tooltip("total_usd:Q", format=",.2f")],
    }
    chart = alt.Chart(rows).mark_bar()
    if "pattern" in rows:
        chart = chart.encode(
            **enc, color=alt.Color("option:N", legend=None), row=alt.Row("pattern:N", title=None)
        )
    else:
        chart = chart.encode(**enc, color=alt.Color("option:N", legend=None))
    return titled(chart.properties(width=420), title)


def break_even(df: pd.DataFrame, *, title: str = "Serverless or always-on?") -> alt.Chart:
    """Monthly bill against monthly requests, one line per option (log-log)."""
    chart = (
        alt.Chart(df)
        .mark_line()
        .encode(
            x=alt.X("requests:Q", title="requests per month", scale=alt.Scale(type="log")),
            y=alt.Y("total_usd:Q", title="bill per month (USD)", scale=alt.Scale(type="log")),
            color=alt.Color("option:N", title="option"),
            tooltip=[
                "option",
                alt.Tooltip("requests:Q", format=",.0f"),
                alt.Tooltip("total_usd:Q", format=",.2f"),
            ],
        )
        .properties(width=520, height=260)
    )
    return titled(chart, title)
