"""Machine facts: what this machine is, and which ONNX Runtime providers truly work here.

`onnxruntime.get_available_providers()` lists what the *build* contains, not what can run:
the GPU wheel lists CUDA on a laptop without a GPU. So this module creates a tiny session on
each provider, reads `session.get_providers()` (the only honest answer), and for a provider
that fell back it captures ONNX Runtime's own log to name the library that failed to load.

These are the facts the runtime needs, so the module sits at the bottom of the layers.
The doctor that reports them with the built models, orphan servers and Ray's footprint is
`infralab.tooling.doctor`, in a layer above the engines it asks.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata as md
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "explain_provider",
    "memory_limit_bytes",
]


ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-qnn",
    "onnxruntime-silicon",
)

# Providers a course lesson can use; others are reported but not probed.
PROBED_PROVIDERS = (
    "CUDAExecutionProvider",
    "TensorrtExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)


# ---------------------------------------------------------------- platform and hardware
def detect_platform(environ: dict[str, str] | None = None) -> str:
    """'colab', 'binder' or 'local': decides set-up steps and what limits to expect."""
    env = os.environ if environ is None else environ
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return "colab"
    if "BINDER_LAUNCH_HOST" in env or "BINDER_REPO_URL" in env or "BINDER_SERVICE_HOST" in env:
        return "binder"
    return "local"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def usable_cores() -> int:
    """Cores this process may use: affinity and a cgroup CPU quota (Binder, containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = max(1, min(cores, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def memory_limit_bytes() -> tuple[int, str]:
    """Usable RAM and where the limit comes from (a cgroup limit beats the machine's RAM)."""
    import psutil

    total = psutil.virtual_memory().total
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < total:
            return int(raw), "container limit"
    return total, "machine"


def gpu_info() -> list[dict[str, str]]:
    """NVIDIA GPUs as nvidia-smi reports them; empty when there is no driver or no GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    fields = "name,driver_version,memory.total,compute_cap"
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4:
            gpus.append(
                dict(zip(("name", "driver", "memory", "compute_capability"), parts, strict=True))
            )
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", _run_text([exe]))
    for gpu in gpus:
        gpu["driver_cuda"] = cuda.group(1) if cuda else "?"
    return gpus


def _run_text(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=15).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ---------------------------------------------------------------- ONNX Runtime
def ort_distributions() -> dict[str, str]:
    """Installed ONNX Runtime wheels: more than one breaks the GPU provider."""
    found = {}
    for name in ORT_DISTRIBUTIONS:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return found


def _tiny_model_bytes() -> bytes:
    """A one-node float model (Y = X + X), valid on every provider."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Add", ["X", "X"], ["Y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # explicit: onnx >= 1.23 would write IR 14, which ORT 1.31 refuses
    return model.SerializeToString()


@contextlib.contextmanager
def _capture_native_stderr():
    """Capture what native code and ORT's Python layer print while probing a provider.

    ORT logs library-load failures on fd 2 and prints its fallback notice on stdout; both
    are evidence for the doctor and noise for the student, so both go into one buffer.
    """
    import io

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    py_out = io.StringIO()
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        for fd in saved:
            os.dup2(tmp.fileno(), fd)
        captured: dict[str, str] = {}
        try:
            with contextlib.redirect_stdout(py_out), contextlib.redirect_stderr(py_out):
                yield captured
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            tmp.seek(0)
            captured["text"] = tmp.read().decode(errors="replace") + py_out.getvalue()


_LIB_PATTERNS = (
    re.compile(r"(lib[\w.+-]+\.so(?:\.[\d.]+)?): cannot open shared object file"),
    re.compile(r"([\w.+-]+\.dll)"),
    re.compile(r"Failed to load library (\S+)"),
)


def _failing_library(log: str) -> str | None:
    for pattern in _LIB_PATTERNS:
        match = pattern.search(log)
        if match:
            return match.group(1).strip("'\"")
    return None


def probe_provider(name: str) -> dict[str, Any]:
    """Create a session asking for ``name`` alone and report what actually ran."""
    import onnxruntime as ort

    result: dict[str, Any] = {"provider": name, "usable": False, "error": "", "log": ""}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    with _capture_native_stderr() as captured:
        try:
            session = ort.InferenceSession(_tiny_model_bytes(), options, providers=[name])
            used = session.get_providers()
            result["session_providers"] = used
            result["usable"] = bool(used) and used[0] == name
        except Exception as exc:  # ORT raises plain RuntimeError/Fail for provider problems
            result["error"] = f"{type(exc).__name__}: {exc}".strip()
    result["log"] = captured.get("text", "")
    result["failing_library"] = _failing_library(result["log"] + result["error"])
    return result


def _cuda_major_for_ort(version: str) -> int:
    """CUDA major version the PyPI onnxruntime-gpu wheel of ``version`` was built for."""
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return 12
    if (major, minor) >= (1, 24):
        return 13
    return 12 if (major, minor) >= (1, 19) else 11


def cuda_remedy(ort_version: str, gpus: list[dict[str, str]], library: str | None) -> str:
    """What to do about an unusable CUDA provider, given what is (not) on the machine."""
    need = _cuda_major_for_ort(ort_version)
    if not gpus:
        return (
            "This machine has no NVIDIA GPU (nvidia-smi is absent or sees none), so the CUDA "
            "provider cannot run here and the kit uses the CPU. On Colab choose Runtime > "
            "Change runtime type > GPU; the lessons show recorded GPU results meanwhile."
        )
    driver_cuda = gpus[0].get("driver_cuda", "?")
    try:
        driver_major = int(driver_cuda.split(".")[0])
    except ValueError:
        driver_major = 0
    if driver_major and driver_major < need:
        return (
            f"onnxruntime-gpu {ort_version} needs CUDA {need}, but the driver supports CUDA "
            f"{driver_cuda} at most. Install an onnxruntime-gpu built for CUDA {driver_major} "
            f"(for CUDA 12: `pip install 'onnxruntime-gpu>=1.20,<1.24'`), or update the driver."
        )
    lib = f" ({library} is missing)" if library else ""
    return (
        f"The CUDA {need} / cuDNN 9 libraries that onnxruntime-gpu {ort_version} needs are not "
        f"installed{lib}. Install them as pip packages with "
        f"`pip install 'onnxruntime-gpu[cuda,cudnn]=={ort_version}'` and restart the kernel "
        "(the kit preloads them), or install the CUDA toolkit and cuDNN system-wide."
    )


def preload_cuda_libraries() -> bool:
    """Load CUDA/cuDNN from pip's nvidia-* packages when ORT can (ORT >= 1.21)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return False
    with _capture_native_stderr():
        try:
            preload()
        except Exception:
            return False
    return True


@functools.lru_cache(maxsize=1)
def provider_report() -> tuple[dict[str, Any], ...]:
    """Providers listed by the build versus providers that work, with reasons (cached)."""
    import onnxruntime as ort

    listed = ort.get_available_providers()
    if "CUDAExecutionProvider" in listed:
        preload_cuda_libraries()
    gpus = gpu_info()
    rows = []
    for name in listed:
        if name not in PROBED_PROVIDERS:
            rows.append({"provider": name, "listed": True, "usable": None, "reason": "not probed"})
            continue
        probe = probe_provider(name)
        if probe["usable"]:
            reason = "a test session ran on it"
        else:
            lib = probe["failing_library"]
            what = f"{lib} failed to load" if lib else (probe["error"] or "fell back to CPU")
            reason = what
            if name in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
                reason += ". " + cuda_remedy(ort.__version__, gpus, lib)
        rows.append(
            {
                "provider": name,
                "listed": True,
                "usable": probe["usable"],
                "reason": reason,
                "failing_library": probe["failing_library"],
            }
        )
    return tuple(rows)


def usable_providers() -> list[str]:
    """Providers on which a session really runs here, best first."""
    return [row["provider"] for row in provider_report() if row["usable"]]


def explain_provider(name: str) -> str:
    """One sentence on whether ``name`` works here and, if not, why and what to do."""
    short = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}.get(name, name)
    for row in provider_report():
        if row["provider"] == short:
            state = "usable" if row["usable"] else "not usable"
            return f"{short} is {state}: {row['reason']}"
    import onnxruntime as ort

    dists = ", ".join(f"{k} {v}" for k, v in ort_distributions().items()) or "none"
    extra = ""
    if short == "CUDAExecutionProvider":
        extra = " " + cuda_remedy(ort.__version__, gpu_info(), None)
        if "onnxruntime-gpu" not in ort_distributions():
            extra = (
                " This ONNX Runtime build has no CUDA support: install onnxruntime-gpu instead "
                "of onnxruntime (never both)." + extra
            )
    return f"{short} is not in this ONNX Runtime build (installed: {dists}).{extra}"
