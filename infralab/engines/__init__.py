"""The engines: the models, the servers, retrieval (RAG), the fleet and training.

They measure and return data (no charts, no widgets); they may use the core only.
"""

from infralab.core.faces import lazy_face

# The layer's faces (tests/test_public_face.py): each loads on first use.
_FACES = (
    "fleet",
    "models",
    "rag",
    "serving",
    "training",
)
__all__ = sorted(_FACES)

__getattr__ = lazy_face(__name__, {}, _FACES)
