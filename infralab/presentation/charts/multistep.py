"""Charts of lesson 10 (multi-step requests): compounding latency and cost, what each lever
saves, and time to first token against KV-cache memory as the prompt grows."""

from __future__ import annotations

import altair as alt
import pandas as pd

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "compounding_chart",
    "context_chart",
    "cost_chart",
]


def compounding_chart(df: pd.DataFrame) -> alt.LayerChart:
    """p50 and p99 request latency against the number of model calls in a chain.

    ``df``: columns ``model_calls``, ``percentile`` (p50 / p99), ``latency_ms`` and
    ``source`` (measured live / composed from measured steps).
    """
    base = alt.Chart(df, title="Latency compounds with every step in the chain")
    lines = base.mark_line(point=True).encode(
        x=alt.X("model_calls:O", title="model calls in the chain (sequential steps)"),
        y=alt.Y("latency_ms:Q", title="request latency (ms)"),
        color=alt.Color("percentile:N", title="percentile"),
        strokeDash=alt.StrokeDash("source:N", title="how"),
        tooltip=["model_calls", "percentile", "source", alt.Tooltip("latency_ms:Q", format=".0f")],
    )
    return alt.layer(lines).properties(width=420, height=260)


def cost_chart(df: pd.DataFrame) -> alt.Chart:
    """USD per 1,000 requests against model calls, stacked by step kind."""
    return (
        alt.Chart(df, title="Cost adds up over the steps (each billed as a serverless call)")
        .mark_bar()
        .encode(
            x=alt.X("model_calls:O", title="model calls in the chain"),
            y=alt.Y("usd_per_1k:Q", title="USD per 1,000 requests", stack="zero"),
            color=alt.Color("step:N", title="step kind"),
            tooltip=["model_calls", "step", alt.Tooltip("usd_per_1k:Q", format=".4f")],
        )
        .properties(width=420, height=240)
    )


def savings_chart(df: pd.DataFrame) -> alt.Chart:
    """Milliseconds per request before and after each lever (parallel, cache, routing)."""
    return (
        alt.Chart(df, title="What each lever saves, measured on this machine")
        .mark_bar()
        .encode(
            y=alt.Y("lever:N", title=None),
            x=alt.X("ms:Q", title="request latency (ms)"),
            color=alt.Color("variant:N", title="variant"),
            yOffset="variant:N",
            tooltip=["lever", "variant", alt.Tooltip("ms:Q", format=".0f")],
        )
        .properties(width=420, height=200)
    )


def context_chart(
    ttft: pd.DataFrame, kv: pd.DataFrame, window: int, limit: int
) -> alt.HConcatChart:
    """Left: measured time to first token against prompt tokens. Right: KV-cache MB against
    tokens up to the model's context, with the server's window and the model's limit marked."""
    left = (
        alt.Chart(ttft, title="Time to first token (measured)")
        .mark_line(point=True)
        .encode(
            x=alt.X("prompt_tokens:Q", title="prompt length (tokens)"),
            y=alt.Y("ttft_ms:Q", title="time to first token (ms)"),
            tooltip=["prompt_tokens", alt.Tooltip("ttft_ms:Q", format=".0f")],
        )
        .properties(width=300, height=240)
    )
    marks = pd.DataFrame(
        {"tokens": [window, limit], "what": ["server window", "model context limit"]}
    )
    kv_line = (
        alt.Chart(kv, title="KV cache per sequence (computed)")
        .mark_line()
        .encode(
            x=alt.X("tokens:Q", title="tokens in the context"),
            y=alt.Y("kv_mb:Q", title="KV cache (MB)"),
            tooltip=["tokens", alt.Tooltip("kv_mb:Q", format=".1f")],
        )
    )
    rules = (
        alt.Chart(marks)
        .mark_rule(strokeDash=[4, 4])
        .encode(x="tokens:Q", color=alt.Color("what:N", title="limit"), tooltip=["what", "tokens"])
    )
    right = alt.layer(kv_line, rules).properties(width=300, height=240)
    return alt.hconcat(left, right)
