"""Charts for lesson 06 (hybrid RAG): retrieval quality, latency per stage, placements."""

from __future__ import annotations

import altair as alt
import pandas as pd

from infralab.presentation.charts import titled

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "abstention_scores",
    "layout_search_time",
    "placement_map",
    "retrieval_quality",
    "stage_latency",
]


def retrieval_quality(
    summary: pd.DataFrame, *, title: str = "retrieval quality by mode"
) -> alt.Chart:
    """recall@5, MRR and nDCG@10 per mode (``summary`` from ``rag.evaluate.summarize``)."""
    metrics = [m for m in ("recall@1", "recall@5", "mrr", "ndcg@10") if m in summary.columns]
    data = (
        summary[metrics].reset_index().melt(id_vars="mode", var_name="metric", value_name="score")
    )
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("mode:N", title="retrieval mode", sort=["dense", "lexical", "hybrid"]),
            xOffset=alt.XOffset("metric:N", sort=metrics),
            y=alt.Y(
                "score:Q", title="score (0-1, higher is better)", scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("metric:N", title="metric", sort=metrics),
            tooltip=["mode", "metric", alt.Tooltip("score:Q", format=".3f")],
        )
    )
    return titled(chart, title)


def abstention_scores(
    per_question: pd.DataFrame,
    threshold: float,
    *,
    title: str = "best similarity: answerable vs unanswerable",
) -> alt.Chart:
    """Histogram of each question's best cosine, split by answerable, with the threshold."""
    data = per_question.drop_duplicates("qid").assign(
        kind=lambda d: d["answerable"].map({True: "answerable", False: "unanswerable"})
    )[["qid", "kind", "best_cosine"]]
    bars = (
        alt.Chart(data)
        .mark_bar(opacity=0.6)
        .encode(
            x=alt.X(
                "best_cosine:Q",
                bin=alt.Bin(step=0.05),
                title="best cosine similarity in the tenant (unitless)",
            ),
            y=alt.Y("count():Q", title="questions", stack=None),
            color=alt.Color("kind:N", title="question"),
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"t": [threshold]}))
        .mark_rule(color="black", strokeDash=[4, 3])
        .encode(x="t:Q")
    )
    return titled(bars + rule, title)


def stage_latency(percentiles: pd.DataFrame, *, title: str = "latency per stage") -> alt.Chart:
    """p50 bars with p95 ticks per stage (``percentiles`` from ``stage_percentiles``)."""
    data = percentiles.reset_index()
    data = data[data["stage"] != "total"]
    base = alt.Chart(data).encode(y=alt.Y("stage:N", title="stage", sort=None))
    bars = base.mark_bar().encode(
        x=alt.X("p50_ms:Q", title="time per question (ms): bar p50, tick p95"),
        tooltip=[
            "stage",
            alt.Tooltip("p50_ms:Q", format=".1f"),
            alt.Tooltip("p95_ms:Q", format=".1f"),
        ],
    )
    ticks = base.mark_tick(color="black", thickness=2, size=18).encode(x="p95_ms:Q")
    return titled(bars + ticks, title)


def placement_map(table: pd.DataFrame, *, title: str = "where to run each stage") -> alt.Chart:
    """Each placement: latency per question against cost per 1,000 questions."""
    data = table.reset_index()
    chart = (
        alt.Chart(data)
        .mark_circle(size=160)
        .encode(
            x=alt.X("latency_ms:Q", title="latency per question (ms)"),
            y=alt.Y("usd_per_1k_questions:Q", title="cost per 1,000 questions (USD)"),
            color=alt.Color("placement:N", title="placement"),
            tooltip=[
                "placement",
                alt.Tooltip("latency_ms:Q", format=".0f"),
                alt.Tooltip("usd_per_1k_questions:Q", format=".4f"),
            ],
        )
    )
    return titled(chart, title)


def layout_search_time(
    table: pd.DataFrame, *, title: str = "tenant layout: search time"
) -> alt.Chart:
    """Search time per query against collection size for each tenant layout."""
    chart = (
        alt.Chart(table)
        .mark_line(point=True)
        .encode(
            x=alt.X("points:Q", title="points in the store (chunks)"),
            y=alt.Y("p50_ms:Q", title="search time per query, p50 (ms)"),
            color=alt.Color("layout:N", title="layout"),
            tooltip=["layout", "points", alt.Tooltip("p50_ms:Q", format=".1f")],
        )
    )
    return titled(chart, title)
