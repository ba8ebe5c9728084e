"""Measurements that one lesson saves and a later one prices ("measure, then price, decide").

One typed record per measurement (:class:`ServingResult`, :class:`LoadTestResult`,
:class:`EmbeddingResult`, :class:`GenerationResult`, :class:`RagResult`). Each carries the
schema version, the machine (:func:`machine`, the kit's one description of it), the date,
what produced it, and where its numbers came from:

* ``measured``: the student's own run, saved with :func:`save` under :func:`results_dir`;
* ``recorded``: the kit's recorded run in ``datasets/benchmarks/`` (labelled with its file);
* ``default``: a sourced constant (a price, a published figure), never a made-up one.

Readers (the cost model, the lesson 05 dashboard, the capstone) use the fields, never key
searches. A saved file from an older schema, or one edited by hand into something invalid,
is not trusted: :func:`load` says why in ``record.note`` and falls back to the recorded run.

The kit's recorded runs are read by one function, :func:`recorded`, and written by one,
:func:`write_recorded`: each file stores every figure once (the typed record, and the
bench's other output as ``detail``), and a file that repeats a figure is refused.

Size: the typed records, save/load (which validate them) and the recorded-run reader and
writer (which validate the same records) change together whenever a record gains a field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from infralab.core.errors import InfralabError
from infralab.core.paths import BENCHMARKS_DIR, REPO_ROOT

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "EmbeddingResult",
    "GenerationResult",
    "LoadLevel",
    "LoadTestResult",
    "MultiStepResult",
    "RagResult",
    "ServingResult",
    "load",
    "load_recorded",
    "machine",
    "recorded",
    "results_dir",
    "save",
]


RESULTS_ENV = "INFRALAB_RESULTS"
RECORDED_DIR = BENCHMARKS_DIR
SCHEMA_VERSION = 2

Origin = Literal["measured", "recorded", "default", "estimate", "missing"]
# measured: the student's run; recorded: the kit's benchmark file; default: a sourced figure
# (a price, a published measurement); estimate: computed by a model from sourced figures;
# missing: not measured, so not priced (value None).
ORIGINS: tuple[str, ...] = ("measured", "recorded", "default", "estimate", "missing")


class ResultError(ValueError, InfralabError):
    """A saved result that cannot be used; the message says why and what to run."""

    hint = (
        "Run the lesson that measures it, or read the kit's recorded run in datasets/benchmarks/."
    )


def results_dir() -> Path:
    """The student's own measurements; ``INFRALAB_RESULTS`` moves it."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    from infralab.core.assets import cache_dir

    return cache_dir() / "results"


