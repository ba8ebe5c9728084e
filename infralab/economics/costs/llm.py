"""An LLM chat service: the decode operating point and the options lesson 05 and the
dashboard compare."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from infralab.core.results import Figure
from infralab.economics.costs import pricing
from infralab.economics.costs.constants import DEFAULT_GPU
from infralab.economics.costs.measured import DEFAULTS
from infralab.economics.costs.options import (
    CloudRunCPU,
    DedicatedGPU,
    ManagedAPI,
    PerSecondGPU,
    ServerlessCPU,
)
from infralab.economics.costs.pricing import (
    CostError,
)
from infralab.economics.costs.pricing import (
    check_nonneg as _nonneg,
)
from infralab.economics.costs.workload import NO_REQUESTS, Bill, Option, Workload

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


@dataclass(frozen=True)
class Speed:
    """What a measured (or recorded) run says about serving one request: prefill and decode."""

    decode: Figure  # tokens/s of one stream
    prefill: Figure | None  # prompt tokens/s; None when not measured (prefill then unpriced)
    device: str
    model: str

    def seconds(self, tokens_in: float, tokens_out: float) -> tuple[float, float]:
        """(prefill seconds, decode seconds) of one request on this device."""
        pre = tokens_in / self.prefill.value if self.prefill and self.prefill.value else 0.0
        return pre, tokens_out / self.decode.value if self.decode.value else math.inf


SPEED_KEYS = ("cpu_decode", "cpu_prefill", "gpu_decode", "gpu_prefill")


def measured_speeds(
    cpu_tokens_per_s: float | None = None, speeds: dict[str, Figure] | None = None
) -> tuple[Speed, Speed | None, list[str]]:
    """The CPU speed (lesson 04, else the recorded run) and the GPU speed (the student's own
    GPU run, else the recorded H200 run), each figure labelled; and notes.

    ``speeds`` replaces any of the figures (keys :data:`SPEED_KEYS`): the capstone passes its
    inputs through here, so a what-if on one input reprices every option that uses it."""
    from infralab.core import results

    notes: list[str] = []
    try:
        gen = results.load("generation")
        decode = gen.figure("decode_tokens_per_s")
        prefill = gen.figure("prefill_tokens_per_s") if gen.prefill_tokens_per_s else None  # type: ignore[attr-defined]
    except (FileNotFoundError, results.ResultError, OSError):
        decode, prefill = DEFAULTS["generation"], None
    given = speeds or {}
    if unknown := set(given) - set(SPEED_KEYS):
        raise CostError(f"unknown speed {sorted(unknown)}; use {', '.join(SPEED_KEYS)}")
    decode, prefill = given.get("cpu_decode", decode), given.get("cpu_prefill", prefill)
    if cpu_tokens_per_s is not None:
        decode = Figure(_nonneg("cpu_tokens_per_s", cpu_tokens_per_s), "tokens/s", "default",
                        "your slider", "CPU decode speed you set")  # fmt: skip
    notes.append(f"CPU decode: {decode.label()}")
    notes.append(f"CPU prefill: {prefill.label()}" if prefill else
                 "CPU prefill: not measured (run lesson 04): prompt time not priced, a lower bound")  # fmt: skip
    cpu = Speed(decode, prefill, "CPU", CPU_MODEL)
    gpu: Speed | None = None
    try:
        g = results.load_gpu("generation")
        gd = g.figure("decode_tokens_per_s")
        gp = g.figure("prefill_tokens_per_s") if g.prefill_tokens_per_s else None  # type: ignore[attr-defined]
        gd, gp = given.get("gpu_decode", gd), given.get("gpu_prefill", gp)
        gpu = Speed(gd, gp, str(getattr(g, "device", "") or DEFAULT_GPU), CPU_MODEL)
        notes.append(
            f"GPU decode (batch 1): {gd.label()}; prefill: {gp.label() if gp else 'not measured'}"
        )
    except (FileNotFoundError, results.ResultError, OSError):
        notes.append("GPU: no saved or recorded GPU run; measured GPU options left out")
    return cpu, gpu, notes


def gpu_name(device: str) -> str:
    """The GPU model named in a device string (e.g. 'NVIDIA H200, ...'), else the default."""
    for name in ("H200", "H100", "A100", "L40S", "L4", "T4", "B200"):
        if name in device:
            return name
    return DEFAULT_GPU


def _api_options() -> tuple[list[Option], list[str]]:
    """The managed APIs, billed per input and output token at their listed prices."""
    api = pricing.load_prices("llm_api").set_index("model")
    opts: list[Option] = []
    notes: list[str] = []
    for model in ("gpt-4o-mini", "Llama-3.1-8B-Instruct-Turbo"):
        row = api.loc[model]
        opts.append(ManagedAPI(f"API {model}", row["usd_per_1m_input_tokens"],
                               row["usd_per_1m_output_tokens"], model=model,
                               provider=str(row["provider"])))  # fmt: skip
        notes.append(f"API {model}: {row['provider']}, {row['source']}, {row['as_of']}")
    return opts, notes


def _h100_estimate(
    workload: Workload, batch: int, gpu_anchor_tokens_per_s: float | None
) -> tuple[DecodePoint, float, float, float]:
    """The 8B model on one H100 at ``batch``: (operating point, prefill s, requests/s, latency s)."""
    anchor = GPU_ANCHOR.value if gpu_anchor_tokens_per_s is None else gpu_anchor_tokens_per_s
    point = decode_operating_point(batch, anchor_tokens_per_s=_nonneg("gpu_anchor", anchor))
    prefill_s = estimated_prefill_s(workload.tokens_in)
    gpu_s = prefill_s + point.step_s * workload.tokens_out / point.batch  # GPU time a request
    rps = 1.0 / gpu_s if gpu_s > 0 else 0.0
    latency = prefill_s + point.step_s * workload.tokens_out
    return point, prefill_s, rps, latency


def _h100_options(
    rps: float,
    latency: float,
    prefill_s: float,
    *,
    gpu_usd_per_hour: float | None,
    max_utilization: float,
    spot_interruptions_per_hour: float,
) -> tuple[list[Option], list[str]]:
    """The estimated 8B model on an H100 on-demand, reserved and spot (a missing price is noted, not guessed)."""
    opts: list[Option] = []
    notes: list[str] = []
    for kind in ("on_demand", "reserved", "spot"):
        try:
            rows = pricing.gpu_hourly("H100", kind)
            sxm = rows[rows["instance"].str.contains("SXM|HGX|p5|a3", regex=True)]
            row = (sxm if not sxm.empty else rows).iloc[0]  # the anchor ran on an H100 SXM
        except pricing.PricingError:
            notes.append(f"H100 {kind}: no price in datasets/pricing (missing, not guessed)")
            continue
        price = float(row["usd_per_gpu_hour"])
        if kind == "on_demand" and gpu_usd_per_hour is not None:
            price = _nonneg("gpu_usd_per_hour", gpu_usd_per_hour)
            notes.append(f"H100 on-demand: ${price:.2f}/GPU-hour (your slider)")
        else:
            notes.append(f"H100 {kind}: ${price:.3f}/GPU-hour, {row['provider']} "
                         f"{row['instance']}, {row['as_of']}")  # fmt: skip
        if kind == "spot":
            notes.append(f"H100 spot: assumed {spot_interruptions_per_hour:g} interruptions/hour, "
                         "5 min lost each (an assumption, not a published rate)")  # fmt: skip
        opts.append(DedicatedGPU(
            f"H100 {kind.replace('_', '-')}", price, rps, latency, pricing=kind,
            max_utilization=max_utilization,
            interruptions_per_hour=spot_interruptions_per_hour if kind == "spot" else 0.0,
            model=GPU_MODEL, provider=str(row["provider"]), prefill_s=prefill_s))  # fmt: skip
    return opts, notes


def _measured_gpu_option(
    gpu: Speed, workload: Workload, max_utilization: float
) -> tuple[list[Option], list[str]]:
    """The measured GPU run (the student's or the recorded one), priced at that GPU's hour."""
    name = gpu_name(gpu.device)
    pre, dec = gpu.seconds(workload.tokens_in, workload.tokens_out)
    try:
        row = pricing.gpu_hour(name, "on_demand")
    except pricing.PricingError:
        return [], [f"{name}: no price in datasets/pricing: the measured GPU run is not priced"]
    option = DedicatedGPU(
        f"{name} on-demand ({gpu.model}, {gpu.decode.origin} run)",
        float(row["usd_per_gpu_hour"]), 1.0 / (pre + dec) if pre + dec else 0.0,
        pre + dec, max_utilization=max_utilization, model=gpu.model,
        provider=str(row["provider"]), prefill_s=pre)  # fmt: skip
    note = (f"{name} ({gpu.decode.origin} run, batch 1): {pre:.3f} s prefill + "
            f"{dec:.2f} s decode a request; ${float(row['usd_per_gpu_hour']):.2f}"
            f"/GPU-hour, {row['provider']}, {row['as_of']}")  # fmt: skip
    return [option], [note]


def _per_second_option(
    rps: float, latency: float, max_utilization: float
) -> tuple[list[Option], list[str]]:
    """The same H100 estimate billed per second of use (Modal), for bursty traffic."""
    sg = pricing.load_prices("serverless_gpu")
    row = sg[(sg["provider"] == "modal") & (sg["gpu"] == "H100")].iloc[0]
    option = PerSecondGPU("H100 per-second (Modal)", row["usd_per_hour"], rps, latency,
                          max_utilization=max_utilization, model=GPU_MODEL, provider="modal")  # fmt: skip
    return [option], [f"Modal H100: ${row['usd_per_hour']:.4f}/h billed per second, {row['as_of']}"]


def _serverless_cpu_options(
    cpu: Speed, workload: Workload, kinds: tuple[str, ...]
) -> tuple[list[Option], list[str]]:
    """Lesson 04's model on Lambda and Cloud Run: a request lasts its prefill plus its decode."""
    pre, dec = cpu.seconds(workload.tokens_in, workload.tokens_out)
    if not math.isfinite(dec):
        return [], [f"serverless CPU left out: {NO_REQUESTS} at 0 tokens/s"]
    duration = pre + dec
    notes = [f"serverless CPU: {pre:.2f} s prefill ({workload.tokens_in:,.0f} prompt "
             f"tokens) + {dec:.2f} s decode a request"]  # fmt: skip
    opts: list[Option] = []
    if "cpu" in kinds:
        opts.append(ServerlessCPU("Serverless CPU (SmolLM2-135M, Lambda 2 GB)", duration,
                                  model=CPU_MODEL))  # fmt: skip
    if "cloud_run" in kinds:
        opts.append(CloudRunCPU("Serverless CPU (SmolLM2-135M, Cloud Run 1 vCPU)", duration,
                                model=CPU_MODEL))  # fmt: skip
    return opts, notes


def llm_options(
    workload: Workload,
    *,
    gpu_usd_per_hour: float | None = None,
    batch: int = 64,
    max_utilization: float = 0.7,
    spot_interruptions_per_hour: float = 0.05,
    cpu_tokens_per_s: float | None = None,
    option_set: str = "all",
    speeds: dict[str, Figure] | None = None,
    gpu_anchor_tokens_per_s: float | None = None,
) -> tuple[list[Option], list[str]]:
    """The options for an LLM chat workload, each priced from what was measured.

    - Serverless CPU runs lesson 04's model at its measured decode *and prefill* speed (the
      recorded run where lesson 04 was not run): a request lasts prompt / prefill rate +
      answer / decode rate.
    - Measured GPU options run the same model at the student's own GPU run, else the kit's
      recorded H200 run (labelled), priced at that GPU's hour.
    - The 8B-class H100 options are an *estimate*: the bandwidth model anchored on silybench
      for decode, the datasheet's peak FLOP/s for prefill (a lower bound on prompt time).
    - APIs bill every input and output token.

    ``speeds`` replaces measured figures (see :func:`measured_speeds`);
    ``gpu_anchor_tokens_per_s`` the published batch-512 throughput the H100 estimate is
    anchored on (:data:`GPU_ANCHOR`).

    Returns ``(options, notes)``; each note says where a number came from or why an option
    is missing (a price the data does not hold is not guessed).
    """
    if option_set not in OPTION_SETS:
        raise CostError(f"option_set must be one of {', '.join(OPTION_SETS)}")
    kinds = OPTION_SETS[option_set]
    cpu, gpu, notes = measured_speeds(cpu_tokens_per_s, speeds)
    opts: list[Option] = []

    def add(found: tuple[list[Option], list[str]]) -> None:
        opts.extend(found[0])
        notes.extend(found[1])

    if "api" in kinds:
        add(_api_options())
    point, prefill_s, rps, latency = _h100_estimate(workload, batch, gpu_anchor_tokens_per_s)
    if "gpu" in kinds:
        add(_h100_options(rps, latency, prefill_s, gpu_usd_per_hour=gpu_usd_per_hour,
                          max_utilization=max_utilization,
                          spot_interruptions_per_hour=spot_interruptions_per_hour))  # fmt: skip
        if gpu is not None:
            add(_measured_gpu_option(gpu, workload, max_utilization))
    if "per_second" in kinds:
        add(_per_second_option(rps, latency, max_utilization))
    if "cpu" in kinds or "cloud_run" in kinds:
        add(_serverless_cpu_options(cpu, workload, kinds))
    notes.append(
        f"H100 at batch {point.batch} (estimate, {GPU_MODEL}): {point.tokens_per_s:,.0f} tokens/s, "
        f"{1 / point.step_s:,.1f} tokens/s per user (bandwidth model anchored on silybench); "
        f"prefill {prefill_s * 1000:,.0f} ms for {workload.tokens_in:,.0f} tokens at datasheet peak"
    )
    return opts, notes


def estimated_prefill_s(tokens_in: float, params: float = 8e9, gpu: str = "H100 SXM") -> float:
    """Prompt time of an 8B model on one GPU at its datasheet dense FP16 peak (2 FLOP per
    parameter per token): a lower bound, labelled an estimate wherever it is shown."""
    peak = hardware_fact(gpu, "dense_fp16_bf16")
    return 2.0 * params * _nonneg("tokens_in", tokens_in) / (peak.value * 1e12)


def hardware_fact(device: str, metric: str) -> Figure:
    """One sourced hardware figure (datasets/pricing/hardware.csv) as a labelled Figure."""
    from infralab.economics.costs import pricing

    df = pricing.load_prices("hardware")
    rows = df[(df["device"] == device) & (df["metric"] == metric)]
    if rows.empty:
        raise CostError(f"no {metric} for {device!r} in datasets/pricing/hardware.csv")
    r = rows.iloc[0]
    return Figure(float(r["value"]), str(r["unit"]), "default", str(r["source"]), str(r["as_of"]))


# The published measurement the H100 decode estimate is anchored on (decode_operating_point).
GPU_ANCHOR = Figure(
    16542.0,
    "tokens/s",
    "default",
    "silybench (tgarg01/silybench-data), Qwen3-8B FP8 on 1xH100, batch 512",
    "run 2026-09-24",
    name="H100 8B decode anchor (published)",
)

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
