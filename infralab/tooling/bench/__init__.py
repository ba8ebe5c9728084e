"""Benchmarks: one module per target; ``python -m infralab bench TARGET`` runs
``infralab.tooling.bench.TARGET.main(argv)``. Command-line tools: what lessons call lives in the
engines (the timing harness is :mod:`infralab.core.timing`; the embedding throughput
measurements are :mod:`infralab.engines.models.throughput`, the decoding ones
:mod:`infralab.engines.models.decoding`, lesson 06's :mod:`infralab.engines.rag.measure`, lesson 03's
recorded GPU runs :mod:`infralab.core.results` and its sentence-transformers model
:mod:`infralab.engines.models`). Nothing here is a lesson's face: ``__all__`` is empty.
"""

# Nothing here is a lesson's face (tests/test_public_face.py): the targets are imported by
# name, `python -m infralab bench TARGET`.
__all__: list[str] = []
