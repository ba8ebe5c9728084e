"""The typed records, one per kind of measurement a later lesson prices, and the one way a
saved form becomes a record again (:func:`from_dict`, which validates it).

Readers (the cost model, the lesson 05 dashboard, the capstone) use the fields, never key
searches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from infralab.core.results.records import SCHEMA_VERSION, Record, ResultError


@dataclass
class ServingResult(Record):
    """Lesson 02 / ``bench serve``: the embeddings API under load, and one request alone."""

    kind: ClassVar[str] = "serving"
    units: ClassVar[dict[str, str]] = {
        "throughput_rps": "requests/s",
        "throughput_rps_naive": "requests/s",
        "mean_duration_s": "s",
        "cpu_vcpus": "vCPU",
        "p50_ms": "ms",
        "p95_ms": "ms",
        "p99_ms": "ms",
        "cold_start_s": "s",
        "rss_mb": "MB",
    }
    required: ClassVar[tuple[str, ...]] = ("throughput_rps", "mean_duration_s", "cpu_vcpus")

    throughput_rps: float = 0.0  # with micro-batching, at ``concurrency`` clients
    mean_duration_s: float = 0.0  # one request alone: what a function is billed for
    cpu_vcpus: float = 1.0  # the CPU the request was measured with (vCPUs the server used)
    concurrency: int = 1
    throughput_rps_naive: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    cold_start_s: float | None = None
    rss_mb: float | None = None
    variant: str = "int8"
    model: str = "all-MiniLM-L6-v2"


@dataclass
class LoadLevel:
    """One step of a load test: how many clients, what they got."""

    concurrency: int
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    errors: int = 0


@dataclass
class LoadTestResult(Record):
    """Lab 02: a load test of the student's own service (a concurrency sweep)."""

    kind: ClassVar[str] = "loadtest"
    units: ClassVar[dict[str, str]] = {
        "throughput_rps": "requests/s",
        "mean_duration_s": "s",
        "cpu_vcpus": "vCPU",
    }
    required: ClassVar[tuple[str, ...]] = ("throughput_rps", "mean_duration_s")

    throughput_rps: float = 0.0  # the best level's throughput
    mean_duration_s: float = 0.0  # one request alone (concurrency 1)
    cpu_vcpus: float = 1.0
    levels: list[LoadLevel] = field(default_factory=list)
    target: str = ""  # what was tested (an app name, never a remote address)

    def __post_init__(self) -> None:
        self.levels = [LoadLevel(**lv) if isinstance(lv, dict) else lv for lv in self.levels]


@dataclass
class EmbeddingResult(Record):
    """Lesson 03 / ``bench embed``: sentences per second of the best engine."""

    kind: ClassVar[str] = "embedding"
    units: ClassVar[dict[str, str]] = {
        "sentences_per_s": "sentences/s",
        "cpu_vcpus": "vCPU",
        "min_cosine_vs_fp32": "cosine",
        "mean_tokens_per_sentence": "tokens",
    }
    required: ClassVar[tuple[str, ...]] = ("sentences_per_s",)

    sentences_per_s: float = 0.0
    engine: str = ""
    provider: str = "cpu"
    device: str = ""  # "CPU (2 cores)" or the GPU's name
    batch_size: int = 32
    cpu_vcpus: float = 1.0
    mean_tokens_per_sentence: float | None = None
    min_cosine_vs_fp32: float | None = None  # quality of the engine against fp32
    model: str = "all-MiniLM-L6-v2"


@dataclass
class GenerationResult(Record):
    """Lesson 04 / ``bench generate``: decode speed of the small LLM."""

    kind: ClassVar[str] = "generation"
    units: ClassVar[dict[str, str]] = {
        "decode_tokens_per_s": "tokens/s",
        "ttft_s": "s",
        "cpu_vcpus": "vCPU",
        "prefill_tokens_per_s": "tokens/s",
        "prefill_ttft_s": "s",
        "prefill_prompt_tokens": "tokens",
    }
    required: ClassVar[tuple[str, ...]] = ("decode_tokens_per_s",)

    decode_tokens_per_s: float = 0.0
    ttft_s: float | None = None
    # prompt processing, measured apart from decoding: the time to first token of the
    # longest prompt measured (``prefill_prompt_tokens``), and the rate it implies
    prefill_tokens_per_s: float | None = None
    prefill_ttft_s: float | None = None
    prefill_prompt_tokens: int | None = None
    variant: str = "q4"
    provider: str = "cpu"
    device: str = ""
    threads: int | None = None
    cpu_vcpus: float = 1.0
    model: str = "SmolLM2-135M-Instruct"


