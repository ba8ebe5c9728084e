"""Presentation: Altair charts, ipywidgets dashboards and the lesson helpers that
display results; the offline switch that lets every chart draw without the network.
"""

from infralab.core.faces import lazy_face

# The layer's faces (tests/test_public_face.py): each loads on first use.
_FACES = (
    "charts",
    "ui",
    "widgets",
)
__all__ = sorted(_FACES)

__getattr__ = lazy_face(__name__, {}, _FACES)
