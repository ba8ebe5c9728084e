"""Measurements that one lesson saves and a later one prices ("measure, then price, decide").

One typed record per measurement (:class:`ServingResult`, :class:`LoadTestResult`,
:class:`EmbeddingResult`, :class:`GenerationResult`, :class:`RagResult`,
:class:`MultiStepResult`). Each carries the schema version, the machine (:func:`machine`, the
kit's one description of it), the date, what produced it, and where its numbers came from:

* ``measured``: the student's own run, saved with :func:`save` under :func:`results_dir`;
* ``recorded``: the kit's recorded run in ``datasets/benchmarks/`` (labelled with its file);
* ``default``: a sourced constant (a price, a published figure), never a made-up one.

One module per concern: ``records`` (the figure, the record base, the machine),
``record_types`` (the typed records and :func:`from_dict`), ``recorded_runs`` (the one reader
and writer of the kit's recorded runs), ``saved_runs`` (the student's saved runs, and the
first free-form API) and ``recorded_gpu`` (the recorded GPU runs lesson 03 shows).

Names the kit's other modules and tests use, but lessons do not, are re-exported too, outside
``__all__`` (the lessons' face): hence the file-wide F401 exemption. Eagerly, not lazily as
the bigger packages do: the modules are small, need only the standard library, and reading
any record needs all of them.
"""

# ruff: noqa: F401
from infralab.core.results.record_types import (
    KINDS,
    EmbeddingResult,
    GenerationResult,
    LoadLevel,
    LoadTestResult,
    MultiStepResult,
    RagResult,
    ServingResult,
    from_dict,
)
from infralab.core.results.recorded_gpu import (
    latest_gpu_run,
    provenance,
    recorded_gpu_runs,
)
from infralab.core.results.recorded_runs import (
    Recorded,
    detail_of,
    recorded,
    recorded_names,
    recorded_path,
    recorded_section,
    write_recorded,
)
from infralab.core.results.records import (
    ORIGINS,
    SCHEMA_VERSION,
    Figure,
    Origin,
    Record,
    RecordedKeyError,
    RecordedRunMissing,
    ResultError,
    ResultNameError,
    machine,
    vcpus_used,
)
from infralab.core.results.saved_runs import (
    LESSON_OF,
    RECORDED_GPU,
    RESULTS_ENV,
    load,
    load_gpu,
    load_recorded,
    load_result,
    results_dir,
    save,
    save_result,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "EmbeddingResult",
    "GenerationResult",
    "LoadLevel",
    "LoadTestResult",
    "MultiStepResult",
    "RagResult",
    "ServingResult",
    "latest_gpu_run",
    "load",
    "load_recorded",
    "machine",
    "provenance",
    "recorded",
    "results_dir",
    "save",
]
