"""Running one submission: its cells in a sandboxed kernel, its graded checks in the grader.

The notebook runs cell by cell in its own kernel inside a sandbox
(``infralab.tooling.grading.sandbox``). Right after the student's cell that calls a graded
check, the check runs here, in the grader's own process, on arguments that come out of the
kernel as plain data or proxies (``infralab.tooling.grading.remote``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infralab.tooling.notebooks import REPO_ROOT
from infralab.tooling.submissions import (
    FREE_TEXT_VARIABLES,
    CheckCall,
    Submission,
    check_calls,
)


def _check_row(name: str, points: int, run: Any) -> dict[str, Any]:
    """Run one check in the grader; a row of points, message and hint."""
    from infralab.tooling.checks import CheckFailed
    from infralab.tooling.grading.remote import KernelGone, RemoteError

    row: dict[str, Any] = {"name": name, "points": points, "earned": 0, "hint": ""}
    try:
        row["message"] = str(run())
        row["earned"] = points
    except NotImplementedError:
        row["message"] = "not done yet: a placeholder still raises NotImplementedError"
        row["hint"] = "Replace `raise NotImplementedError` with your code."
    except CheckFailed as exc:
        row["message"], row["hint"] = exc.problem, exc.hint
    except NameError as exc:
        row["message"] = f"not attempted: {exc}"
        row["hint"] = "Write the exercise and run every cell above it in order."
    except KernelGone as exc:
        row["message"] = f"not graded: {exc}"
        row["hint"] = "Run the notebook top to bottom in a fresh kernel (Restart and Run All)."
    except RemoteError as exc:
        row["message"] = f"your code raised {exc}"
        row["hint"] = "Run the notebook top to bottom in a fresh kernel; read the error."
    except Exception as exc:  # a check's own failure on odd data is still the student's zero
        row["message"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        row["hint"] = "Run the notebook top to bottom in a fresh kernel; read the error."
    return row


def _confined(value: Any, scratch: Path) -> Any:
    """A path from the kernel is only read inside the scratch folder (never the grader's files)."""
    if isinstance(value, Path) or (isinstance(value, str) and value.startswith(("/", "~"))):
        path = Path(value).expanduser()
        path = path if path.is_absolute() else scratch / "work" / path
        try:
            path.resolve().relative_to(scratch.resolve())
        except (ValueError, OSError):
            return scratch / "work" / "outside-the-sandbox"
        return path if isinstance(value, Path) else str(path)
    return value


def _arguments(kernel: Any, call: CheckCall, scratch: Path) -> tuple[list[Any], dict[str, Any]]:
    args = [_confined(kernel.evaluate(expr), scratch) for expr in call.args]
    kwargs = {k: _confined(kernel.evaluate(expr), scratch) for k, expr in call.kwargs}
    return args, kwargs


class StudentNamespace:
    """The student's variables, copied out on demand (what hidden checks receive)."""

    def __init__(self, kernel: Any) -> None:
        self._kernel = kernel

    def __getitem__(self, name: str) -> Any:
        # builtin on purpose (both): the mapping protocol; .get() and `in` rely on KeyError
        if not name.isidentifier():
            raise KeyError(name)
        try:
            return self._kernel.evaluate(name)
        except NameError:
            raise KeyError(name) from None  # builtin on purpose: the mapping protocol

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, self) is not self


def _hidden_checks(extra: list[Path]) -> list[tuple[str, int, Any]]:
    """The instructor's hidden checks (``check_*`` with points), loaded in the grader only."""
    import runpy

    found = []
    for path in extra:
        namespace = runpy.run_path(str(path), run_name="extra_checks")
        for name, fn in namespace.items():
            if name.startswith("check_") and callable(fn) and hasattr(fn, "points"):
                found.append((f"extra:{name}", int(fn.points), fn))
    return found


def _grading_env(scratch: Path) -> dict[str, str]:
    from infralab.core.assets import CACHE_ENV, cache_dir
    from infralab.core.results import RESULTS_ENV

    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "OMP_NUM_THREADS", "INFRALAB_ASSETS_DIR",
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # fmt: skip
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        HOME=str(scratch / "home"),
        TMPDIR=str(scratch / "tmp"),
        IPYTHONDIR=str(scratch / "home" / ".ipython"),
        MPLCONFIGDIR=str(scratch / "home" / ".mpl"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        INFRALAB_GRADING="1",
        **{CACHE_ENV: str(cache_dir()), RESULTS_ENV: str(scratch / "results")},
    )
    return env


