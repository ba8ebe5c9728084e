"""Measurements that one lesson saves and a later one prices ("measure, then price").

A lesson saves what the student measured as a small JSON file with the machine and the
date; a later lesson loads it, or falls back to the kit's recorded benchmark in
datasets/benchmarks/ and says so. Nothing here is ever a made-up constant.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS_ENV = "INFRALAB_RESULTS"
REPO_ROOT = Path(__file__).resolve().parent.parent
RECORDED_DIR = REPO_ROOT / "datasets" / "benchmarks"


def results_dir() -> Path:
    """The student's own measurements; ``INFRALAB_RESULTS`` moves it."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    from infralab.assets import cache_dir

    return cache_dir() / "results"


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def save_result(name: str, data: dict[str, Any]) -> Path:
    """Save a measurement under ``name`` (e.g. ``"serving"``), stamped with machine and time."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"result name {name!r} must be letters, digits, '-' or '_'")
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "data": data,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=float))
    return path


def load_result(name: str) -> tuple[dict[str, Any], str]:
    """The student's measurement if there is one, else the kit's recorded one.

    Returns ``(record, source)`` where source is ``"measured"`` or ``"recorded"``; raises
    FileNotFoundError (naming the lesson to run) when neither exists.
    """
    own = results_dir() / f"{name}.json"
    if own.is_file():
        return json.loads(own.read_text()), "measured"
    recorded = RECORDED_DIR / f"{name}.json"
    if recorded.is_file():
        return json.loads(recorded.read_text()), "recorded"
    raise FileNotFoundError(
        f"No measurement called {name!r}: run the lesson that measures it, or check "
        f"that {RECORDED_DIR} holds the kit's recorded benchmarks."
    )
