"""Benchmarks: one module per target; ``python -m infralab bench TARGET`` runs
``infralab.tooling.bench.TARGET.main(argv)``. Command-line tools: what lessons call lives in the
engines (the timing harness is :mod:`infralab.core.timing`; the embedding throughput
measurements are :mod:`infralab.engines.models.throughput`, the decoding ones
:mod:`infralab.engines.models.decoding`, lesson 06's :mod:`infralab.engines.rag.measure`). What lessons
still take from here (lesson 03's recorded GPU runs and the sentence-transformers model)
is named in ``__all__`` below.
"""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY: dict[str, str] = {}
_FACES = ("embed",)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
