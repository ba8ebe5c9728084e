"""Exercise checks: a pass is one short line, a failure says what is wrong and how to fix it.

A failed check raises :class:`CheckFailed`, whose traceback IPython replaces by the message
and the hint alone, so a student sees advice rather than a stack trace. Lab-specific checks
live in ``infralab.checks.labNN`` and are built from :func:`check`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any


class CheckFailed(AssertionError):
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
        problem=f"{name} = {value:.4g}, but it should be about {expected:.4g} "
        f"({off:.0%} off, {rel:.0%} allowed).",
        hint=hint,
    )


def check_type(actual: Any, expected: type | tuple[type, ...], *, name: str = "value") -> None:
    """Raise a hint when the student returned the wrong kind of object."""
    if not isinstance(actual, expected):
        names = (
            " or ".join(t.__name__ for t in expected)
            if isinstance(expected, tuple)
            else expected.__name__
        )
        raise CheckFailed(
            f"{name} should be a {names}, but it is a {type(actual).__name__}.",
            "Did the cell above finish, and does your function `return` its result?",
        )


def run_student_function(fn: Callable[..., Any], *args: Any, name: str = "your function") -> Any:
    """Call a student's function; turn the placeholder and crashes into hints."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is still the placeholder.", "Replace `raise NotImplementedError` with code."
        ) from None
    except CheckFailed:
        raise
    except Exception as exc:  # the student's bug, reported as advice
        raise CheckFailed(
            f"{name} raised {type(exc).__name__}: {exc}",
            "Run it on a small input in a new cell and read the error line by line.",
        ) from None
