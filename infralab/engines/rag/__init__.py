"""Multi-tenant retrieval-augmented generation, split between cloud and AI infrastructure.

``corpus`` loads documents and questions, ``chunking`` splits them, ``vector_store``
(Qdrant) and ``lexical`` (BM25) index them per tenant, ``hybrid`` fuses the two, ``answer``
writes the answer with citations, ``evaluate`` scores retrieval, and ``cloud_app`` is the
tenant-facing service.
"""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {
    "Generator": "answer",
    "RagIndex": "hybrid",
    "SYSTEM_GUARDED": "answer",
    "ask_many": "cloud_app",
    "check_output": "answer",
    "create_app": "cloud_app",
    "load_documents": "corpus",
    "load_questions": "corpus",
    "screen": "answer",
    "search_all_tenants": "tenancy",
}
_FACES = (
    "corpus",
    "drift",
    "evaluate",
    "measure",
    "answer_quality",
    "router",
    "tenancy",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
