"""Economics: prices and bills, traces and scale-to-zero, the decision memo, the map of
the landscape, and the priced multi-step agent.

It prices what the engines measure, so it sits above them; charts draw it from above.
"""

from infralab.core.faces import lazy_face

# The layer's faces (tests/test_public_face.py): each loads on first use.
_FACES = (
    "agent",
    "costs",
    "decision",
    "landscape",
    "traces",
)
__all__ = sorted(_FACES)

__getattr__ = lazy_face(__name__, {}, _FACES)
