"""Training and fine-tuning on the kit's own data, and what a real training run costs.

``data``: the fine-tuning set built from the corpus, with provenance and content hashes.
``head``: a classifier head trained with plain numpy on frozen MiniLM embeddings, with
checkpoints that resume bit for bit. ``flops``: the arithmetic of training compute.
``bill``: GPU prices, the 6 x parameters x tokens rule, spot interruptions and the
reserved-capacity trap. The lesson's Altair charts are :mod:`infralab.charts.training`.
"""

import importlib as _importlib

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {}
_FACES = (
    "baselines",
    "bill",
    "data",
    "head",
)
__all__ = sorted([*_LAZY, *_FACES])


def __getattr__(name: str) -> object:
    if name in _LAZY or name in _FACES:
        module = _importlib.import_module(f"{__name__}.{_LAZY.get(name, name)}")
        return getattr(module, name) if name in _LAZY else module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
