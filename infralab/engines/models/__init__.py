"""Model engines on ONNX Runtime: the encoder (embeddings), the decoder (LLM), synthetic graphs;
and sentence-transformers on PyTorch, the encoder's peer in lesson 03's comparison."""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {
    "Embedder": "encoder",
    "Generator": "text_generation",
    "kv_memory_growth": "decoding",
    "matmul_weights": "encoder",
    "sentence_transformers_model": "pytorch_peer",
}
_FACES = (
    "decoder",
    "decoding",
    "encoder",
    "synthetic",
    "throughput",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
