"""Benchmarks: one module per target; ``python -m infralab bench TARGET`` runs
``infralab.bench.TARGET.main(argv)``. Command-line tools: what lessons call lives in the
engines (the timing harness is :mod:`infralab.timing`; the embedding throughput
measurements are :mod:`infralab.models.throughput`, the decoding ones
:mod:`infralab.models.decoding`, lesson 06's :mod:`infralab.rag.measure`, lesson 03's
recorded GPU runs :mod:`infralab.results` and its sentence-transformers model
:mod:`infralab.models`). Nothing here is a lesson's face: ``__all__`` is empty.
"""

import importlib as _importlib

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY: dict[str, str] = {}
_FACES: tuple[str, ...] = ()
__all__ = sorted([*_LAZY, *_FACES])


def __getattr__(name: str) -> object:
    if name in _LAZY or name in _FACES:
        module = _importlib.import_module(f"{__name__}.{_LAZY.get(name, name)}")
        return getattr(module, name) if name in _LAZY else module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
