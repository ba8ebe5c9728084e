"""Charts for lesson 03: throughput against batch and sequence, variants, the GPU crossover.

Each builder takes the DataFrames that ``infralab.engines.models.throughput`` measures (the
sweeps lesson 03 runs, and ``python -m infralab bench embed`` records) and returns an Altair
chart with every axis titled in its unit; the subtitle says where numbers came from
(measured here, or recorded elsewhere with the machine named).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import pandas as pd

from infralab.presentation.charts import ChartError, titled

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "crossover_chart",
    "roofline",
    "speed_vs_quality",
    "throughput_vs_batch",
]


WIDTH, HEIGHT = 360, 220


def _need(df: Any, columns: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ChartError(
            f"{what} needs a non-empty DataFrame (from infralab.engines.models.throughput).",
            hint="Run the benchmark cell above first and pass the table it returned.",
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChartError(
            f"{what} needs the columns {', '.join(missing)}; got {list(df.columns)}.",
            hint="Pass the benchmark's table unchanged (renamed or dropped columns break the chart).",
        )
    return df


def _label(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["engine"] = df["provider"].astype(str) + "/" + df["variant"].astype(str)
    return df


def throughput_vs_batch(df: Any, subtitle: str = "measured on this machine") -> alt.Chart:
    """Sentences/s against batch size, one line per engine, one panel per sequence length."""
    df = _label(
        _need(df, ["variant", "provider", "batch", "seq", "sentences_per_s"], "throughput_vs_batch")
    )
    chart = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "batch:Q",
                title="batch size (sentences per call)",
                scale=alt.Scale(type="log", base=2),
            ),
            y=alt.Y(
                "sentences_per_s:Q", title="throughput (sentences/s)", scale=alt.Scale(type="log")
            ),
            color=alt.Color("engine:N", title="provider/variant"),
            column=alt.Column("seq:O", title="sequence length (tokens)"),
            tooltip=[
                "engine",
                "batch",
                "seq",
                alt.Tooltip("sentences_per_s:Q", format=",.0f"),
                alt.Tooltip("p50_ms:Q", format=".2f", title="p50 (ms)"),
            ],
        )  # fmt: skip
        .properties(width=WIDTH // 2, height=HEIGHT)
    )
    return titled(chart, "Bigger batches amortise per-call overhead", subtitle)


def latency_vs_seq(df: Any, subtitle: str = "measured on this machine") -> alt.Chart:
    """p50 latency per call against sequence length, one line per engine and batch."""
    df = _label(_need(df, ["variant", "provider", "batch", "seq", "p50_ms"], "latency_vs_seq"))
    df["series"] = df["engine"] + ", batch " + df["batch"].astype(str)
    chart = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("seq:Q", title="sequence length (tokens)"),
            y=alt.Y("p50_ms:Q", title="p50 latency per call (ms)", scale=alt.Scale(type="log")),
            color=alt.Color("series:N", title="engine, batch"),
            tooltip=["series", "seq", alt.Tooltip("p50_ms:Q", format=".2f")],
        )
        .properties(width=WIDTH, height=HEIGHT)
    )
    return titled(
        chart, "Longer inputs cost more per call (attention grows with length²)", subtitle
    )


def roofline(df: Any, peak_gflops: float, subtitle: str = "measured on this machine") -> alt.Chart:
    """Achieved GFLOP/s per point against the numpy matmul peak (a dashed rule)."""
    df = _label(_need(df, ["variant", "provider", "batch", "seq", "gflops"], "roofline"))
    df["point"] = "b" + df["batch"].astype(str) + " s" + df["seq"].astype(str)
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("point:N", title="batch (b) and sequence length (s)", sort=None),
            y=alt.Y("gflops:Q", title="achieved GFLOP/s"),
            color=alt.Color("engine:N", title="provider/variant"),
            xOffset="engine:N",
            tooltip=["engine", "point", alt.Tooltip("gflops:Q", format=".1f")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"peak": [peak_gflops]}))
        .mark_rule(strokeDash=[6, 4], color="black")
        .encode(y=alt.Y("peak:Q", title="achieved GFLOP/s"))
    )
    chart = (bars + rule).properties(width=WIDTH, height=HEIGHT)
    return titled(
        chart, f"How close the encoder gets to the matmul peak ({peak_gflops:.0f} GFLOP/s, dashed)",
        subtitle,
    )  # fmt: skip


def speed_vs_quality(df: Any, subtitle: str = "measured on this machine") -> alt.Chart:
    """One point per variant: throughput (x) against minimum cosine to fp32 (y)."""
    df = _need(df, ["engine", "sentences_per_s", "min_cosine"], "speed_vs_quality")
    base = alt.Chart(df).encode(
        x=alt.X("sentences_per_s:Q", title="throughput (sentences/s)"),
        y=alt.Y(
            "min_cosine:Q",
            title="worst cosine to fp32 (1 = identical)",
            scale=alt.Scale(zero=False),
        ),  # fmt: skip
        tooltip=[
            "engine",
            alt.Tooltip("sentences_per_s:Q", format=",.0f"),
            alt.Tooltip("min_cosine:Q", format=".5f"),
        ],  # fmt: skip
    )
    chart = (base.mark_point(size=90, filled=True) + base.mark_text(dx=8, align="left").encode(
        text="engine:N")).properties(width=WIDTH, height=HEIGHT)  # fmt: skip
    return titled(chart, "Speed against quality", subtitle)


def crossover_chart(df: Any, subtitle: str = "measured on this machine") -> alt.Chart:
    """ms per call against MLP width for each provider and mode: where the lines cross."""
    df = _need(df, ["hidden", "provider", "mode", "ms"], "crossover_chart").copy()
    df["series"] = df["provider"].astype(str) + ", " + df["mode"].astype(str)
    chart = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "hidden:Q",
                title="MLP width (hidden units; FLOPs grow with width²)",
                scale=alt.Scale(type="log", base=2),
            ),
            y=alt.Y("ms:Q", title="time per call (ms)", scale=alt.Scale(type="log")),
            color=alt.Color("series:N", title="provider, data path"),
            tooltip=[
                "series",
                "hidden",
                alt.Tooltip("ms:Q", format=".3f"),
                alt.Tooltip("gflops:Q", format=",.0f", title="GFLOP/s"),
            ],
        )  # fmt: skip
        .properties(width=WIDTH, height=HEIGHT)
    )
    return titled(chart, "Where the GPU overtakes the CPU", subtitle)
