"""ONNX Runtime sessions: explicit provider, threads, spinning and graph optimization.

ONNX Runtime silently runs a model on the CPU when the CUDA provider cannot load its
libraries, and ``ort.get_available_providers()`` still lists CUDA. A lesson that compares GPU
with CPU must not fall for that, so every session made here checks ``session.get_providers()``
after creation and raises (or, for ``"auto"``, warns) with the doctor's reason.

Threads default to the physical cores this process may use, and spinning is off: on a
2-core machine ORT's busy-waiting worker threads starve a web server's event loop.
``spinning="run"`` is the middle way for a loop of many small runs (LLM decoding: some 800
operators a token, each waking the worker thread): the workers spin between the operators of
one run, where a futex wake-up costs more than the work, and sleep as soon as the run ends
(ONNX Runtime's ``session.force_spinning_stop``), so nothing burns a core between runs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "bound_runner",
    "cuda_usable",
    "explain",
    "make_session",
    "physical_cores",
]


PROVIDERS: dict[str, str] = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
OPT_LEVELS = ("disable", "basic", "extended", "all")


class SessionOptionError(ValueError, InfralabError):
    """A session option out of range (threads, spinning, opt_level, provider)."""

    hint = "help(infralab.core.runtime.session_options) lists each option and its values."


class ProviderUnavailable(RuntimeError, InfralabError):
    """A requested execution provider that does not actually run here; says why."""


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads add little to GEMM throughput)."""
    try:
        from infralab.core.env import usable_cores

        usable = usable_cores()
    except Exception:  # env is optional for this helper
        usable = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
    except Exception:
        physical = usable
    return max(1, min(usable, physical))


def explain(provider: str) -> str:
    """The doctor's one-line reason why ``provider`` is (not) usable; generic if unavailable."""
    try:
        from infralab.core.env import explain_provider

        return explain_provider(provider)
    except Exception:  # the doctor is best effort; never hide the original problem
        return (
            f"{PROVIDERS.get(provider, provider)} did not run a session here. Run "
            "`python -m infralab doctor` for the reason (missing CUDA libraries, no GPU, or a "
            "CPU-only onnxruntime build)."
        )


def cuda_usable() -> bool:
    """True when a CUDA session really runs here (cached by the doctor)."""
    import onnxruntime as ort

    if PROVIDERS["cuda"] not in ort.get_available_providers():
        return False
    try:
        from infralab.core.env import usable_providers

        return PROVIDERS["cuda"] in usable_providers()
    except Exception:
        return False


def session_options(
    *, threads: int | None = None, spinning: bool | str = False, opt_level: str = "all"
) -> Any:
    """SessionOptions with deliberate threads, spinning and graph optimization level.

    ``spinning``: ``False`` (workers sleep between operators), ``True`` (they busy-wait, also
    between runs) or ``"run"`` (they busy-wait only while a run is in progress).
    """
    import onnxruntime as ort

    if not (isinstance(spinning, bool) or spinning == "run"):
        raise SessionOptionError(
            f"spinning must be False, True or 'run', not {spinning!r}.",
            hint="Pass the bool False or True (not the text 'False'), or the text 'run'.",
        )
    if opt_level not in OPT_LEVELS:
        raise SessionOptionError(
            f"opt_level must be one of {', '.join(OPT_LEVELS)}, not {opt_level!r}.",
            hint="Pass one of those words as a string, e.g. opt_level='all'.",
        )
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise SessionOptionError(
            f"threads must be a positive whole number or None, not {threads!r}.",
            hint="threads=None uses infralab.core.runtime.physical_cores(); else pass an int >= 1.",
        )
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    opts.intra_op_num_threads = threads or physical_cores()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    if spinning == "run":
        opts.add_session_config_entry("session.force_spinning_stop", "1")
    opts.log_severity_level = 3
    return opts


def _create(
    model: str | bytes, opts: Any, providers: list, disabled_optimizers: Sequence[str] = ()
) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(
        model, opts, providers=providers, disabled_optimizers=list(disabled_optimizers) or None
    )


