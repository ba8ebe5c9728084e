"""An LLM chat service: the decode operating point and the options lesson 05 and the
dashboard compare."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from infralab.costs.measured import DEFAULTS, measured_throughput
from infralab.costs.options import (
    CloudRunCPU,
    DedicatedGPU,
    ManagedAPI,
    PerSecondGPU,
    ServerlessCPU,
)
from infralab.costs.pricing import (
    CostError,
)
from infralab.costs.pricing import (
    check_nonneg as _nonneg,
)
from infralab.costs.workload import NO_REQUESTS, Bill, Option, Workload

# --- an LLM chat service: the options the lesson and the dashboard compare ------------------


@dataclass(frozen=True)
class DecodePoint:
    """One operating point of a GPU decoding ``batch`` streams at once."""

    batch: int
    tokens_per_s: float  # all streams together
    step_s: float  # time per decode step = seconds per token for each stream


def decode_operating_point(
    batch: int,
    *,
    weights_gb: float = 8.0,
    bandwidth_gb_s: float = 3350.0,
    anchor_batch: int = 512,
    anchor_tokens_per_s: float = 16542.0,
) -> DecodePoint:
    """Decode throughput and per-token time at ``batch`` from a memory-bandwidth model.

    Each decode step reads all weights once (weights_gb / bandwidth: 8 GB of Qwen3-8B FP8 over
    an H100's 3.35 TB/s ~ 2.4 ms) plus a per-sequence cost, fitted so that batch 512 gives the
    published 16,542 output tokens/s (silybench, 2026-09-24). Batching amortizes the weight
    read: more tokens/s per GPU, but each user waits longer per token. A model, not a
    measurement: the anchor is measured, the curve between is the roofline argument.
    """
    if int(batch) != batch or batch < 1:
        raise CostError(f"batch size must be a whole number >= 1, not {batch!r}")
    w = _nonneg("weights_gb", weights_gb)
    bw = _nonneg("bandwidth_gb_s", bandwidth_gb_s)
    if bw == 0 or anchor_batch < 1 or _nonneg("anchor_tokens_per_s", anchor_tokens_per_s) == 0:
        raise CostError("bandwidth, anchor batch and anchor tokens/s must be > 0")
    weight_s = w / bw
    anchor_step = anchor_batch / anchor_tokens_per_s
    per_seq = max(0.0, (anchor_step - weight_s) / anchor_batch)
    step = weight_s + batch * per_seq
    return DecodePoint(int(batch), batch / step, step)


def llm_options(
    workload: Workload,
    *,
    gpu_usd_per_hour: float | None = None,
    batch: int = 64,
    max_utilization: float = 0.7,
    spot_interruptions_per_hour: float = 0.05,
    cpu_tokens_per_s: float | None = None,
    option_set: str = "all",
) -> tuple[list[Option], list[str]]:
    """The options for an LLM chat workload, priced from datasets/pricing, and their labels.

    Returns ``(options, notes)``; each note says where a number came from or why an option
    is missing (a price the data does not hold is not guessed). ``option_set`` is one of
    :data:`OPTION_SETS`.
    """
    from infralab.costs import pricing

    if option_set not in OPTION_SETS:
        raise CostError(f"option_set must be one of {', '.join(OPTION_SETS)}")
    kinds = OPTION_SETS[option_set]
    notes: list[str] = []
    opts: list[Option] = []
    if "api" in kinds:
        api = pricing.load_prices("llm_api").set_index("model")
        for model in ("gpt-4o-mini", "Llama-3.1-8B-Instruct-Turbo"):
            row = api.loc[model]
            opts.append(
                ManagedAPI(
                    f"API {model}",
                    row["usd_per_1m_input_tokens"],
                    row["usd_per_1m_output_tokens"],
                    model=model,
                )
            )
            notes.append(f"API {model}: {row['provider']}, {row['source']}, {row['as_of']}")
    point = decode_operating_point(batch)
    out = max(workload.tokens_out, 1.0)
    rps = point.tokens_per_s / out
    latency = point.step_s * workload.tokens_out
    if "gpu" in kinds:
        for kind in ("on_demand", "reserved", "spot"):
            try:
                rows = pricing.gpu_hourly("H100", kind)
                sxm = rows[rows["instance"].str.contains("SXM|HGX|p5|a3", regex=True)]
                # the throughput anchor was measured on an H100 SXM: prefer an SXM price
                row = (sxm if not sxm.empty else rows).iloc[0]
            except pricing.PricingError:
                notes.append(f"H100 {kind}: no price in datasets/pricing (missing, not guessed)")
                continue
            price = float(row["usd_per_gpu_hour"])
            if kind == "on_demand" and gpu_usd_per_hour is not None:
                price = _nonneg("gpu_usd_per_hour", gpu_usd_per_hour)
                notes.append(f"H100 on-demand: ${price:.2f}/GPU-hour (your slider)")
            else:
                notes.append(
                    f"H100 {kind}: ${price:.3f}/GPU-hour, {row['provider']} {row['instance']}, "
                    f"{row['as_of']}"
                )
            if kind == "spot":
                notes.append(
                    f"H100 spot: assumed {spot_interruptions_per_hour:g} interruptions/hour, "
                    "5 min lost each (an assumption, not a published rate)"
                )
            opts.append(
                DedicatedGPU(
                    f"H100 {kind.replace('_', '-')}",
                    price,
                    rps,
                    latency,
                    pricing=kind,
                    max_utilization=max_utilization,
                    interruptions_per_hour=spot_interruptions_per_hour if kind == "spot" else 0.0,
                    model=GPU_MODEL,
                )
            )
    if "per_second" in kinds:
        sg = pricing.load_prices("serverless_gpu")
        row = sg[(sg["provider"] == "modal") & (sg["gpu"] == "H100")].iloc[0]
        opts.append(
            PerSecondGPU(
                "H100 per-second (Modal)",
                row["usd_per_hour"],
                rps,
                latency,
                max_utilization=max_utilization,
                model=GPU_MODEL,
            )
        )
        notes.append(f"Modal H100: ${row['usd_per_hour']:.4f}/h billed per second, {row['as_of']}")
    if "cpu" in kinds or "cloud_run" in kinds:
        tps = cpu_tokens_per_s
        if tps is None:
            m = measured_throughput("generation")
            tps = m.value if m else DEFAULTS["generation"].value
            notes.append(f"CPU decode speed: {(m or DEFAULTS['generation']).label()}")
        if _nonneg("cpu_tokens_per_s", tps) == 0:
            notes.append(f"serverless CPU left out: {NO_REQUESTS} at 0 tokens/s")
        else:
            duration = workload.tokens_out / tps
            if "cpu" in kinds:
                price, _ = pricing.serverless_cpu_price("aws", "lambda", "compute")
                per_req, _ = pricing.serverless_cpu_price("aws", "lambda", "requests")
                opts.append(
                    ServerlessCPU(
                        "Serverless CPU (SmolLM2-135M, Lambda 2 GB)",
                        duration,
                        usd_per_gb_s=price,
                        usd_per_1m_requests=per_req,
                        model=CPU_MODEL,
                    )
                )
            if "cloud_run" in kinds:
                run = "cloud_run_request_based"
                cpu_price, _ = pricing.serverless_cpu_price("gcp", run, "cpu")
                mem_price, _ = pricing.serverless_cpu_price("gcp", run, "memory")
                req_price, _ = pricing.serverless_cpu_price("gcp", run, "requests")
                opts.append(
                    CloudRunCPU(
                        "Serverless CPU (SmolLM2-135M, Cloud Run 1 vCPU)",
                        duration,
                        usd_per_vcpu_s=cpu_price,
                        usd_per_gib_s=mem_price,
                        usd_per_1m_requests=req_price,
                        model=CPU_MODEL,
                    )
                )
    notes.append(
        f"GPU at batch {point.batch}: {point.tokens_per_s:,.0f} tokens/s, "
        f"{1 / point.step_s:,.1f} tokens/s per user (bandwidth model anchored on silybench)"
    )
    return opts, notes


# What each option of llm_options runs. The GPU options' throughput is anchored on an 8B
# model (Qwen3-8B FP8, silybench); the serverless CPU runs lesson 04's 135M model.
GPU_MODEL = "an 8B model (Qwen3-8B FP8 throughput)"
CPU_MODEL = "SmolLM2-135M-Instruct"


def product_note(bills: Iterable[Bill]) -> str:
    """Empty when every bill runs the same model; else says these are different products."""
    models = sorted({b.model for b in bills if b.model})
    if len(models) <= 1:
        return ""
    return (
        "Not the same product: these options run different models ("
        + "; ".join(models)
        + "), so their answers differ in quality; compare price only between options that "
        "run the same model, or between models you have checked are good enough."
    )


OPTION_SETS: dict[str, tuple[str, ...]] = {
    "all": ("api", "gpu", "per_second", "cpu"),
    "API vs dedicated GPU": ("api", "gpu"),
    "API vs per-second GPU": ("api", "per_second"),
    "GPU: dedicated vs per-second": ("gpu", "per_second"),
    "serverless CPU vs GPU": ("cpu", "gpu", "per_second"),
    "serverless CPU: Lambda vs Cloud Run": ("cpu", "cloud_run"),
}