@dataclass
class RagResult(Record):
    """Lesson 06 / ``bench rag``: retrieval quality and time per stage of one question."""

    kind: ClassVar[str] = "rag"
    units: ClassVar[dict[str, str]] = {
        "retrieval_ms": "ms",
        "embed_query_ms": "ms",
        "search_ms": "ms",
        "generate_ms": "ms",
        "network_ms": "ms",
        "recall_at_5": "share",
        "prompt_tokens": "tokens",
        "completion_tokens": "tokens",
    }
    required: ClassVar[tuple[str, ...]] = ("retrieval_ms", "embed_query_ms", "search_ms")

    retrieval_ms: float = 0.0  # embed the query + search, p50
    embed_query_ms: float = 0.0
    search_ms: float = 0.0
    generate_ms: float | None = None  # the LLM's answer on this machine's CPU, p50
    network_ms: float | None = None  # the injected delay between tiers
    recall_at_5: float | None = None  # hybrid retrieval
    retrieval: str = "hybrid"
    prompt_tokens: float | None = None
    completion_tokens: float | None = None
    generate_model: str = "SmolLM2-135M-Instruct"
    embed_model: str = "all-MiniLM-L6-v2"


@dataclass
class MultiStepResult(Record):
    """Lesson 10: one request of several steps (retrieval, model calls, a tool) on the kit's
    live servers: how latency and cost compound, what parallel steps, a cache and routing
    save, and time to first token as the prompt grows toward the context window."""

    kind: ClassVar[str] = "multistep"
    units: ClassVar[dict[str, str]] = {
        "model_call_p50_ms": "ms",
        "model_call_p99_ms": "ms",
        "retrieve_p50_ms": "ms",
        "tool_p50_ms": "ms",
        "one_step_p50_ms": "ms",
        "one_step_p99_ms": "ms",
        "max_steps_p50_ms": "ms",
        "max_steps_p99_ms": "ms",
        "one_step_usd": "USD",
        "max_steps_usd": "USD",
        "sequential_ms": "ms",
        "parallel_ms": "ms",
        "cache_miss_ms": "ms",
        "cache_hit_ms": "ms",
        "all_model_ms": "ms",
        "routed_ms": "ms",
        "all_model_usd": "USD",
        "routed_usd": "USD",
        "routed_to_model_share": "share",
        "context_tokens": "tokens",
        "server_window_tokens": "tokens",
        "kv_bytes_per_token": "bytes",
    }
    required: ClassVar[tuple[str, ...]] = ("model_call_p50_ms", "one_step_p50_ms")

    model_call_p50_ms: float = 0.0  # one model call over HTTP, measured
    model_call_p99_ms: float = 0.0
    retrieve_p50_ms: float = 0.0
    tool_p50_ms: float = 0.0
    one_step_p50_ms: float = 0.0  # a request with one model call, measured live
    one_step_p99_ms: float = 0.0  # composed from measured step samples
    max_steps: int = 0  # the longest chain measured
    max_steps_p50_ms: float = 0.0
    max_steps_p99_ms: float = 0.0
    one_step_usd: float = 0.0  # per request, each step billed as a Lambda call
    max_steps_usd: float = 0.0
    sequential_ms: float | None = None  # the same model calls one after another ...
    parallel_ms: float | None = None  # ... and at the same time
    parallel_calls: int = 0
    cache_miss_ms: float | None = None
    cache_hit_ms: float | None = None
    all_model_ms: float | None = None  # every question answered by the model ...
    routed_ms: float | None = None  # ... or routed (extractive where the router allows)
    all_model_usd: float | None = None
    routed_usd: float | None = None
    routed_to_model_share: float | None = None
    context_tokens: int = 0  # the model's context length (its GGUF metadata)
    server_window_tokens: int = 0  # what the chat server accepts
    kv_bytes_per_token: int = 0
    chain: list[dict[str, Any]] = field(default_factory=list)  # per steps: p50/p99, USD
    ttft: list[dict[str, Any]] = field(default_factory=list)  # per prompt length
    model: str = "SmolLM2-135M-Instruct"


KINDS: dict[str, type[Record]] = {
    c.kind: c
    for c in (
        ServingResult,
        LoadTestResult,
        EmbeddingResult,
        GenerationResult,
        RagResult,
        MultiStepResult,
    )
}


def from_dict(data: dict[str, Any]) -> Record:
    """A record from its saved form; ResultError (saying what is wrong) for anything else."""
    if not isinstance(data, dict):
        raise ResultError("the file does not hold a JSON object")
    if "schema" not in data:
        raise ResultError("it has no 'schema' field: it was saved by an older kit")
    if data["schema"] != SCHEMA_VERSION:
        raise ResultError(f"it has schema {data['schema']!r}; this kit reads {SCHEMA_VERSION}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ResultError(f"its kind {kind!r} is not one of {', '.join(KINDS)}")
    cls = KINDS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - {"kind"})
    if unknown:
        raise ResultError(f"it has fields this kit does not know: {', '.join(unknown)}")
    try:
        record = cls(**{k: v for k, v in data.items() if k != "kind"})
    except TypeError as exc:
        raise ResultError(f"its fields do not fit a {cls.__name__}: {exc}") from None
    check_values(record)
    return record


def check_values(record: Record) -> None:
    """Numbers that a cost model divides by must be positive, finite numbers."""
    for name in record.required:
        value = getattr(record, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultError(f"{name} is {value!r}, not a number")
        if not (value > 0 and value != float("inf")):
            raise ResultError(f"{name} is {value!r}; it must be a positive, finite number")
    for name in record.units:
        value = getattr(record, name, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ResultError(f"{name} is {value!r}, not a number")
