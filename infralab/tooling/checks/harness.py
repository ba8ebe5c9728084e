"""The checks' harness: a pass or a failure with a hint, and calling a student's code safely.

:func:`check` passes with a short line or raises :class:`CheckFailed`, whose traceback IPython
replaces by the message and the hint alone. The rest reach a student's objects whether they
live here or, in the grader, behind a proxy into the student's kernel (:func:`is_kind`,
:func:`run_beside`, :func:`defined_in`), and :func:`run_student_function` turns the
placeholder and crashes into advice. :func:`grading_mode` marks a run by the grader.
"""

from __future__ import annotations

import contextlib
import contextvars
import html
from collections.abc import Callable
from typing import Any

from infralab.core.errors import InfralabError

# True while the grader runs a check in its own process on data copied out of a student's
# kernel: random inputs are then drawn afresh (a notebook cannot learn them in advance).
_GRADING = contextvars.ContextVar("infralab_grading", default=False)


@contextlib.contextmanager
def grading_mode() -> Any:
    token = _GRADING.set(True)
    try:
        yield
    finally:
        _GRADING.reset(token)


def _fatal(exc: BaseException) -> bool:
    """The student's kernel is gone: no check can go on, so the error is not advice."""
    return bool(getattr(exc, "fatal", False))


class CheckFailed(AssertionError, InfralabError):
    """A check that did not pass; carries a hint for the student."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem if not hint else f"{problem}\nHint: {hint}")
        self.problem = problem
        self.hint = hint

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        lines = [f"\x1b[31m✗ Not yet: {self.problem}\x1b[0m"]
        if self.hint:
            lines.append(f"\x1b[33m  Hint: {self.hint}\x1b[0m")
        return lines


class CheckPassed(str):
    """The confirmation a passing check returns; renders green in a notebook."""

    def _repr_html_(self) -> str:
        return f'<span style="color:#157f3b">✓ {html.escape(self)}</span>'

    def __repr__(self) -> str:
        return f"✓ {self}"


def check(condition: bool, *, ok: str, problem: str, hint: str = "") -> CheckPassed:
    """Pass with ``ok`` when ``condition`` holds, else raise :class:`CheckFailed`."""
    if not condition:
        raise CheckFailed(problem, hint)
    return CheckPassed(ok)


def check_close(
    actual: Any, expected: float, *, rel: float = 0.05, name: str = "value", hint: str = ""
) -> CheckPassed:
    """A number within ``rel`` (relative) of ``expected``; says by how much it is off."""
    try:
        value = float(actual)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"{name} should be a number, but it is {type(actual).__name__} ({actual!r}).",
            hint or "Return a float, not a string, list or None.",
        ) from None
    if value != value:  # NaN
        raise CheckFailed(f"{name} is NaN.", hint or "Look for a division by zero or empty data.")
    scale = max(abs(expected), 1e-12)
    off = abs(value - expected) / scale
    return check(
        off <= rel,
        ok=f"{name} = {value:.4g} (expected about {expected:.4g})",
        problem=f"{name} = {value:.4g} is too {'high' if value > expected else 'low'} "
        f"({off:.0%} off, {rel:.0%} allowed).",  # the expected value stays unsaid: no answer key
        hint=hint,
    )


def check_type(actual: Any, expected: type | tuple[type, ...], *, name: str = "value") -> None:
    """Raise a hint when the student returned the wrong kind of object."""
    if not is_kind(actual, *(expected if isinstance(expected, tuple) else (expected,))):
        names = (
            " or ".join(t.__name__ for t in expected)
            if isinstance(expected, tuple)
            else expected.__name__
        )
        raise CheckFailed(
            f"{name} should be a {names}, but it is a {type(actual).__name__}.",
            "Did the cell above finish, and does your function `return` its result?",
        )


def is_kind(obj: Any, *classes: type) -> bool:
    """isinstance that also works on the grader's proxies for objects in a student's kernel."""
    if hasattr(obj, "is_a") and hasattr(obj, "remote_type"):
        return any(obj.is_a(f"{c.__module__}:{c.__qualname__}") for c in classes)
    return isinstance(obj, classes)


def run_beside(obj: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` where ``obj`` lives: here, or in the student's kernel when ``obj`` is the
    grader's proxy for it (``fn`` must then be a module-level kit function; what it returns
    is copied out as plain data and judged here)."""
    if hasattr(obj, "apply") and hasattr(obj, "remote_type"):
        return obj.apply(fn, *args)
    return fn(*args)


def defined_in(obj: Any) -> str:
    """The module an object (or a student's function behind a proxy) was defined in."""
    if hasattr(obj, "attribute") and hasattr(obj, "remote_type"):
        value = obj.attribute("__module__")
        return value if isinstance(value, str) else ""
    return str(getattr(obj, "__module__", "") or "")


def run_student_function(
    fn: Callable[..., Any],
    *args: Any,
    name: str = "your function",
    hint: str = "Run it on a small input in a new cell and read the error line by line.",
) -> Any:
    """Call a student's function; turn the placeholder and crashes into hints (``hint`` for a
    crash: the lab's own advice where it has one)."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is still the placeholder.", "Replace `raise NotImplementedError` with code."
        ) from None
    except CheckFailed:
        raise
    except Exception as exc:  # the student's bug, reported as advice
        if _fatal(exc):
            raise
        said = (str(exc).splitlines() or [""])[0][:300]  # a remote error can carry a traceback
        raise CheckFailed(f"{name} raised {type(exc).__name__}: {said}", hint) from None
