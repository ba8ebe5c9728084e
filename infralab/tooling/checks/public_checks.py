"""The references, where the release has them, and the public checks that run where it has not.

A check reaches the hidden references through :func:`reference_module`; where that returns
None it runs its *public checks*: properties of the student's function on random inputs (the
placeholder, the type, determinism, scaling and ordering rules) that reveal no expected value
and that no constant passes, ending in :data:`PUBLIC_NOTE`.
"""

from __future__ import annotations

import importlib
import math
import random
import types
from collections.abc import Callable
from typing import Any

from infralab.tooling.checks.against_reference import _short, values_agree
from infralab.tooling.checks.harness import (
    CheckFailed,
    CheckPassed,
    run_student_function,
)

REFERENCES_PACKAGE = "infralab.tooling.checks.references"
PUBLIC_NOTE = "public checks passed; the grader also compares with the definition on hidden inputs."


def reference_module(name: str) -> types.ModuleType | None:
    """``infralab.tooling.checks.references.<name>`` (e.g. ``"lab05"``), or None where the references
    are absent, as in the student release."""
    target = f"{REFERENCES_PACKAGE}.{name}"
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name in (REFERENCES_PACKAGE, target, "infralab.tooling.checks.references"):
            return None
        raise


def public_pass(text: str) -> CheckPassed:
    """The line a public check passes with: what it tested, then :data:`PUBLIC_NOTE`."""
    return CheckPassed(f"{text.rstrip('. ')}: {PUBLIC_NOTE}")


def public_rng(seed: int = 0) -> random.Random:
    """A seeded generator for public checks: the same inputs every run, so no luck is graded."""
    return random.Random(seed)


def call_number(fn: Callable[..., Any], *args: Any, name: str, allow_none: bool = False) -> Any:
    """``fn(*args)`` as a finite float (or None when ``allow_none``); a hint otherwise."""
    got = run_student_function(fn, *args, name=name)
    if got is None and allow_none:
        return None
    shown = ", ".join(_short(a, 30) for a in args)
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        try:
            import numpy as np

            ok = isinstance(got, np.number) and not isinstance(got, np.bool_)
        except ImportError:  # pragma: no cover - numpy is a dependency
            ok = False
        if not ok:
            raise CheckFailed(
                f"{name}({shown}) returned {_short(got)}, not a number.",
                "Return a float (or None where the lab says so), not a string, list or dict.",
            )
    value = float(got)
    if not math.isfinite(value):
        raise CheckFailed(
            f"{name}({shown}) returned {value}.",
            "Look for a division by zero: the lab says what to return when nothing is served.",
        )
    return value


def number(value: Any, *, name: str) -> float:
    """A handed-in value as a finite float; a hint when it is not one."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes)):
        raise CheckFailed(
            f"{name} should be a number, but it is {type(value).__name__} ({_short(value)}).",
            "Return a float, not a string, list or None.",
        )
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"{name} should be a number, but it is {type(value).__name__}.",
            "Return a float, not a string, list or None.",
        ) from None
    if not math.isfinite(out):
        raise CheckFailed(f"{name} is {out}.", "Look for a division by zero or empty data.")
    return out


def expect(condition: bool, problem: str, hint: str) -> None:
    """Raise :class:`CheckFailed` unless ``condition`` holds (a public-check property)."""
    if not condition:
        raise CheckFailed(problem, hint)


def same_twice(fn: Callable[..., Any], args: tuple, first: Any, *, name: str) -> None:
    """Determinism: the same arguments give the same result."""
    again = run_student_function(fn, *args, name=name)
    if not values_agree(again, first):
        raise CheckFailed(
            f"{name} gave two different results for the same input.",
            "Your function should depend only on its arguments: no randomness, no globals.",
        )


def scales_as(
    fn: Callable[..., Any],
    args: tuple,
    index: int,
    factor: float,
    power: int,
    *,
    name: str,
    what: str,
    hint: str,
) -> None:
    """Multiplying argument ``index`` by ``factor`` multiplies the result by ``factor**power``."""
    base = call_number(fn, *args, name=name)
    moved = list(args)
    moved[index] = args[index] * factor
    after = call_number(fn, *moved, name=name)
    want = base * factor**power
    if not math.isclose(after, want, rel_tol=1e-6, abs_tol=1e-12):
        how = (
            "leave the result as it was"
            if power == 0
            else f"multiply the result by {factor**power:g}"
        )
        raise CheckFailed(
            f"{name}: multiplying {what} by {factor:g} should {how}, but {base:.6g} became "
            f"{after:.6g}.",
            hint,
        )
