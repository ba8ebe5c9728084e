"""The doctor: everything the course needs to know about this machine, in one report.

The machine facts (platform, cores, memory, GPUs, which ONNX Runtime providers truly run)
come from `infralab.core.env`, which sits at the bottom of the layers because the runtime needs
them. The doctor adds what only the layers above can say: the built models checked against
their manifests (`models.manifest`), the kit's servers left by a dead kernel
(`serving.launcher`) and whether lesson 08's Ray cluster fits (`fleet.cluster`). It sits with
the course tooling so that every import points down (CONTRIBUTING.md "Layers"). Those three
imports stay inside their functions: the doctor reports a broken engine, it never stops on one.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from infralab.core import env

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "doctor",
    "doctor_table",
]


def doctor(probe_providers: bool = True) -> dict[str, Any]:
    """Everything the course needs to know about this machine, as a dict."""
    import psutil

    from infralab.core import assets

    mem, mem_source = env.memory_limit_bytes()
    flags = env.cpu_flags()
    report: dict[str, Any] = {
        "platform": env.detect_platform(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": env.cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_usable": env.usable_cores(),
        "cpu_vector_isa": ", ".join(
            f for f in ("avx512f", "avx512_vnni", "avx2", "fma", "avx_vnni", "neon") if f in flags
        )
        or "unknown",
        "ram_gb": round(mem / 2**30, 1),
        "ram_source": mem_source,
        "gpus": env.gpu_info(),
        "warnings": [],
    }
    try:
        import onnxruntime as ort

        report["onnxruntime"] = ort.__version__
        report["onnxruntime_packages"] = env.ort_distributions()
        report["providers_listed"] = ort.get_available_providers()
        if len(report["onnxruntime_packages"]) > 1:
            report["warnings"].append(
                "More than one ONNX Runtime package is installed ("
                + ", ".join(report["onnxruntime_packages"])
                + "): they overwrite each other's files and the GPU provider breaks. "
                "Uninstall all of them, then install exactly one."
            )
        if probe_providers:
            report["providers"] = list(env.provider_report())
            report["providers_usable"] = env.usable_providers()
            report["provider_in_use"] = (
                report["providers_usable"][0] if report["providers_usable"] else None
            )
    except ImportError as exc:
        report["onnxruntime"] = None
        report["warnings"].append(f"ONNX Runtime cannot be imported: {exc}. Run `make setup`.")
    report["cache_dir"] = str(assets.cache_dir())
    report["assets"] = [assets.status(key) for key in assets.ASSETS]
    report["built_models"] = built_models_report(report["warnings"])
    report["orphans_stopped"] = _sweep_orphans(report["warnings"])
    report["lesson_08_ray"] = _ray_footprint(report["warnings"])
    if report["ram_gb"] < 2.5:
        report["warnings"].append(
            f"Only {report['ram_gb']} GB of RAM: run one lesson at a time and shut down "
            "kernels you no longer use (Binder kills a kernel above its limit)."
        )
    return report


def _ray_footprint(warnings: list[str]) -> str:
    """Whether lesson 08's Ray cluster (and Ray Serve) fits this machine's memory limit.

    Said before the student starts, because a Ray start that runs out of memory takes the
    kernel with it.
    """
    from infralab.engines.fleet import cluster

    fp = cluster.expected_footprint()
    gone = cluster.sweep_orphan_sessions()
    if gone:
        warnings.append(f"Stopped {gone} Ray process(es) left by a kernel that had died.")
    if not cluster.ray_available():
        warnings.append("Ray is not installed: lesson 08's fleet sections will be skipped.")
        return "Ray not installed (pip install -e '.[fleet]')"
    if not fp.fits_with_serve:
        warnings.append(fp.message)
    return fp.message


def built_models_report(warnings: list[str]) -> list[dict[str, Any]]:
    """Each built model checked against its manifest (hashing only files that changed)."""
    try:
        from infralab.engines.models import manifest

        rows = manifest.check_built()
    except Exception as exc:  # the doctor reports; it never stops on a broken module
        warnings.append(f"The built models could not be checked: {exc}")
        return []
    damaged = [f"{r['model']} {r['variant']}" for r in rows if r["state"] == "damaged"]
    stale = [f"{r['model']} {r['variant']}" for r in rows if r["state"] == "stale"]
    if damaged:
        warnings.append(
            f"Built model(s) {', '.join(damaged)} do not match their manifest (changed or "
            f"truncated on disk): run `{manifest.FIX}` to rebuild them."
        )
    if stale:
        warnings.append(
            f"Built model(s) {', '.join(stale)} have no manifest or one from another kit "
            "version: they are rebuilt on first use, or now with `python -m infralab "
            "build-models`."
        )
    return rows


def _sweep_orphans(warnings: list[str]) -> list[dict[str, Any]]:
    """Stop the kit's servers whose kernel died (they would hold a port and memory)."""
    try:
        from infralab.engines.serving.launcher import sweep_orphans

        return sweep_orphans()
    except Exception as exc:
        warnings.append(f"Leftover kit servers could not be checked: {exc}")
        return []


