"""Model engines on ONNX Runtime: the encoder (embeddings), the decoder (LLM), synthetic graphs;
and sentence-transformers on PyTorch, the encoder's peer in lesson 03's comparison."""

import importlib as _importlib

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


def __getattr__(name: str) -> object:
    if name in _LAZY or name in _FACES:
        module = _importlib.import_module(f"{__name__}.{_LAZY.get(name, name)}")
        return getattr(module, name) if name in _LAZY else module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