def machine(threads: int | None = None) -> dict[str, Any]:
    """The one description of the machine a figure was measured on (CPU, cores, GPU, load).

    Every record and every ``bench ... --record`` file uses this, so a recorded figure and a
    student's figure can be read side by side.
    """
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        from infralab.core import env

        info["cpu_model"] = env.cpu_model()
        info["usable_cpus"] = env.usable_cores()
        info["gpus"] = [g.get("name", "GPU") for g in env.gpu_info()]
    except Exception:  # an odd platform must not stop a result from being saved
        info.setdefault("gpus", [])
    if threads is not None:
        info["threads"] = int(threads)
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    return info


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _relative(path: Path) -> str:
    """A recorded file as a repository path (what a student's clone has), else as given."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Figure:
    """One number with its unit and where it came from (origin and file or page).

    The kit's one provenance type, from a lesson's measurement to the price and the memo
    (``costs.Measured`` and ``decision.Input`` are this class). ``name`` says what it is
    where a list of figures is shown; a ``missing`` figure has no value.
    """

    value: float | None
    unit: str
    origin: str
    source: str
    detail: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ResultError(f"origin must be one of {', '.join(ORIGINS)}, not {self.origin!r}")
        if self.value is None and self.origin != "missing":
            raise ResultError("only a 'missing' figure may have no value")

    def label(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        if self.value is None:
            return f"not measured ({self.source}{extra})"
        return f"{self.value:,.4g} {self.unit} ({self.origin}: {self.source}{extra})"

    def shown(self) -> str:
        """The value and unit, or a dash when missing."""
        return "—" if self.value is None else f"{self.value:,.4g} {self.unit}"

    def named(self, name: str) -> Figure:
        """The same figure under a display name."""
        return dataclasses.replace(self, name=name)


@dataclass
class Record:
    """Fields every measurement carries; subclasses add the numbers."""

    kind: ClassVar[str] = ""
    units: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    date: str = field(default_factory=_now)
    machine: dict[str, Any] = field(default_factory=machine)
    command: str = ""
    origin: str = "measured"
    source: str = ""  # the file it was read from (set by load)
    note: str = ""  # why a fallback happened, or how an older file was converted
    schema: int = SCHEMA_VERSION

    def figure(self, name: str) -> Figure:
        """A field as a :class:`Figure`, labelled with this record's origin and file."""
        value = getattr(self, name, None)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ResultError(f"{self.kind} has no number {name!r}")
        when = self.date[:10] if self.date else "undated"
        return Figure(
            float(value),
            self.units.get(name, ""),
            self.origin,
            self.source or f"{self.kind}.json",
            f"{name}, {when}",
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for transient in ("origin", "source", "note"):
            data.pop(transient, None)
        return {"kind": self.kind, **data}


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
R = TypeVar("R", bound=Record)


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
    _check(record)
    return record


def _check(record: Record) -> None:
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


def save(record: Record) -> Path:
    """Save a measurement as ``<results_dir>/<kind>.json`` (replacing the previous one)."""
    if not isinstance(record, Record) or record.kind not in KINDS:
        raise ResultError(
            "save() takes a result record, e.g. results.ServingResult(throughput_rps=...)"
        )
    _check(record)
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_file_of(record)}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=2, default=float) + "\n")
    tmp.replace(path)  # a reader never sees half a file
    return path


def _file_of(record: Record) -> str:
    """``generation`` for a CPU run, ``generation_gpu`` for a run on a GPU: a GPU measurement
    is kept beside the CPU one, never over it."""
    on_gpu = getattr(record, "provider", "cpu") not in ("cpu", "CPUExecutionProvider")
    return f"{record.kind}_gpu" if on_gpu else record.kind


# The kit's recorded GPU runs, used when the student has not measured on a GPU.
RECORDED_GPU = {"generation": "generation_gpu_h200", "embedding": "embedding_gpu_h200"}


def load_gpu(kind: str) -> Record:
    """The student's own GPU run of ``kind`` (saved by lesson 03/04 on a GPU) if valid, else
    the kit's recorded H200 run; ``origin`` says which."""
    if kind not in RECORDED_GPU:
        raise ResultError(f"GPU runs are kept for {', '.join(RECORDED_GPU)}, not {kind!r}")
    own = results_dir() / f"{kind}_gpu.json"
    why = ""
    if own.is_file():
        try:
            record = from_dict(json.loads(own.read_text()))
            record.origin, record.source = "measured", str(own)
            return record
        except (ResultError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"Your saved {own} was not used: {exc}. "
    record = load_recorded(kind, RECORDED_GPU[kind])
    record.note = why + f"Using the kit's recorded GPU run ({record.source})."
    return record


def load_recorded(kind: str, name: str | None = None) -> Record:
    """The kit's recorded run of ``kind`` (``name`` picks another file, e.g.
    ``"embedding_gpu_h200"``), labelled ``recorded`` with its repository path."""
    if kind not in KINDS:
        raise ResultError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        run = recorded(name or kind)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            str(exc).replace("No recorded run", f"No recorded {kind} run")
        ) from None
    if run.record is None or run.record.kind != kind:
        what = "no typed record" if run.record is None else f"a {run.record.kind} record"
        raise ResultError(f"{run.file} holds {what}, not {kind}")
    record = run.record
    record.origin, record.source = "recorded", run.file
    return record


