"""Throughput and duration from what the student measured (``infralab.core.results``), with
where each figure came from."""

from __future__ import annotations

from typing import Literal

from infralab.core.results import Figure
from infralab.economics.costs.pricing import (
    CostError,
)

# --- throughput from what the student measured ---------------------------------------------


# The one provenance type (a number and where it came from) is ``infralab.core.results.Figure``;
# ``Measured`` is its older name here.
Measured = Figure

# Used only when neither the student's result nor the kit's recorded run can be read (a
# partial checkout): the llama.cpp reference figure written down in the recorded run.
DEFAULTS: dict[str, Figure] = {
    "generation": Figure(
        49.0,
        "tokens/s",
        "default",
        "datasets/benchmarks/generation.json",
        "llama.cpp reference run (SmolLM2-135M Q4_1, 2 cores)",
    ),
}

_FIELDS: dict[str, str] = {
    "generation": "decode_tokens_per_s",
    "embedding": "sentences_per_s",
    "serving": "throughput_rps",
}


def _measured(kind: str, name: str) -> Figure | None:
    """One field of a typed result (``infralab.core.results.load``) as a labelled Figure."""
    from infralab.core import results

    try:
        record = results.load(kind)
    except (FileNotFoundError, results.ResultError, OSError):
        return None
    return record.figure(name)


def measured_throughput(kind: Literal["generation", "embedding", "serving"]) -> Figure | None:
    """The student's throughput from lesson 02-04 results, else the kit's recorded one.

    Reads the typed record's field (no key guessing) and says which source was used; falls
    back to :data:`DEFAULTS` (itself labelled) or None.
    """
    if kind not in _FIELDS:
        raise CostError(f"kind must be one of {', '.join(_FIELDS)}")
    return _measured(kind, _FIELDS[kind]) or DEFAULTS.get(kind)


def measured_duration_s(kind: str = "serving") -> Figure | None:
    """Mean seconds per request, alone, from lesson 02's (or lab 02's) result."""
    if kind not in ("serving", "loadtest"):
        raise CostError("kind must be 'serving' or 'loadtest'")
    return _measured(kind, "mean_duration_s")
