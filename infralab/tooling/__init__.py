"""Course tooling: labs and their checks, the grader, the classroom collector, notebooks,
slides, the site, the Colab set-up, the doctor and the command-line benchmarks.

It sits on top: it may use any layer below, and nothing below uses it.
"""

from infralab.core.faces import lazy_face

# The layer's faces (tests/test_public_face.py): each loads on first use.
_FACES = (
    "bench",
    "checks",
    "classroom",
    "colab",
    "doctor",
    "grading",
    "notebooks",
)
__all__ = sorted(_FACES)

__getattr__ = lazy_face(__name__, {}, _FACES)
