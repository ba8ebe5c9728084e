"""Charts and tables of lesson 04 (LLM tokens): TTFT, decode rate, KV cache, cost per 1M tokens.

Why the price table lives beside the charts: the lesson sets the student's own cost per
token (an hourly price divided by the tokens an hour of their measured speed produces) next
to published API prices, and both must carry their source and date on the chart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
API_CSV = REPO_ROOT / "datasets" / "pricing" / "llm_api.csv"
# the kit's recorded GPU runs, most wanted first (the H100 run is made by the course's lead)
GPU_RECORDS = [
    REPO_ROOT / "datasets" / "benchmarks" / "generation_gpu_h100.json",
    REPO_ROOT / "datasets" / "benchmarks" / "generation_gpu_h200.json",
]

# Used only when datasets/pricing/llm_api.csv is absent (the same rows, the same sources).
_FALLBACK_API = [
    ("openai", "gpt-4o-mini", 0.15, 0.60, "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json", "2026-07-24"),
    ("openai", "gpt-5-nano", 0.05, 0.40, "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json", "2026-07-24"),
    ("anthropic", "claude-haiku-4-5", 1.00, 5.00, "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json", "2026-07-24"),
    ("together", "Llama-3.1-8B-Instruct-Turbo", 0.18, 0.18, "https://github.com/pydantic/genai-prices/blob/main/prices/data.json", "2025-07-03"),
]  # fmt: skip


def cost_per_million_tokens(
    usd_per_hour: float, tokens_per_s: float, utilization: float = 1.0
) -> float | None:
    """USD per 1M generated tokens for a machine rented by the hour; None when it serves none.

    An hour at ``tokens_per_s`` and ``utilization`` (the busy share) makes
    ``tokens_per_s * 3600 * utilization`` tokens; the hour's price spreads over them.
    """
    if usd_per_hour < 0 or tokens_per_s < 0 or not 0 <= utilization <= 1:
        raise ValueError("price and speed must be >= 0 and utilization between 0 and 1")
    tokens_per_hour = tokens_per_s * 3600 * utilization
    if tokens_per_hour == 0:
        return None
    return usd_per_hour / tokens_per_hour * 1e6


def api_prices() -> pd.DataFrame:
    """Published API prices per 1M tokens with source and date (the kit's CSV, else a fallback)."""
    if API_CSV.is_file():
        df = pd.read_csv(API_CSV)
        df["from"] = str(API_CSV.relative_to(REPO_ROOT))
    else:
        df = pd.DataFrame(_FALLBACK_API, columns=["provider", "model", "usd_per_1m_input_tokens",
                                                  "usd_per_1m_output_tokens", "source", "as_of"])  # fmt: skip
        df["from"] = "infralab/charts/tokens.py fallback table"
    return df


def gpu_record() -> dict[str, Any] | None:
    """The kit's recorded GPU run of ``bench generate --provider cuda``, if a file exists."""
    for path in GPU_RECORDS:
        if path.is_file():
            record = json.loads(path.read_text())
            record["file"] = str(path.relative_to(REPO_ROOT))
            return record
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


def gpu_model(record: dict[str, Any] | None) -> str:
    """``"H200"`` from a recorded run's ``machine.gpu`` (``"NVIDIA H200, 580.., 143771 MiB"``)."""
    name = str(((record or {}).get("machine") or {}).get("gpu") or "")
    for model in ("H200", "H100", "A100", "L40S", "L4", "A10G", "T4", "B200"):
        if model in name:
            return model
    return "H100"


def hourly_prices(gpu: str = "H100") -> pd.DataFrame:
    """Hourly prices to set against a measured speed, each with its source and date.

    A CPU machine like the student's: the cheapest 2-vCPU x86 on-demand VM in
    ``datasets/pricing/cpu_vm.csv`` that is not burstable (a ``t`` instance runs at full speed
    only while its CPU credits last). A GPU: the cheapest single ``gpu`` hour in
    ``datasets/pricing/gpu_instances.csv``. Rows whose file is missing are left out.
    """
    rows = []
    vm_csv = REPO_ROOT / "datasets" / "pricing" / "cpu_vm.csv"
    if vm_csv.is_file():
        df = pd.read_csv(vm_csv)
        hit = df[
            (df["vcpu"] == 2)
            & (df["architecture"] == "x86_64")
            & (df["pricing"] == "on_demand")
            & ~df["instance"].str.startswith("t")
        ]
        hit = hit.dropna(subset=["usd_per_hour"])
        if len(hit):
            r = hit.sort_values("usd_per_hour").iloc[0]
            rows.append({"machine": f"2 vCPU VM ({r['provider']} {r['instance']}, on demand)",
                         "device": "cpu", "usd_per_hour": float(r["usd_per_hour"]),
                         "source": r["source"], "as_of": r["as_of"]})  # fmt: skip
    gpu_csv = REPO_ROOT / "datasets" / "pricing" / "gpu_instances.csv"
    if gpu_csv.is_file():
        df = pd.read_csv(gpu_csv)
        one = df[(df["gpu"].astype(str).str.startswith(gpu)) & (df["gpu_count"] == 1)]
        one = one.dropna(subset=["usd_per_hour"])
        if len(one):
            r = one.sort_values("usd_per_hour").iloc[0]
            rows.append({"machine": f"1x {r['gpu']} ({r['provider']} {r['instance']}, {r['pricing']})",
                         "device": "cuda", "usd_per_hour": float(r["usd_per_hour"]),
                         "source": r["source"], "as_of": r["as_of"]})  # fmt: skip
    return pd.DataFrame(rows, columns=["machine", "device", "usd_per_hour", "source", "as_of"])
