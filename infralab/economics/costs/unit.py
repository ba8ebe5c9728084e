"""Price each measurement where it is made: cost per million requests, embeddings or tokens,
and per thousand RAG questions, from a typed result (``infralab.core.results``) and sourced prices.

Why here and not in lesson 05: a student who has just measured 3 ms per request should see
at once what a million of them cost on each way of running them. Every :class:`UnitCost`
lists the figures it used (the measurement and each price row), each with its origin
(measured / recorded / default) and its file or web page, and says how it was computed.

Assumptions, stated where they are used:

* A request measured with ``v`` vCPUs is CPU-bound and uses them all; on a function with
  ``s`` vCPUs it takes ``duration * v / s`` (a share below what it was measured with slows it
  in proportion; more vCPUs than measured do not speed it up).
* Lambda's CPU share is linear in memory: one vCPU at 1,769 MB (Lambda developer guide).
* A VM serves ``throughput * vm_vcpus / measured_vcpus`` at the utilization you plan; it is
  billed for every hour.

One pricing function per record type, each next to the assumptions it states; the unit cost
itself, the Lambda rule and the price rows they share are :mod:`infralab.economics.costs.unit_rules`
(``table``, ``lambda_memory_for`` and ``vm_row`` are re-exported here, this module being the
lessons' face).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from infralab.core.results import (
    EmbeddingResult,
    Figure,
    GenerationResult,
    LoadTestResult,
    RagResult,
    ServingResult,
)
from infralab.economics.costs import billing, pricing
from infralab.economics.costs.constants import DEFAULT_GPU, DEFAULT_VM
from infralab.economics.costs.unit_rules import (
    UnitCost,
    _from_bill,
    _price,
    _share,
    gpu_row,
    lambda_mb_per_vcpu,
    lambda_memory_for,
    lambda_vcpus_at,
    table,
    vm_row,
    vm_unit_cost,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "embedding_costs",
    "lambda_memory_for",
    "load_thread",
    "rag_costs",
    "requests_costs",
    "table",
    "token_costs",
    "vm_row",
]


# -------------------------------------------------------------------------- lesson 02


def requests_costs(
    serving: ServingResult | LoadTestResult,
    *,
    memory_mb: float | None = None,
    architecture: str = "x86_64",
    cloud_run_vcpu: float | None = None,
    cloud_run_memory_gib: float | None = None,
    vm: str = DEFAULT_VM,
    vm_utilization: float = 0.5,
) -> list[UnitCost]:
    """Cost per 1M requests of lesson 02's measured request on Lambda, Cloud Run and a VM.

    Lambda twice: at the memory that buys the CPU share the request was measured with, and
    at ``memory_mb`` (your pick; duration scaled by the vCPU share). ``cloud_run_vcpu``
    defaults to the measured share; its memory to the measured RSS rounded up to 0.5 GiB.
    """
    d = serving.figure("mean_duration_s")
    v = serving.figure("cpu_vcpus")
    rps = serving.figure("throughput_rps")
    util = _share("vm_utilization", vm_utilization)
    model = f"{serving.model if isinstance(serving, ServingResult) else 'your service'}"
    return [
        *_lambda_requests(d, v, memory_mb, architecture, model),
        _cloud_run_requests(serving, d, v, cloud_run_vcpu, cloud_run_memory_gib, model),
        _vm_requests(rps, v, vm, util, model),
    ]


def _lambda_requests(
    d: Figure, v: Figure, memory_mb: float | None, architecture: str, model: str
) -> list[UnitCost]:
    """Lambda at the memory that buys the measured CPU share, and at ``memory_mb`` if another."""
    rule = lambda_mb_per_vcpu()
    matched = lambda_memory_for(v.value)
    picks = [(matched, "the measured CPU share")]
    if memory_mb is not None and round(memory_mb) != matched:
        picks.append((float(memory_mb), "your memory"))
    out = []
    for mb, why in picks:
        share = lambda_vcpus_at(mb)
        dur = billing.scaled_duration(d.value, v.value, share)
        usd, basis, prices = _from_bill(
            billing.lambda_function(1e6, dur, mb, architecture=architecture)
        )
        out.append(
            UnitCost(
                f"AWS Lambda {architecture}, {mb:,.0f} MB ({why}: {share:.2f} vCPU)",
                usd,
                "1M requests",
                f"{d.value * 1000:.2f} ms measured on {v.value:g} vCPU -> {dur * 1000:.2f} ms "
                f"on {share:.2f} vCPU; {basis}",
                (d, v, rule, *prices),
                model,
                "the same model",
            )
        )
    return out


def _cloud_run_requests(
    serving: ServingResult | LoadTestResult,
    d: Figure,
    v: Figure,
    cloud_run_vcpu: float | None,
    cloud_run_memory_gib: float | None,
    model: str,
) -> UnitCost:
    """Cloud Run at the measured CPU share (or ``cloud_run_vcpu``); memory from the RSS."""
    cr_vcpu = cloud_run_vcpu if cloud_run_vcpu is not None else v.value
    mem = cloud_run_memory_gib
    inputs: tuple[Figure, ...] = (d, v)
    if mem is None:
        rss = getattr(serving, "rss_mb", None)
        mem = max(0.5, math.ceil((rss or 512) / 512) * 0.5)
        if rss:
            inputs += (serving.figure("rss_mb"),)
    dur = billing.scaled_duration(d.value, v.value, cr_vcpu)
    usd, basis, prices = _from_bill(billing.cloud_run(1e6, dur, cr_vcpu, mem))
    return UnitCost(
        f"Cloud Run, {cr_vcpu:g} vCPU, {mem:g} GiB",
        usd,
        "1M requests",
        f"{dur * 1000:.2f} ms per request; {basis}",
        (*inputs, *prices),
        model,
        "the same model",
        note="a request shorter than 100 ms is billed as 100 ms" if dur < 0.1 else "",
    )


def _vm_requests(rps: Figure, v: Figure, vm: str, util: float, model: str) -> UnitCost:
    """A VM serving the measured throughput scaled to its vCPUs, busy ``util`` of the time."""
    row = vm_row(vm)
    vm_rps = rps.value * float(row["vcpu"]) / v.value
    return UnitCost(
        f"VM {row['provider']} {vm} ({int(row['vcpu'])} vCPU), {util:.0%} busy",
        billing.unit_cost(float(row["usd_per_hour"]), vm_rps, util),
        "1M requests",
        f"{rps.value:,.0f} req/s measured on {v.value:g} vCPU -> {vm_rps:,.0f} req/s on "
        f"{int(row['vcpu'])} vCPU; {float(row['usd_per_hour']):g} USD/h / "
        f"({vm_rps:,.0f} req/s x 3,600 s x {util:.0%})",
        (rps, v, _price(row["usd_per_hour"], "USD/h", row, vm)),
        model,
        "the same model",
    )


# -------------------------------------------------------------------------- lesson 03


def embedding_costs(
    cpu: EmbeddingResult,
    gpu: EmbeddingResult,
    *,
    utilization: float = 0.5,
    vm: str = DEFAULT_VM,
    gpu_name: str = DEFAULT_GPU,
) -> list[UnitCost]:
    """Cost per 1M embeddings on a CPU VM and on a GPU, both busy ``utilization`` of the time."""
    util = _share("utilization", utilization)
    cps, cv = cpu.figure("sentences_per_s"), cpu.figure("cpu_vcpus")
    g = gpu_row(gpu_name)
    gps = gpu.figure("sentences_per_s")

    def quality(r: EmbeddingResult) -> str:
        if r.min_cosine_vs_fp32 is None:
            return f"{r.engine}: quality not measured"
        return f"{r.engine}: min cosine {r.min_cosine_vs_fp32:.4f} vs fp32"

    return [
        vm_unit_cost(cps, cv, vm, util, "1M embeddings", "sentences", cpu.model, quality(cpu)),
        UnitCost(
            f"GPU {gpu_name} ({g['provider']} {g['instance']}), {util:.0%} busy",
            billing.unit_cost(float(g["usd_per_gpu_hour"]), gps.value, util),
            "1M embeddings",
            f"{gps.value:,.0f} sentences/s on {gpu.device or gpu_name}; "
            f"{float(g['usd_per_gpu_hour']):g} USD per GPU-hour",
            (gps, _price(g["usd_per_gpu_hour"], "USD/GPU-h", g, str(g["instance"]))),
            gpu.model,
            quality(gpu),
        ),
    ]


# -------------------------------------------------------------------------- lesson 04

SMALL_MODEL = "small model (135M parameters)"


def token_costs(
    gen: GenerationResult,
    *,
    utilization: float = 0.5,
    vm: str = DEFAULT_VM,
    gpu: GenerationResult | None = None,
    gpu_name: str = DEFAULT_GPU,
    api_model: str = "gpt-4o-mini",
) -> list[UnitCost]:
    """Cost per 1M output tokens of the measured decode speed: VM, Lambda, a GPU, an API.

    The API runs another, much larger model: it is listed as another product, not an equal.
    """
    util = _share("utilization", utilization)
    tps, v = gen.figure("decode_tokens_per_s"), gen.figure("cpu_vcpus")
    out = [
        vm_unit_cost(
            tps,
            v,
            vm,
            util,
            "1M tokens",
            "tokens",
            gen.model,
            SMALL_MODEL,
            "one stream",
        ),  # fmt: skip
    ]
    out.append(_lambda_tokens(tps, v, gen.model))
    if gpu is not None:
        out.append(_gpu_tokens(gpu, gpu_name, util))
    out.append(_api_tokens(api_model))
    return out


def _lambda_tokens(tps: Figure, v: Figure, model: str) -> UnitCost:
    """Lambda at the memory that buys the measured CPU share, 1,000 tokens per call."""
    mb = lambda_memory_for(v.value)
    # 1,000 tokens a call, so 1M tokens are 1,000 calls: the price of 1M calls / 1,000
    usd, basis, prices = _from_bill(billing.lambda_function(1e6, 1000 / tps.value, mb))
    return UnitCost(
        f"AWS Lambda, {mb:,} MB ({v.value:g} vCPU), 1,000 tokens per call",
        usd / 1000,
        "1M tokens",
        f"{1000 / tps.value:.1f} s per call of 1,000 tokens; per 1M calls: {basis}; / 1,000",
        (tps, v, lambda_mb_per_vcpu(), *prices),
        model,
        SMALL_MODEL,
    )


def _gpu_tokens(gpu: GenerationResult, gpu_name: str, util: float) -> UnitCost:
    """One decode stream on a GPU busy ``util`` of the time (the cheapest on-demand row)."""
    g = gpu_row(gpu_name)
    gt = gpu.figure("decode_tokens_per_s")
    return UnitCost(
        f"GPU {gpu_name} ({g['provider']}), batch 1, {util:.0%} busy",
        billing.unit_cost(float(g["usd_per_gpu_hour"]), gt.value, util),
        "1M tokens",
        f"{gt.value:,.0f} tokens/s on {gpu.device or gpu_name}, one stream",
        (gt, _price(g["usd_per_gpu_hour"], "USD/GPU-h", g, str(g["instance"]))),
        gpu.model,
        SMALL_MODEL,
        note="one stream leaves the GPU mostly idle: batching is what makes it pay",
    )


def _api_tokens(api_model: str) -> UnitCost:
    """The API's published output-token price (another, much larger model)."""
    api = pricing.load_prices("llm_api").set_index("model").loc[api_model]
    return UnitCost(
        f"API {api_model}",
        float(api["usd_per_1m_output_tokens"]),
        "1M tokens",
        "the published output-token price",
        (_price(api["usd_per_1m_output_tokens"], "USD/1M output tokens", api, api_model),),
        api_model,
        "a much larger model: answers differ in quality",
        note="not the same product: another model",
    )


