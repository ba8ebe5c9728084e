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

import importlib

from infralab.tooling.checks.against_reference import (
    _calls_into,
    _codes,
    _compare_on_random_inputs,
    _mismatch,
    _short,
    _unwrap,
    agrees_with_reference,
    graded_checks,
    points,
    refuse_kit_function,
    values_agree,
)
from infralab.tooling.checks.harness import (
    _GRADING,
    CheckFailed,
    CheckPassed,
    _fatal,
    check,
    check_close,
    check_type,
    defined_in,
    grading_mode,
    is_kind,
    run_beside,
    run_student_function,
)
from infralab.tooling.checks.public_checks import (
    PUBLIC_NOTE,
    REFERENCES_PACKAGE,
    call_number,
    expect,
    number,
    public_pass,
    public_rng,
    reference_module,
    same_twice,
    scales_as,
)

# Every name above stays reachable as ``infralab.tooling.checks.X`` (the labs' checks and the
# grader use them so); the harness lives in harness, the references and public checks in
# public_checks, points and the comparison with the reference in against_reference.
_SHARED = (
    _GRADING, CheckFailed, CheckPassed, PUBLIC_NOTE, REFERENCES_PACKAGE, _calls_into, _codes,
    _compare_on_random_inputs, _fatal, _mismatch, _short, _unwrap, agrees_with_reference,
    call_number, check, check_close, check_type, defined_in, expect, graded_checks,
    grading_mode, is_kind, number, points, public_pass, public_rng, reference_module,
    refuse_kit_function, run_beside, run_student_function, same_twice, scales_as, values_agree,
)  # fmt: skip

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
