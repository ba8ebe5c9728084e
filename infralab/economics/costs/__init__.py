"""Pricing and bills: published prices (datasets/pricing), serverless billing, option costs, break-even.

Lessons import from this face: ``from infralab.economics.costs import billing`` (a submodule the face
names, with its own ``__all__``) or a name it re-exports.
"""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {
    "serverless_cpu_row": "pricing",
}
_FACES = (
    "billing",
    "breakeven",
    "model",
    "per_question",
    "placement",
    "pricing",
    "serverless",
    "training_bill",
    "unit",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