# -------------------------------------------------------------------------- lesson 06


def rag_costs(
    rag: RagResult,
    *,
    utilization: float = 0.5,
    vm: str = DEFAULT_VM,
    cpu_vcpus: float | None = None,
    api_model: str = "gpt-4o-mini",
) -> list[UnitCost]:
    """Cost per 1,000 questions, per stage, of lesson 06's measured pipeline.

    Each compute stage is priced as the CPU time it took (``cpu_vcpus``: the vCPUs it ran on,
    the machine's usable CPUs by default) on a VM busy ``utilization`` of the time, and on
    Lambda at the memory that buys that CPU. The answer's stage is also priced on an API
    (another model: flagged). Network time costs latency, not compute.
    """
    util = _share("utilization", utilization)
    v = cpu_vcpus or float(rag.machine.get("usable_cpus") or rag.machine.get("cpus") or 1)
    vcpu = Figure(float(v), "vCPU", rag.origin, rag.source or "rag.json", "machine's CPUs")
    stages = [("embed_query", "embed_query_ms"), ("search", "search_ms")]
    if rag.generate_ms:
        stages.append(("generate", "generate_ms"))
    out: list[UnitCost] = []
    for stage, name in stages:
        out += _rag_stage(rag, stage, rag.figure(name), vcpu, vm, util)
    if rag.prompt_tokens and rag.completion_tokens:
        out.append(_rag_api_answer(rag, api_model))
    return out