def load(kind: str, *, fallback: bool = True) -> Record:
    """The student's saved ``kind`` if it is valid, else the kit's recorded run.

    The returned record's ``origin`` says which (``measured`` or ``recorded``) and ``note``
    says why a saved file was not used. With ``fallback=False`` a missing or bad saved file
    raises instead. A load test (lab 02) has no recorded run: its fallback is lesson 02's
    recorded serving run.
    """
    if kind not in KINDS:
        raise ResultError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    own = results_dir() / f"{kind}.json"
    why = ""
    if own.is_file():
        try:
            record = from_dict(json.loads(own.read_text()))
            if record.kind != kind:
                raise ResultError(f"it holds a {record.kind} record")
            record.origin, record.source = "measured", str(own)
            return record
        except (ResultError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"Your saved {own} was not used: {exc}. "
    if not fallback:
        raise ResultError(why or f"No saved {kind} result in {results_dir()}: run its lesson.")
    recorded_kind = "serving" if kind == "loadtest" else kind
    record = load_recorded(recorded_kind)
    lesson = LESSON_OF.get(kind, "its lesson")
    record.note = (
        why + f"Using the kit's recorded run ({record.source}); run {lesson} to use yours."
    )
    return record


LESSON_OF = {
    "serving": "lesson 02",
    "loadtest": "lab 02",
    "embedding": "lesson 03",
    "generation": "lesson 04",
    "rag": "lesson 06",
    "multistep": "lesson 10",
}


# ------------------------------------------------------------ the kit's recorded runs (one reader)
#
# A recorded file (datasets/benchmarks/<name>.json) stores every figure once:
#   {"record": <the typed record: date, machine, command, headline figures>,
#    "detail": <the rest of the bench's output: tables, sweeps, versions>}
# A file with no record type yet (quality, grading) holds the bench's output as it is, with
# its own name, machine, command and data. :func:`recorded` is the only code in the kit that
# opens these files; :func:`write_recorded` the only code that writes them.

_HEADER = ("name", "machine", "command", "data")  # what a file without a record type needs
# Where the detail keeps the table row a headline figure was taken from: the two must agree.
_SAME_AS: dict[str, tuple[tuple[str, str], ...]] = {
    "embedding": (
        ("sentences_per_s", "data.sentences_per_s_by_engine.{engine}"),
        ("min_cosine_vs_fp32", "quality.vs_cpu_fp32.{engine}.min_cosine"),
    ),
    "generation": (
        ("decode_tokens_per_s", "variants.q4.decode_tok_s"),
        ("ttft_s", "variants.q4.ttft_s"),
    ),
    "rag": (
        ("embed_query_ms", "data.stage_ms.embed_query.p50_ms"),
        ("search_ms", "data.stage_ms.search.p50_ms"),
        ("generate_ms", "data.stage_ms.generate.p50_ms"),
        ("network_ms", "data.stage_ms.network.p50_ms"),
        ("recall_at_5", "data.recall_at_5.{retrieval}"),
    ),
    "serving": (
        ("throughput_rps", "benchmark.batching.loaded.throughput_rps"),
        ("throughput_rps_naive", "benchmark.naive.loaded.throughput_rps"),
        ("p50_ms", "benchmark.batching.loaded.p50_ms"),
        ("p95_ms", "benchmark.batching.loaded.p95_ms"),
        ("p99_ms", "benchmark.batching.loaded.p99_ms"),
        ("rss_mb", "benchmark.batching.server.rss_mb"),
        ("cold_start_s", "benchmark.naive.cold_start.total_s"),
    ),
}


class Recorded(Mapping[str, Any]):
    """One recorded run, as :func:`recorded` read it: ``record`` (the typed record, or None
    for a file with no record type) and ``detail`` (the bench's tables and sweeps).

    It reads like the bench's output, one key per figure: ``run["variants"]`` is a detail
    section, ``run["decode_tokens_per_s"]`` or ``run["machine"]`` the record's field, and
    ``run["file"]`` the file's repository path.
    """

    def __init__(self, name: str, file: str, record: Record | None, detail: dict[str, Any]):
        self.name, self.file, self.record, self.detail = name, file, record, detail
        self._keys = {**(record.to_dict() if record is not None else {}), **detail}
        self._keys["file"] = file

    def __getitem__(self, key: str) -> Any:
        try:
            return self._keys[key]
        except KeyError:
            raise KeyError(
                f"{self.file} has no {key!r}; it holds: {', '.join(self._keys)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Recorded({self.file!r}, record={type(self.record).__name__})"


def recorded_path(name: str) -> Path:
    """Where the recorded file ``name`` lives (``name`` without ``.json``)."""
    if not name or not name.replace("_", "").isalnum() or name != name.lower():
        raise ResultError(
            f"a recorded file is named in lower-case letters, digits and '_', not {name!r}"
        )
    return RECORDED_DIR / f"{name}.json"


def recorded_names(pattern: str = "*") -> list[str]:
    """Names of the recorded files matching ``pattern`` (a glob without ``.json``), sorted."""
    return sorted(p.stem for p in RECORDED_DIR.glob(f"{pattern}.json"))


def recorded(name: str) -> Recorded:
    """The kit's recorded run ``name`` (e.g. ``"generation_gpu_h200"``, ``"quality"``).

    The one reader of ``datasets/benchmarks/``: it checks that the file holds a valid typed
    record, stores each figure once, and that a headline figure agrees with the table row
    it came from; anything else is a :class:`ResultError` saying what is wrong.
    """
    path = recorded_path(name)
    rel = _relative(path)
    if not path.is_file():
        raise FileNotFoundError(f"No recorded run at {rel}: is this a full checkout of the kit?")
    try:
        raw = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResultError(f"{rel} is not valid JSON ({exc})") from None
    return _parse(name, rel, raw)


def _parse(name: str, rel: str, raw: Any) -> Recorded:
    if not isinstance(raw, dict):
        raise ResultError(f"{rel} does not hold a JSON object")
    if "record" not in raw:  # a run with no record type: the bench's output as it is
        missing = [k for k in _HEADER if k not in raw]
        if missing:
            raise ResultError(
                f"{rel} has no {', '.join(missing)}: a recorded run needs {', '.join(_HEADER)}"
            )
        return Recorded(name, rel, None, raw)
    extra = sorted(set(raw) - {"record", "detail"})
    if extra:
        raise ResultError(
            f"{rel} holds {', '.join(extra)} beside its record and detail: a recorded file "
            "stores each figure once, in 'record' (the typed record) or 'detail'"
        )
    try:
        record = from_dict(raw["record"])
    except ResultError as exc:
        raise ResultError(f"{rel}: its record cannot be used: {exc}") from None
    detail = raw.get("detail", {})
    if not isinstance(detail, dict):
        raise ResultError(f"{rel}: its detail is not a JSON object")
    _stored_once(record, detail, rel)
    return Recorded(name, rel, record, detail)


def _stored_once(record: Record, detail: dict[str, Any], rel: str) -> None:
    """Refuse a figure stored twice: a record field repeated in the detail, or a headline
    figure that differs from the table row it was taken from."""
    fields = record.to_dict()
    data = detail.get("data")
    repeats = [(k, "detail") for k in detail if k in fields or k == "measured_at"]
    if isinstance(data, dict):
        repeats += [
            (k, "detail.data")
            for k, v in data.items()
            if k in fields and not isinstance(v, (dict, list))
        ]
    for key, where in repeats:
        section = detail if where == "detail" else data
        mine = fields.get("date" if key == "measured_at" else key)
        theirs = section[key]
        how = "twice" if theirs == mine else "twice, with different values"
        raise ResultError(
            f"{rel} stores {key} {how}: {mine!r} in record and {theirs!r} in {where}; "
            "keep it once, in record"
        )
    for name, path in _SAME_AS.get(record.kind, ()):
        mine = fields.get(name)
        node: Any = detail
        for part in path.format(**{k: v for k, v in fields.items() if isinstance(v, str)}).split(
            "."
        ):
            node = node.get(part) if isinstance(node, dict) else None
        if mine is not None and node is not None and node != mine:
            raise ResultError(
                f"{rel} stores {name} twice, with different values: {mine!r} in record and "
                f"{node!r} in detail.{path}; the record's figure is that row of the table"
            )


def write_recorded(
    name: str, record: Record | None, detail: dict[str, Any], path: Path | None = None
) -> Path:
    """Write a bench's run as the recorded file ``name`` (or to ``path``, e.g. ``--out``),
    checked as :func:`recorded` reads it: a figure stored twice is refused before writing."""
    target = path if path is not None else recorded_path(name)
    rel = _relative(target)
    if record is None:
        content: dict[str, Any] = detail
    else:
        content = {"record": record.to_dict(), "detail": detail}
    _parse(name, rel, json.loads(json.dumps(content, default=float)))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(content, indent=2, default=float) + "\n")
    tmp.replace(target)
    return target


def recorded_section(name: str, section: str) -> tuple[dict[str, Any], str]:
    """One section of a recorded run with no record type (``quality``: ``"quality"``,
    ``"drift"``, ``"isolation"``) and a label saying when it was measured."""
    data = recorded(name)["data"]
    if section not in data:
        raise ResultError(
            f"the recorded {name} run has no {section!r} section; sections: {list(data)}"
        )
    part = data[section]
    when = part.get("measured_at", "undated")[:16].replace("T", " ")
    return part, f"recorded run, {when} UTC, load average {part.get('load_average_1m')}"


# ------------------------------------------------------------ the first API (kept working)


def save_result(name: str, data: dict[str, Any]) -> Path:
    """Save free-form data under ``name`` (the first API; prefer :func:`save` with a record).

    Kept so that older notebooks still run; readers that price results use :func:`load`,
    which does not read these files.
    """
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"result name {name!r} must be letters, digits, '-' or '_'")
    folder = results_dir() / "free"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "measured_at": _now(), "machine": machine(), "data": data}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=float))
    return path


