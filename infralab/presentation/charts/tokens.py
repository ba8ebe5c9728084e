"""Charts and tables of lesson 04 (LLM tokens): TTFT, decode rate, KV cache, cost per 1M tokens.

The lesson sets the student's own cost per token next to published API prices; the prices
come from ``infralab.economics.costs.pricing`` (``hourly_prices``, ``api_prices``), the one owner of
price data, so they carry source and date, and the formula is ``billing.unit_cost``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import altair as alt
import pandas as pd

from infralab.core import results

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "batch_chart",
    "cost_chart",
    "gpu_model",
    "gpu_record",
    "kv_chart",
    "kv_table",
    "speed_chart",
    "ttft_chart",
]


# the kit's recorded GPU runs of ``bench generate --provider cuda``, most wanted first; each
# must exist (a test reads every name listed here)
GPU_RECORDS = ["generation_gpu_h200"]


def gpu_record() -> results.Recorded | None:
    """The kit's recorded GPU run of ``bench generate --provider cuda`` (read by
    :func:`infralab.core.results.recorded`), or None when the checkout has none."""
    for name in GPU_RECORDS:
        try:
            return results.recorded(name)
        except FileNotFoundError:
            continue
    return None


def ttft_chart(rows: list[dict[str, Any]] | pd.DataFrame, title: str = "") -> alt.Chart:
    """Time to first token against prompt length (both axes logarithmic)."""
    df = pd.DataFrame(rows).copy()
    df["ttft_ms"] = df["ttft_s"] * 1e3
    if "label" not in df:
        df["label"] = "this machine"
    return (
        alt.Chart(df, title=title or "Time to first token grows with the prompt")
        .mark_line(point=True)
        .encode(
            x=alt.X("prompt_tokens:Q", scale=alt.Scale(type="log"), title="prompt length (tokens)"),
            y=alt.Y("ttft_ms:Q", scale=alt.Scale(type="log"), title="time to first token (ms)"),
            color=alt.Color("label:N", title="run"),
            tooltip=["label", "prompt_tokens", alt.Tooltip("ttft_ms:Q", format=".1f")],
        )
        .properties(width=420, height=260)
    )


def batch_chart(rows: list[dict[str, Any]] | pd.DataFrame, title: str = "") -> alt.Chart:
    """Total and per-sequence decode tokens/s against batch size."""
    df = pd.DataFrame(rows).copy()
    if "decode_tok_s_per_sequence" not in df:
        df["decode_tok_s_per_sequence"] = df["decode_tok_s"] / df["batch"]
    df["decode_tok_s_per_sequence"] = df["decode_tok_s_per_sequence"].fillna(df["decode_tok_s"])
    if "label" not in df:
        df["label"] = "this machine"
    long = df.melt(
        id_vars=["batch", "label"],
        value_vars=["decode_tok_s", "decode_tok_s_per_sequence"],
        var_name="measure",
        value_name="tok_s",
    )
    long["measure"] = long["measure"].map(
        {"decode_tok_s": "all sequences", "decode_tok_s_per_sequence": "per sequence"}
    )
    return (
        alt.Chart(long, title=title or "Batching: more tokens per step, each user a bit slower")
        .mark_line(point=True)
        .encode(
            x=alt.X("batch:Q", scale=alt.Scale(type="log", base=2), title="batch size (sequences)"),
            y=alt.Y("tok_s:Q", title="decode speed (tokens/s)"),
            color=alt.Color("measure:N", title="tokens/s of"),
            strokeDash=alt.StrokeDash("label:N", title="run"),
            tooltip=["label", "batch", "measure", alt.Tooltip("tok_s:Q", format=".1f")],
        )
        .properties(width=420, height=260)
    )


def kv_table(
    bytes_per_token: dict[str, int], contexts: list[int], batches: list[int]
) -> pd.DataFrame:
    """KV-cache size for each cache type, context length and batch size."""
    rows = [
        {"cache": name, "context_tokens": c, "batch": b, "kv_mb": per * c * b / 1e6}
        for name, per in bytes_per_token.items()
        for c in contexts
        for b in batches
    ]
    return pd.DataFrame(rows)


def kv_chart(df: pd.DataFrame) -> alt.Chart:
    """KV-cache megabytes against context length, one line per cache type and batch."""
    df = df.copy()
    df["series"] = df["cache"] + ", batch " + df["batch"].astype(str)
    return (
        alt.Chart(df, title="KV cache: memory grows with context x batch")
        .mark_line(point=True)
        .encode(
            x=alt.X("context_tokens:Q", title="context length (tokens)"),
            y=alt.Y("kv_mb:Q", title="KV cache (MB)"),
            color=alt.Color("series:N", title="cache"),
            tooltip=["series", "context_tokens", alt.Tooltip("kv_mb:Q", format=".1f")],
        )
        .properties(width=420, height=260)
    )


def speed_chart(df: pd.DataFrame) -> alt.Chart:
    """Decode tokens/s per configuration (variant x device), with where each number came from."""
    return (
        alt.Chart(df, title="Decode speed at batch 1")
        .mark_bar()
        .encode(
            y=alt.Y("config:N", sort="-x", title=None),
            x=alt.X("decode_tok_s:Q", title="decode speed, batch 1 (tokens/s)"),
            color=alt.Color("source:N", title="measured"),
            tooltip=["config", "source", alt.Tooltip("decode_tok_s:Q", format=".1f")],
        )
        .properties(width=420, height=30 * max(2, len(df)))
    )


def cost_chart(df: pd.DataFrame) -> alt.Chart:
    """USD per 1M output tokens: the student's machines next to API prices (log scale)."""
    return (
        alt.Chart(df, title="Cost per 1M generated tokens")
        .mark_bar()
        .encode(
            y=alt.Y("name:N", sort="x", title=None),
            x=alt.X(
                "usd_per_1m:Q", scale=alt.Scale(type="log"), title="USD per 1M output tokens (log)"
            ),
            color=alt.Color("kind:N", title="how it is paid"),
            tooltip=["name", "kind", alt.Tooltip("usd_per_1m:Q", format=".3f"), "basis"],
        )
        .properties(width=420, height=22 * max(3, len(df)))
    )


def gpu_model(record: Mapping[str, Any] | None) -> str:
    """``"H200"`` from a recorded run's ``machine.gpu`` (``"NVIDIA H200, 580.., 143771 MiB"``)."""
    name = str(((record or {}).get("machine") or {}).get("gpu") or "")
    for model in ("H200", "H100", "A100", "L40S", "L4", "A10G", "T4", "B200"):
        if model in name:
            return model
    return "H100"