def _rag_stage(
    rag: RagResult, stage: str, ms: Figure, vcpu: Figure, vm: str, util: float
) -> list[UnitCost]:
    """One stage's CPU time priced on a VM busy ``util`` of the time and on Lambda."""
    v = vcpu.value
    row = vm_row(vm)
    vm_price = _price(row["usd_per_hour"], "USD/h", row, vm)
    per_vcpu_s = float(row["usd_per_hour"]) / float(row["vcpu"]) / 3600.0
    mb = lambda_memory_for(v)
    cpu_s = ms.value / 1000 * v
    model = rag.generate_model if stage == "generate" else rag.embed_model
    on_vm = UnitCost(
        f"VM {vm}, {util:.0%} busy",
        1000 * cpu_s * per_vcpu_s / util,
        "1k questions",
        f"{ms.value:.1f} ms x {v:g} vCPU = {cpu_s:.4f} vCPU-s per question at "
        f"{per_vcpu_s * 3600:.4f} USD per vCPU-hour / {util:.0%}",
        (ms, vcpu, vm_price),
        model,
        "as measured",
        stage=stage,
    )
    usd, basis, prices = _from_bill(billing.lambda_function(1e6, ms.value / 1000, mb))
    on_lambda = UnitCost(
        f"AWS Lambda, {mb:,} MB ({v:g} vCPU)",
        usd / 1000,
        "1k questions",
        f"per 1M invocations: {basis}; / 1,000",
        (ms, vcpu, lambda_mb_per_vcpu(), *prices),
        model,
        "as measured",
        note="one invocation per stage per question",
        stage=stage,
    )
    return [on_vm, on_lambda]