def load_result(name: str) -> tuple[Mapping[str, Any], str]:
    """Free-form data saved by :func:`save_result`, else the kit's recorded run
    (:func:`recorded`, which reads like the bench's output).

    Returns ``(record, source)``, source ``"measured"`` or ``"recorded"``; raises
    FileNotFoundError (naming the lesson to run) when neither exists.
    """
    own = results_dir() / "free" / f"{name}.json"
    if own.is_file():
        return json.loads(own.read_text()), "measured"
    try:
        return recorded(name), "recorded"
    except FileNotFoundError:
        raise FileNotFoundError(
            f"No measurement called {name!r}: run the lesson that measures it, or check "
            f"that {_relative(RECORDED_DIR)} holds the kit's recorded benchmarks."
        ) from None


_RUN_HEADER = ("name", "measured_at", "date", "machine", "command", "provider", "threads")


def detail_of(record: Record, out: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A bench's output without what its typed record holds (date, machine, command and the
    headline figures, at the top or in ``data``) and without ``drop`` (other names the bench
    gives the same figures): the ``detail`` that :func:`write_recorded` stores beside it."""
    fields = record.to_dict()
    skip = set(_RUN_HEADER) | set(drop)
    detail = {
        k: v
        for k, v in out.items()
        if k not in skip and k not in fields and not (k == "benchmark" and isinstance(v, str))
    }
    data = detail.get("data")
    if isinstance(data, dict):
        data = {
            k: v
            for k, v in data.items()
            if k not in drop and not (k in fields and not isinstance(v, (dict, list)))
        }
        if data:
            detail["data"] = data
        else:
            del detail["data"]
    return detail


def vcpus_used(machine_info: dict[str, Any]) -> float:
    """The vCPUs a run used: its threads if written down, else the usable cores."""
    for key in ("threads", "cpus_usable", "usable_cpus", "physical_cores_used", "cpus"):
        value = machine_info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 1.0
