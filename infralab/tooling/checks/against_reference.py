"""Points and gaming: a graded check's points, and a student's function against the reference.

Each graded check declares its points with :func:`points`; ``python -m infralab grade`` adds
them up (:func:`graded_checks`). A student's function is compared with a reference on random
inputs (:func:`agrees_with_reference`, edge cases included); handing in the kit's own function,
a wrapper around it, or a constant is refused (:func:`refuse_kit_function`).
"""

from __future__ import annotations

import functools
import math
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from infralab.tooling.checks.harness import (
    _GRADING,
    CheckFailed,
    _fatal,
    run_student_function,
)


def points(n: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a graded check and what it is worth (the grader reads ``fn.points``)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.points = int(n)  # type: ignore[attr-defined]
        return fn

    return mark


def graded_checks(module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    """The graded checks a module declares, by name, in source order."""
    found = [
        (getattr(fn, "__code__", None) and fn.__code__.co_firstlineno or 0, name, fn)
        for name, fn in vars(module).items()
        if callable(fn)
        and hasattr(fn, "points")
        and getattr(fn, "__module__", "") == module.__name__
    ]
    return {name: fn for _, name, fn in sorted(found)}


def _unwrap(fn: Any) -> Any:
    """The function behind a partial, a bound method or a ``functools.wraps`` wrapper."""
    for _ in range(10):
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif isinstance(fn, types.MethodType):
            fn = fn.__func__
        elif hasattr(fn, "__wrapped__"):
            fn = fn.__wrapped__
        else:
            break
    return fn


def _codes(fn: Any) -> set[types.CodeType]:
    fn = _unwrap(fn)
    code = getattr(fn, "__code__", None)
    return {code} if code is not None else set()


def _calls_into(fn: Callable[..., Any], args: tuple, forbidden: set[types.CodeType]) -> bool:
    """Whether calling ``fn(*args)`` runs any of the ``forbidden`` code objects."""
    hit = False

    def profile(frame: types.FrameType, event: str, arg: Any) -> None:
        nonlocal hit
        if event == "call" and frame.f_code in forbidden:
            hit = True

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn(*args)
    except Exception:  # the student's own bugs are reported by the behaviour check
        pass
    finally:
        sys.setprofile(previous)
    return hit


def refuse_kit_function(
    fn: Any,
    kit: Iterable[Callable[..., Any]],
    *,
    name: str,
    sample_args: tuple | None = None,
    hint: str = "",
) -> None:
    """Refuse the kit's own implementation handed in as the student's.

    Catches the function object itself, a partial or wrapper of it, a function built on its
    code object, and (with ``sample_args``) a function of the student's that calls into it.
    Source that merely looks like the kit's is not refused: two people can write the same
    one-line formula honestly.
    """
    if not callable(fn):
        raise CheckFailed(
            f"{name} should be a function, not {type(fn).__name__}.",
            "Define it with `def` and pass the function itself (no parentheses).",
        )
    kit = list(kit)
    hint = hint or "The lab asks for your own code: write the formula from the lesson's idea."
    if hasattr(fn, "calls_into"):  # a proxy for a function in the student's kernel (grading)
        names = [f"{k.__module__}:{k.__qualname__}" for k in map(_unwrap, kit)
                 if hasattr(k, "__module__") and hasattr(k, "__qualname__")]  # fmt: skip
        if fn.calls_into(names, *(sample_args or ())):
            raise CheckFailed(f"{name} is or calls the kit's own implementation.", hint)
        return
    forbidden = set().union(*(_codes(k) for k in kit)) if kit else set()
    mine = _unwrap(fn)
    if any(mine is _unwrap(k) for k in kit) or (_codes(fn) & forbidden):
        raise CheckFailed(f"{name} is the kit's own function, not yours.", hint)
    if sample_args is not None and forbidden and _calls_into(fn, sample_args, forbidden):
        raise CheckFailed(f"{name} calls the kit's own implementation.", hint)


def agrees_with_reference(
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    strategy: Any,
    *,
    name: str,
    hint: str,
    edge_cases: Iterable[tuple] = (),
    same: Callable[[Any, Any], bool] | None = None,
    max_examples: int = 80,
) -> int:
    """Compare ``fn`` with ``reference`` on random argument tuples drawn from ``strategy``.

    Edge cases run first. A mismatch raises :class:`CheckFailed` naming the (shrunk) input and
    what the student's function returned, never the expected value. Returns the number of
    inputs tried. Derandomized, so a grade does not depend on luck; no deadline, so a busy
    machine cannot fail correct code.
    """
    same = same or values_agree
    tried = 0
    outputs: list[Any] = []
    wanted: list[Any] = []
    edge_cases = [tuple(args) for args in edge_cases]

    def compare(args: tuple) -> None:
        nonlocal tried
        tried += 1
        want = reference(*args)
        got = run_student_function(fn, *args, name=name)
        outputs.append(got)
        wanted.append(want)
        if not same(got, want):
            raise _mismatch(fn, reference, args, got, want, outputs, wanted, edge_cases, name, hint)

    for args in edge_cases:
        compare(args)
    _compare_on_random_inputs(compare, strategy, max_examples, name)
    return tried


def _mismatch(
    fn: Callable[..., Any],
    reference: Callable[..., Any],
    args: tuple,
    got: Any,
    want: Any,
    outputs: list[Any],
    wanted: list[Any],
    edge_cases: list[tuple],
    name: str,
    hint: str,
) -> CheckFailed:
    """The failure to report for one wrong answer: a constant named as such, else the input."""
    shown = ", ".join(_short(a) for a in args)
    for other in edge_cases[:4]:  # a constant shows itself on a few more inputs
        if len(outputs) > 3:
            break
        try:
            outputs.append(fn(*other))
            wanted.append(reference(*other))
        except Exception:
            break
    constant = len(outputs) > 1 and all(values_agree(o, got) for o in outputs)
    if constant and not all(values_agree(w, want) for w in wanted):
        return CheckFailed(
            f"{name} returns {_short(got)} whatever the input: a constant, not a computation.",
            hint,
        )
    return CheckFailed(f"{name}({shown}) returned {_short(got)}, which is not right.", hint)


def _compare_on_random_inputs(
    compare: Callable[[tuple], None], strategy: Any, max_examples: int, name: str
) -> None:
    """Run ``compare`` on hypothesis' inputs; its own errors become a CheckFailed for ``name``."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=not _GRADING.get(),
        database=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def random_inputs(args: tuple) -> None:
        compare(args)

    try:
        random_inputs()
    except CheckFailed as exc:
        raise CheckFailed(exc.problem, exc.hint) from None
    except Exception as exc:  # hypothesis' own errors (e.g. a flaky function)
        if _fatal(exc) or any(_fatal(e) for e in getattr(exc, "exceptions", ())):
            raise
        raise CheckFailed(
            f"{name} gave different results for the same input ({type(exc).__name__}).",
            "Your function should depend only on its arguments: no randomness, no globals.",
        ) from None


def values_agree(got: Any, want: Any, rel: float = 1e-6) -> bool:
    """Equal, with a relative tolerance for floats (None only matches None)."""
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if math.isnan(want):
            return math.isnan(got)
        return math.isclose(float(got), float(want), rel_tol=rel, abs_tol=1e-12)
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and set(got) == set(want)
            and all(values_agree(got[k], want[k], rel) for k in want)
        )
    if isinstance(want, (list, tuple)):
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(want)
            and all(values_agree(g, w, rel) for g, w in zip(got, want, strict=True))
        )
    return got == want


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
