"""Exercise checks: a pass is one short line, a failure says what is wrong and how to fix it.

A failed check raises :class:`CheckFailed`, whose traceback IPython replaces by the message
and the hint alone, so a student sees advice rather than a stack trace. Lab-specific checks
live in ``infralab.tooling.checks.labNN`` and are built from :func:`check`.

Checks test behaviour, not answers: a student's function is compared with a reference on
random inputs (:func:`agrees_with_reference`, hypothesis, edge cases included); handing in the
kit's own function, a wrapper around it, or a constant is refused (:func:`refuse_kit_function`);
hints say where to look, never what the answer is. Each graded check declares its points with
:func:`points`; ``python -m infralab grade`` adds them up.

The references (and every expected answer) live in ``infralab.tooling.checks.references``, which the
student release leaves out. A check reaches them through :func:`reference_module`; where that
returns None it runs its *public checks* instead: properties of the student's function on
random inputs (the placeholder, the type, determinism, scaling and ordering rules) that reveal
no expected value and that no constant passes, ending in :data:`PUBLIC_NOTE`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import html
import importlib
import math
import random
import sys
import types
from collections.abc import Callable, Iterable
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


# ---------------------------------------------------------------- references and public checks
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


# ---------------------------------------------------------------- points and gaming
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


# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY: dict[str, str] = {}
_FACES = (
    "lab02",
    "lab03",
    "lab04",
    "lab05",
    "lab06",
    "lab07",
    "lab08",
    "lab10",
    "lesson01",
    "quiz",
)
__all__ = sorted(["check_close", *_LAZY, *_FACES])


def __getattr__(name: str) -> object:
    if name in _LAZY or name in _FACES:
        module = importlib.import_module(f"{__name__}.{_LAZY.get(name, name)}")
        return getattr(module, name) if name in _LAZY else module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