def make_session(
    model_path: str | Path | bytes,
    provider: str = "cpu",
    *,
    threads: int | None = None,
    spinning: bool | str = False,
    opt_level: str = "all",
    disabled_on_cpu: Sequence[str] = (),
) -> Any:
    """An ``onnxruntime.InferenceSession`` that runs where asked, or says why it cannot.

    ``provider``: ``"cpu"``, ``"cuda"`` (raises :class:`ProviderUnavailable` when CUDA does not
    really run) or ``"auto"`` (CUDA when it truly works, else CPU with a warning saying why).
    ``disabled_on_cpu`` names graph optimizers to skip when the session runs on the CPU (a
    fusion that is a gain on the GPU can be a loss there).
    """
    if provider not in ("cpu", "cuda", "auto"):
        raise SessionOptionError(
            f"provider must be 'cpu', 'cuda' or 'auto', not {provider!r}.",
            hint="Use provider='cpu' here; 'auto' picks the GPU when one really works.",
        )
    if isinstance(model_path, (str, Path)):
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"No ONNX model at {path}. Build the models with `python -m infralab "
                "build-models` (or call infralab.engines.models.encoder.build)."
            )
        model: str | bytes = str(path)
    else:
        model = model_path
    opts = session_options(threads=threads, spinning=spinning, opt_level=opt_level)
    if provider == "cpu":
        return _create(model, opts, [PROVIDERS["cpu"]], disabled_on_cpu)
    try:
        return _cuda_session(model, opts)
    except ProviderUnavailable as exc:
        if provider == "cuda":
            raise
        warnings.warn(f"Using the CPU, not the GPU: {exc}", stacklevel=2)
        opts = session_options(threads=threads, spinning=spinning, opt_level=opt_level)
        return _create(model, opts, [PROVIDERS["cpu"]], disabled_on_cpu)


def _cuda_session(model: str | bytes, opts: Any) -> Any:
    import onnxruntime as ort

    if PROVIDERS["cuda"] not in ort.get_available_providers():
        raise ProviderUnavailable(explain("cuda"))
    try:
        from infralab.core.env import preload_cuda_libraries

        preload_cuda_libraries()
    except Exception:
        pass
    opts.log_severity_level = 4  # the failure is explained below, not as a C++ log line
    try:
        # TF32 off: "fp32 on the GPU" should mean fp32, so its numbers compare with the CPU's
        cuda = (PROVIDERS["cuda"], {"use_tf32": "0"})
        session = _create(model, opts, [cuda, PROVIDERS["cpu"]])
    except Exception as exc:
        text = str(exc)
        if not any(k in text for k in ("CUDA", "cuda", "cudnn", "cublas", "provider", ".so")):
            raise  # a problem with the model itself, not with the provider
        raise ProviderUnavailable(f"{explain('cuda')} (ONNX Runtime said: {text})") from None
    if session.get_providers()[0] != PROVIDERS["cuda"]:
        raise ProviderUnavailable(explain("cuda"))
    return session


def session_provider(session: Any) -> str:
    """``"cuda"`` or ``"cpu"``: what a session really runs on."""
    return "cuda" if session.get_providers()[0] == PROVIDERS["cuda"] else "cpu"


# ---------------------------------------------------------------- IOBinding
def device_of(session: Any) -> str:
    """ORT device name for a session's inputs and outputs: ``"cuda"`` or ``"cpu"``."""
    return session_provider(session)


def to_device(array: np.ndarray, device: str = "cuda", device_id: int = 0) -> Any:
    """Copy a numpy array into an ``OrtValue`` on ``device`` (one host-to-device transfer)."""
    import onnxruntime as ort

    return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), device, device_id)


def run_bound(
    session: Any, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None
) -> list[np.ndarray]:
    """Run once with IOBinding: inputs copied to the session's device, outputs kept there
    and copied back once at the end. On CPU this equals ``session.run``."""
    return bound_runner(session, feeds, output_names)()


def bound_runner(
    session: Any,
    feeds: Mapping[str, np.ndarray],
    output_names: Sequence[str] | None = None,
    *,
    copy_back: bool = True,
) -> Callable[[], list[np.ndarray] | None]:
    """Bind inputs once (already on the device) and return a function that just runs.

    Timing that function measures compute without host-to-device copies of the inputs;
    ``copy_back=False`` also leaves outputs on the device, which isolates the kernels from
    transfers. Compare with timing ``session.run`` to see what the transfers cost.
    """
    device = device_of(session)
    names = list(output_names or [o.name for o in session.get_outputs()])
    binding = session.io_binding()
    keep = []  # OrtValues must outlive the binding
    for name, array in feeds.items():
        value = to_device(array, device)
        keep.append(value)
        binding.bind_ortvalue_input(name, value)
    for name in names:
        binding.bind_output(name, device)

    def run() -> list[np.ndarray] | None:
        session.run_with_iobinding(binding)
        if copy_back:
            return binding.copy_outputs_to_cpu()
        binding.synchronize_outputs()
        return None

    run.binding = binding  # type: ignore[attr-defined]
    run.inputs = keep  # type: ignore[attr-defined]
    return run
