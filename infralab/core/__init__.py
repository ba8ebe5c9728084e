"""The core: where things live, the kit's errors, this machine, the model files, the ONNX
Runtime providers that truly run, timing, and the one reader of recorded runs.

Everything above imports from here; the core imports nothing of the kit above it.
"""

from infralab.core.faces import lazy_face

# The layer's faces (tests/test_public_face.py): each loads on first use.
_FACES = (
    "assets",
    "env",
    "faces",
    "results",
    "runtime",
    "timing",
)
__all__ = sorted(_FACES)

__getattr__ = lazy_face(__name__, {}, _FACES)
