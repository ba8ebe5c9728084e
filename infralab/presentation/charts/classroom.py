"""Charts for the class dashboard: the room's shared measurements by hardware, and their cost.

The table they draw is :func:`infralab.tooling.classroom.room.frame`."""

from __future__ import annotations

import altair as alt
import pandas as pd

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "charts",
]


def charts(df: pd.DataFrame, nickname: str | None = None):
    """Throughput and cost per workload by hardware, one dot per record; ``nickname`` in red."""
    data = df.assign(you=(df["nickname"] == nickname) if nickname else False)
    color = alt.condition(alt.datum.you, alt.value("#d62728"), alt.value("#4c78a8"))
    base = alt.Chart(data).encode(
        y=alt.Y("hardware:N", title="hardware"),
        color=color,
        tooltip=["nickname", "workload", "hardware", "value", "unit", "usd_per_million"],
    )
    speed = (
        base.mark_circle(size=70, opacity=0.8)
        .encode(x=alt.X("value:Q", title="headline figure (unit per workload)"))
        .properties(width=360, height=120)
        .facet(row=alt.Row("workload:N", title=None))
        .resolve_scale(x="independent", y="independent")
        .properties(title="The room: each dot a shared measurement (red: you)")
    )
    priced = data.dropna(subset=["usd_per_million"])
    cost = (
        alt.Chart(priced)
        .mark_circle(size=70, opacity=0.8)
        .encode(
            x=alt.X("usd_per_million:Q", title="USD per million units (at 50 % utilization)"),
            y=alt.Y("hardware:N", title="hardware"),
            color=color,
            tooltip=["nickname", "hardware", "usd_per_million", "price_basis"],
        )
        .properties(width=360, height=120)
        .facet(row=alt.Row("workload:N", title=None))
        .resolve_scale(x="independent", y="independent")
        .properties(title="Cost per million units on published prices (datasets/pricing)")
    )
    return alt.hconcat(speed, cost)
