"""Charts for lesson 09: quality against cost, the similarity behind abstention, and what an
operator sees of a load test (request rate and latency percentiles scraped from /metrics)."""

from __future__ import annotations

import altair as alt
import pandas as pd

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "best_cosine",
    "quality_cost",
    "quantile_chart",
    "rate_chart",
]


def quality_cost(paths: pd.DataFrame, title: str = "Answer quality against cost per path"):
    """One point per path: share of questions answered correctly vs USD per 1k questions."""
    data = paths.reset_index().rename(columns={"index": "path"})
    base = alt.Chart(data).encode(
        x=alt.X(
            "usd_per_1k_questions:Q",
            title="cost (USD per 1,000 questions)",
            scale=alt.Scale(type="log"),
        ),
        y=alt.Y("correct:Q", title="answered correctly (share)", scale=alt.Scale(domain=[0, 1])),
    )
    points = base.mark_circle(size=120).encode(
        color=alt.Color("path:N", title="path"),
        tooltip=["path", "correct", "usd_per_1k_questions", "p50_latency_ms"],
    )
    return (points + base.mark_text(dy=-12).encode(text="path:N")).properties(
        title=title, width=420, height=240
    )


def best_cosine(frame: pd.DataFrame, threshold: float, title: str = "Best similarity per question"):
    """Distributions of the best cosine per question group, with the abstention threshold."""
    bars = (
        alt.Chart(frame)
        .transform_density("best_cosine", groupby=["questions"], as_=["best_cosine", "density"])
        .mark_line()
        .encode(
            x=alt.X("best_cosine:Q", title="best cosine similarity in the tenant"),
            y=alt.Y("density:Q", title="density"),
            color=alt.Color("questions:N", title="questions"),
        )
    )
    rule = alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(strokeDash=[4, 4]).encode(x="t:Q")
    return (bars + rule).properties(title=title, width=420, height=220)


def rate_chart(rates: pd.DataFrame, title: str = "Requests per second"):
    """Altair line of an :func:`infralab.engines.serving.observe.rate` table."""
    return (
        alt.Chart(rates)
        .mark_line(point=True)
        .encode(
            x=alt.X("t:Q", title="time since start (s)"),
            y=alt.Y("per_s:Q", title="requests per second"),
        )
        .properties(title=title, width=420, height=180)
    )


def quantile_chart(q: pd.DataFrame, title: str = "Latency percentiles per scrape interval"):
    """Altair lines of an :func:`infralab.engines.serving.observe.quantiles_over_time` table (seconds
    shown as ms)."""
    data = q.assign(ms=q["value"] * 1e3)
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("t:Q", title="time since start (s)"),
            y=alt.Y("ms:Q", title="latency (ms)"),
            color=alt.Color("quantile:N", title="percentile"),
        )
        .properties(title=title, width=420, height=180)
    )
