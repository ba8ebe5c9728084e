"""The student's own measurements: :func:`save` one as a typed record, :func:`load` it back
in a later lesson (falling back to the kit's recorded run), and the first, free-form API
(:func:`save_result`, :func:`load_result`), kept so that older notebooks still run.

A saved file from an older schema, or one edited by hand into something invalid, is not
trusted: :func:`load` says why in ``record.note`` and falls back to the recorded run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infralab.core.results.record_types import KINDS, check_values, from_dict
from infralab.core.results.recorded_runs import recorded, recorded_folder
from infralab.core.results.records import (
    Record,
    RecordedRunMissing,
    ResultError,
    ResultNameError,
    machine,
    utc_now,
)

RESULTS_ENV = "INFRALAB_RESULTS"


def results_dir() -> Path:
    """The student's own measurements; ``INFRALAB_RESULTS`` moves it."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    from infralab.core.assets import cache_dir

    return cache_dir() / "results"


def save(record: Record) -> Path:
    """Save a measurement as ``<results_dir>/<kind>.json`` (replacing the previous one)."""
    if not isinstance(record, Record) or record.kind not in KINDS:
        raise ResultError(
            "save() takes a result record, e.g. results.ServingResult(throughput_rps=...)"
        )
    check_values(record)
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
        raise RecordedRunMissing(
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


def save_result(name: str, data: dict[str, Any]) -> Path:
    """Save free-form data under ``name`` (the first API; prefer :func:`save` with a record).

    Kept so that older notebooks still run; readers that price results use :func:`load`,
    which does not read these files.
    """
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ResultNameError(f"result name {name!r} must be letters, digits, '-' or '_'")
    folder = results_dir() / "free"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "measured_at": utc_now(), "machine": machine(), "data": data}
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
        raise RecordedRunMissing(
            f"No measurement called {name!r}: run the lesson that measures it, or check "
            f"that {recorded_folder()} holds the kit's recorded benchmarks."
        ) from None