def _rag_api_answer(rag: RagResult, api_model: str) -> UnitCost:
    """The answer's stage on an API at its published token prices (another model)."""
    api = pricing.load_prices("llm_api").set_index("model").loc[api_model]
    usd = (
        1000
        * (
            rag.prompt_tokens * float(api["usd_per_1m_input_tokens"])
            + rag.completion_tokens * float(api["usd_per_1m_output_tokens"])
        )
        / 1e6
    )
    return UnitCost(
        f"API {api_model}",
        usd,
        "1k questions",
        f"{rag.prompt_tokens:.0f} prompt + {rag.completion_tokens:.0f} answer tokens per "
        "question at the published token prices",
        (
            rag.figure("prompt_tokens"),
            rag.figure("completion_tokens"),
            _price(api["usd_per_1m_input_tokens"], "USD/1M input tokens", api, api_model),
            _price(api["usd_per_1m_output_tokens"], "USD/1M output", api, api_model),
        ),
        api_model,
        "a much larger model: answers differ in quality",
        note="not the same product: another model",
        stage="generate",
    )


@dataclass
class Thread:
    """Everything lessons 02-06 measured, loaded once, with each record's origin."""

    serving: ServingResult | LoadTestResult
    embedding: EmbeddingResult
    embedding_gpu: EmbeddingResult
    generation: GenerationResult
    generation_gpu: GenerationResult
    rag: RagResult
    notes: list[str] = field(default_factory=list)


def load_thread() -> Thread:
    """The student's saved results where valid, else the recorded runs (each labelled)."""
    from infralab.core import results

    loaded = {k: results.load(k) for k in ("serving", "embedding", "generation", "rag")}
    gpu_e = results.load_recorded("embedding", "embedding_gpu_h200")
    gpu_g = results.load_recorded("generation", "generation_gpu_h200")
    if isinstance(loaded["embedding"], EmbeddingResult) and loaded["embedding"].provider != "cpu":
        gpu_e = loaded["embedding"]  # measured live on a GPU: use it
    notes = [r.note for r in loaded.values() if r.note]
    return Thread(
        loaded["serving"],  # type: ignore[arg-type]
        loaded["embedding"],  # type: ignore[arg-type]
        gpu_e,  # type: ignore[arg-type]
        loaded["generation"],  # type: ignore[arg-type]
        gpu_g,  # type: ignore[arg-type]
        loaded["rag"],  # type: ignore[arg-type]
        notes,
    )
