"""The kit's recorded runs (``datasets/benchmarks/<name>.json``): one reader, one writer.

A recorded file stores every figure once:
  ``{"record": <the typed record: date, machine, command, headline figures>,
  "detail": <the rest of the bench's output: tables, sweeps, versions>}``.
A file with no record type yet (quality, grading) holds the bench's output as it is, with
its own name, machine, command and data. :func:`recorded` is the only code in the kit that
opens these files; :func:`write_recorded` the only code that writes them, and a file that
repeats a figure is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from infralab.core.paths import BENCHMARKS_DIR, REPO_ROOT
from infralab.core.results.record_types import from_dict
from infralab.core.results.records import (
    Record,
    RecordedKeyError,
    RecordedRunMissing,
    ResultError,
)

RECORDED_DIR = BENCHMARKS_DIR


def _relative(path: Path) -> str:
    """A recorded file as a repository path (what a student's clone has), else as given."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


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
            raise RecordedKeyError(
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
        raise RecordedRunMissing(f"No recorded run at {rel}: is this a full checkout of the kit?")
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


def recorded_folder() -> str:
    """The recorded runs' folder as a repository path (for a message naming it)."""
    return _relative(RECORDED_DIR)


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
