"""Charts for lesson 01 (price per unit of compute, the map) and lesson 07 (where a decision flips)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import altair as alt
import pandas as pd

from infralab.presentation.charts import ChartError, titled

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "decision_sweep_chart",
    "landscape_chart",
    "peak_vs_measured_chart",
    "unit_price_chart",
]


METRICS: dict[str, str] = {
    "usd_per_hour": "USD per hour (whole instance)",
    "usd_per_tflop_hour": "USD per TFLOP/s of peak, per hour (log scale)",
    "usd_per_gb_hour": "USD per GB of memory, per hour",
}


def unit_price_chart(table: pd.DataFrame, metric: str = "usd_per_tflop_hour") -> alt.Chart:
    """One bar per priced instance, CPU and GPU coloured apart; rows without a figure are left out."""
    if metric not in METRICS:
        raise ChartError(
            f"metric must be one of {', '.join(METRICS)}, not {metric!r}",
            hint="Pick a metric from that list, e.g. metric='usd_per_tflop_hour'.",
        )
    df = table.dropna(subset=[metric]).copy()
    if df.empty:
        raise ChartError(
            f"No row has a value for {metric}.",
            hint="Pass the unit-price table itself; rows without that figure are left out.",
        )
    pricing = (
        df["pricing"].fillna("").astype(str).str.replace("_", "-")
        if "pricing" in df.columns
        else pd.Series("", index=df.index)
    )
    df["label"] = df["provider"].astype(str) + " · " + df["instance"].astype(str)
    df["label"] = df["label"].where(pricing == "", df["label"] + " · " + pricing)
    twice = df["label"].duplicated(keep=False)  # two sources for one offer: keep both, dated
    if "as_of" in df.columns:
        df.loc[twice, "label"] = df.loc[twice, "label"] + " · " + df.loc[twice, "as_of"].astype(str)
    df = df.drop_duplicates("label")
    log = metric == "usd_per_tflop_hour"
    x = alt.X(
        f"{metric}:Q",
        title=METRICS[metric],
        scale=alt.Scale(type="log") if log else alt.Scale(),
    )
    # Bars cannot start at zero on a log axis, so the log metric is drawn as dots.
    mark = alt.Chart(df).mark_circle(size=90, opacity=0.9) if log else alt.Chart(df).mark_bar()
    chart = mark.encode(
        x=x,
        y=alt.Y("label:N", sort="x", title="instance (provider · name · pricing)"),
        color=alt.Color("kind:N", title="compute"),
        tooltip=[
            "kind",
            "provider",
            "instance",
            alt.Tooltip(f"{metric}:Q", format=".4g"),
            "source",
            "as_of",
        ],
    ).properties(width=520, height=max(200, 14 * len(df)))
    return titled(
        chart,
        METRICS[metric].replace(" (log scale)", ""),
        "prices: datasets/pricing (dated, sourced); peaks: datasets/compute_peaks.csv",
    )


def peak_vs_measured_chart(measured_gflops: float, peaks: pd.DataFrame) -> alt.Chart:
    """Your CPU's measured matmul GFLOP/s beside the sourced peaks (log scale: they differ 10,000x)."""
    if not measured_gflops or measured_gflops <= 0:
        raise ChartError(
            "measured_gflops must be a positive number (run the matmul cell first).",
            hint="Run the matmul cell above and pass the GFLOP/s it printed.",
        )
    rows = [
        {
            "what": "your CPU, measured now (numpy matmul)",
            "gflops": float(measured_gflops),
            "kind": "measured",
        }
    ]
    for _, r in peaks.iterrows():
        rows.append(
            {
                "what": f"{r['device']} peak, {r['precision']}",
                "gflops": float(r["peak_tflops"]) * 1000,
                "kind": "peak (datasheet)",
            }
        )
    df = pd.DataFrame(rows)
    df["shown"] = df["gflops"].map(lambda g: f"{g:,.0f} GFLOP/s")
    base = alt.Chart(df).encode(
        x=alt.X("gflops:Q", title="GFLOP/s (log scale)", scale=alt.Scale(type="log")),
        y=alt.Y("what:N", sort="-x", title=None),
        tooltip=["what", alt.Tooltip("gflops:Q", format=",.0f")],
    )
    # Bars cannot start at zero on a log axis: dots, with the value written beside each.
    dots = base.mark_circle(size=120, opacity=0.9).encode(
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom"))
    )
    labels = base.mark_text(align="left", dx=8, fontSize=11).encode(text="shown:N")
    chart = (dots + labels).properties(width=520, height=max(160, 22 * len(df)))
    return titled(chart, "Compute per device", "peaks are upper bounds; measured is what you got")


def landscape_chart(df: pd.DataFrame) -> alt.Chart:
    """How many tools the map lists per layer, split by side."""
    counts = df.groupby(["layer", "side"], sort=False).size().reset_index(name="tools")
    chart = (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            x=alt.X("tools:Q", title="tools in the map (count)"),
            y=alt.Y("layer:N", sort=list(dict.fromkeys(df["layer"])), title="layer"),
            color=alt.Color("side:N", title="side"),
            tooltip=["layer", "side", "tools"],
        )
        .properties(width=420, height=320)
    )
    return titled(chart, "What counts as AI infrastructure", "datasets/landscape.csv")


def decision_sweep_chart(rows: Iterable[dict[str, Any]]) -> alt.Chart:
    """Monthly bill of each option against traffic (log-log); where lines cross, the choice flips."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        raise ChartError(
            "No rows to plot.",
            hint="Pass the sweep's rows (one dict per option and traffic level), not an empty list.",
        )
    df = df[df["monthly_usd"].apply(lambda v: v is not None and v == v and v != float("inf"))]
    df = df[df["monthly_usd"] > 0]
    chart = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "requests_per_day:Q",
                title="requests per day (log scale)",
                scale=alt.Scale(type="log"),
            ),
            y=alt.Y(
                "monthly_usd:Q", title="monthly bill (USD, log scale)", scale=alt.Scale(type="log")
            ),
            color=alt.Color("option:N", title="option"),
            strokeDash=alt.StrokeDash("kind:N", title="kind"),
            tooltip=["option", "requests_per_day", alt.Tooltip("monthly_usd:Q", format="$,.0f")],
        )
        .properties(width=520, height=320)
    )
    return titled(
        chart,
        "Monthly bill against traffic",
        "infralab.economics.costs, prices from datasets/pricing",
    )