def run_submission(
    sub: Submission,
    nb: Any,
    extra: list[Path],
    *,
    timeout_s: float,
    memory_mb: float,
    hide: list[Path],
    use_bwrap: bool,
    root: Path = REPO_ROOT,
) -> list[dict[str, Any]]:
    """Run one notebook in its sandbox, each graded check right after the cell that calls it."""
    from infralab.tooling.grading.sandbox import Limits, sandboxed_kernel

    module = importlib.import_module(f"infralab.tooling.checks.lab{sub.lab}")
    calls = check_calls(sub.lab, root)
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="infralab-grade-"))
    try:
        (scratch / "tmp").mkdir()
        (scratch / "results").mkdir()
        with sandboxed_kernel(
            root=root,
            scratch=scratch,
            limits=Limits(timeout_s, memory_mb),
            hide=hide,
            use_bwrap=use_bwrap,
            env=_grading_env(scratch),
        ) as (km, client, watch):
            import nbformat

            from infralab.tooling.grading.remote import KernelSession

            nbformat.write(nb, str(scratch / "work" / sub.path.name))
            kernel = KernelSession(client, km.is_alive, km.interrupt_kernel)
            kernel.deadline = t0 + timeout_s
            grade_now = _check_runner(module, kernel, scratch, rows)
            pending = _run_cells(nb, kernel, list(calls), grade_now)
            for call in pending:  # checks the student never called: graded at the end
                if km.is_alive() and kernel.remaining() > 0:
                    grade_now(call)
            if km.is_alive() and kernel.remaining() > 0:
                _hidden_checks_and_free_text(sub, kernel, extra, rows)
            sub.status = watch.reason or ("kernel died" if not km.is_alive() else "ok")
            if sub.status == "ok" and kernel.remaining() <= 0:
                sub.status = "time limit"
    finally:
        sub.seconds = time.monotonic() - t0
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def _check_runner(
    module: Any, kernel: Any, scratch: Path, rows: list[dict[str, Any]]
) -> Callable[[CheckCall], None]:
    """A function that grades one check call in the grader, on values copied out of the kernel."""
    from infralab.tooling.checks import grading_mode

    def grade_now(call: CheckCall) -> None:
        fn = getattr(module, call.name)

        def run() -> Any:
            if not kernel.install():
                from infralab.tooling.grading.remote import KernelGone

                raise KernelGone("KernelDied", "the kernel stopped before this check")
            args, kwargs = _arguments(kernel, call, scratch)
            with grading_mode():
                return fn(*args, **kwargs)

        rows.append(_check_row(call.name, int(fn.points), run))

    return grade_now


def _run_cells(
    nb: Any, kernel: Any, pending: list[CheckCall], grade_now: Callable[[CheckCall], None]
) -> list[CheckCall]:
    """Run the code cells in order, grading each check after the cell that calls it; the
    checks never called are left in ``pending``, which is returned."""
    for cell in nb.cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        status, _ = kernel.execute(cell.source, timeout=kernel.remaining())
        if status in ("timeout", "dead"):
            break
        for call in list(pending):
            if re.search(rf"\b{call.name}\s*\(", cell.source):
                grade_now(call)
                pending.remove(call)
    return pending


def _hidden_checks_and_free_text(
    sub: Submission, kernel: Any, extra: list[Path], rows: list[dict[str, Any]]
) -> None:
    """The instructor's hidden checks on the student's namespace, then the free-text answers."""
    namespace = StudentNamespace(kernel)
    for name, points, fn in _hidden_checks(extra):
        rows.append(_check_row(name, points, lambda f=fn: f(namespace)))
    if kernel.install():
        sub.free_text.update(_free_text_values(kernel, sub.lab))


def _free_text_values(kernel: Any, lab: str) -> dict[str, str]:
    out = {}
    for name in FREE_TEXT_VARIABLES.get(lab, {}):
        out[name] = ""  # every student gets every rubric row, answered or not
        with contextlib.suppress(Exception):
            value = kernel.evaluate(name)
            if isinstance(value, str):
                out[name] = value
    return out