def format_report(report: dict[str, Any]) -> str:
    """The doctor's report as text for the terminal."""
    lines = ["infralab doctor", "==============="]
    for key, value in doctor_rows(report):
        lines.append(f"{key:<22} {value}")
    for warning in report.get("warnings", []):
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines)


def doctor_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(item, finding) pairs shared by the terminal text and the notebook table."""
    rows = [
        ("platform", report["platform"]),
        ("os", report["os"]),
        ("python", report["python"]),
        ("cpu", report["cpu"]),
        (
            "cpu cores",
            f"{report['cpu_cores_usable']} usable ({report['cpu_cores_physical']} physical, "
            f"{report['cpu_cores_logical']} logical)",
        ),
        ("cpu vector units", report["cpu_vector_isa"]),
        ("ram", f"{report['ram_gb']} GB ({report['ram_source']})"),
    ]
    rows += _gpu_rows(report)
    rows += _onnxruntime_rows(report)
    rows.append(("cache", report["cache_dir"]))
    rows += _asset_rows(report)
    rows += _built_model_rows(report)
    rows += _housekeeping_rows(report)
    return rows


def _gpu_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """One row per GPU nvidia-smi lists, or one saying none was found."""
    rows: list[tuple[str, str]] = []
    gpus = report.get("gpus") or []
    if gpus:
        for i, gpu in enumerate(gpus):
            rows.append(
                (
                    f"gpu {i}",
                    f"{gpu['name']}, {gpu['memory']}, driver {gpu['driver']} "
                    f"(CUDA {gpu.get('driver_cuda', '?')})",
                )
            )
    else:
        rows.append(("gpu", "none found (no nvidia-smi or no NVIDIA GPU)"))
    return rows


def _onnxruntime_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The ONNX Runtime build, its providers and whether each one works here."""
    rows: list[tuple[str, str]] = []
    if report.get("onnxruntime"):
        pkgs = ", ".join(f"{k} {v}" for k, v in report.get("onnxruntime_packages", {}).items())
        rows.append(("onnxruntime", f"{report['onnxruntime']} ({pkgs})"))
        rows.append(("providers listed", ", ".join(report.get("providers_listed", []))))
        for row in report.get("providers", []):
            if row["usable"] is None:
                continue
            mark = "works" if row["usable"] else "NOT usable"
            rows.append((f"  {row['provider']}", f"{mark}: {row['reason']}"))
        if "provider_in_use" in report:
            rows.append(("provider in use", str(report["provider_in_use"])))
    else:
        rows.append(("onnxruntime", "not importable"))
    return rows


def _asset_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Each pinned asset: verified or not fetched yet, with its size and source."""
    rows: list[tuple[str, str]] = []
    for asset in report["assets"]:
        state = "verified" if asset["verified"] else "not fetched yet"
        rows.append(
            (
                f"asset {asset['asset']}",
                f"{state} ({asset['package']}, {asset['size_mb']} MB, {asset['source']})",
            )
        )
    return rows


def _built_model_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The built models checked against their manifests; a row per damaged one."""
    rows: list[tuple[str, str]] = []
    built = report.get("built_models")
    if built is not None:
        counts = {
            state: sum(r["state"] == state for r in built) for state in ("ok", "damaged", "stale")
        }
        if not built:
            rows.append(("built models", "none yet (python -m infralab build-models)"))
        else:
            text = f"{counts['ok']} verified against their manifest"
            if counts["damaged"]:
                text += f", {counts['damaged']} DAMAGED"
            if counts["stale"]:
                text += f", {counts['stale']} without a current manifest"
            rows.append(("built models", text))
            for r in built:  # stale ones are named in the warning; damaged ones get a row
                if r["state"] == "damaged":
                    rows.append((f"  {r['model']} {r['variant']}", f"{r['state']}: {r['reason']}"))
    return rows


def _housekeeping_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Lesson 08's Ray footprint and the orphan servers the doctor stopped."""
    rows: list[tuple[str, str]] = []
    if "lesson_08_ray" in report:
        rows.append(("lesson 08 (Ray)", report["lesson_08_ray"]))
    if "orphans_stopped" in report:
        gone = report["orphans_stopped"]
        rows.append(
            (
                "orphan servers",
                "none"
                if not gone
                else "stopped "
                + ", ".join(f"{o['app']} pid {o['pid']} port {o['port']}" for o in gone)
                + " (their kernel had died)",
            )
        )
    return rows


def doctor_table(report: dict[str, Any] | None = None):
    """The doctor's report as a pandas DataFrame, for notebook display."""
    import pandas as pd

    report = doctor() if report is None else report
    rows = doctor_rows(report) + [("warning", w) for w in report.get("warnings", [])]
    return pd.DataFrame(rows, columns=["item", "finding"]).set_index("item")
