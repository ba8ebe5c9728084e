"""The kit's recorded GPU runs of ``python -m infralab bench embed --provider cuda``: what
lesson and lab 03 show, with where and when it was measured, when no GPU is usable here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from infralab.core.results.recorded_runs import Recorded, recorded, recorded_names


def recorded_gpu_runs(kind: str = "embedding") -> list[Recorded]:
    """Real GPU runs of ``kind``'s bench shipped with the kit (``<kind>_gpu_*``), read by
    :func:`infralab.core.results.recorded`, the one reader of recorded runs."""
    return [recorded(name) for name in recorded_names(f"{kind}_gpu_*")]


def latest_gpu_run(kind: str = "embedding") -> Recorded | None:
    """The most recent recorded GPU run, or None (then a lesson says so, and invents nothing)."""
    runs = recorded_gpu_runs(kind)
    return max(runs, key=lambda r: str(r["date"])) if runs else None


def provenance(run: Mapping[str, Any]) -> str:
    """One line saying where and when a recorded run was measured."""
    m = run.get("machine", {})
    gpus = m.get("gpus") or []
    gpu = ", ".join(
        f"{g.get('name', '?')} (driver {g.get('driver', '?')})" for g in gpus if isinstance(g, dict)
    )
    ver = run.get("versions", {})
    ort = ver.get("onnxruntime-gpu") or ver.get("onnxruntime", "?")
    return (
        f"Recorded elsewhere: {gpu or 'no GPU'}; CPU {m.get('cpu', '?')}; ONNX Runtime {ort}; "
        f"measured {run.get('date', '?')} ({Path(run.get('file', 'file')).name})."
    )
