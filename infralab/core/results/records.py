"""The base of every measurement record: one number with its provenance (:class:`Figure`),
the fields every record carries (:class:`Record`) and the one description of the machine a
figure was measured on (:func:`machine`).

Each record carries the schema version, the machine, the date, what produced it, and where
its numbers came from (``origin``): ``measured`` (the student's own run), ``recorded`` (the
kit's run in ``datasets/benchmarks/``), ``default`` (a sourced constant), ``estimate``
(computed by a model from sourced figures) or ``missing`` (not measured, so not priced).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from infralab.core.errors import InfralabError

SCHEMA_VERSION = 2

Origin = Literal["measured", "recorded", "default", "estimate", "missing"]
# measured: the student's run; recorded: the kit's benchmark file; default: a sourced figure
# (a price, a published measurement); estimate: computed by a model from sourced figures;
# missing: not measured, so not priced (value None).
ORIGINS: tuple[str, ...] = ("measured", "recorded", "default", "estimate", "missing")


class ResultError(ValueError, InfralabError):
    """A saved result that cannot be used; the message says why and what to run."""

    hint = (
        "Run the lesson that measures it, or read the kit's recorded run in datasets/benchmarks/."
    )


class RecordedRunMissing(FileNotFoundError, InfralabError):
    """No measurement of that name: neither the student's saved one nor the kit's recorded run."""

    hint = (
        "Run the lesson that measures it (it saves your run); a full clone of the kit has its "
        "recorded runs in datasets/benchmarks/."
    )


class RecordedKeyError(KeyError, InfralabError):
    """A recorded run has no such figure or section; the message lists what it holds."""

    hint = "Use one of the keys the message lists (print(list(run)) shows them)."


class ResultNameError(ResultError):
    """A free-form result name that cannot be a file name."""

    hint = "Name a result with letters, digits, '-' or '_', for example 'my_load_test'."


def machine(threads: int | None = None) -> dict[str, Any]:
    """The one description of the machine a figure was measured on (CPU, cores, GPU, load).

    Every record and every ``bench ... --record`` file uses this, so a recorded figure and a
    student's figure can be read side by side.
    """
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        from infralab.core import env

        info["cpu_model"] = env.cpu_model()
        info["usable_cpus"] = env.usable_cores()
        info["gpus"] = [g.get("name", "GPU") for g in env.gpu_info()]
    except Exception:  # an odd platform must not stop a result from being saved
        info.setdefault("gpus", [])
    if threads is not None:
        info["threads"] = int(threads)
    if hasattr(os, "getloadavg"):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    return info


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Figure:
    """One number with its unit and where it came from (origin and file or page).

    The kit's one provenance type, from a lesson's measurement to the price and the memo
    (``costs.Measured`` and ``decision.Input`` are this class). ``name`` says what it is
    where a list of figures is shown; a ``missing`` figure has no value.
    """

    value: float | None
    unit: str
    origin: str
    source: str
    detail: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ResultError(f"origin must be one of {', '.join(ORIGINS)}, not {self.origin!r}")
        if self.value is None and self.origin != "missing":
            raise ResultError("only a 'missing' figure may have no value")

    def label(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        if self.value is None:
            return f"not measured ({self.source}{extra})"
        return f"{self.value:,.4g} {self.unit} ({self.origin}: {self.source}{extra})"

    def shown(self) -> str:
        """The value and unit, or a dash when missing."""
        return "—" if self.value is None else f"{self.value:,.4g} {self.unit}"

    def named(self, name: str) -> Figure:
        """The same figure under a display name."""
        return dataclasses.replace(self, name=name)


@dataclass
class Record:
    """Fields every measurement carries; subclasses add the numbers."""

    kind: ClassVar[str] = ""
    units: ClassVar[dict[str, str]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    date: str = field(default_factory=utc_now)
    machine: dict[str, Any] = field(default_factory=machine)
    command: str = ""
    origin: str = "measured"
    source: str = ""  # the file it was read from (set by load)
    note: str = ""  # why a fallback happened, or how an older file was converted
    schema: int = SCHEMA_VERSION

    def figure(self, name: str) -> Figure:
        """A field as a :class:`Figure`, labelled with this record's origin and file."""
        value = getattr(self, name, None)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ResultError(f"{self.kind} has no number {name!r}")
        when = self.date[:10] if self.date else "undated"
        return Figure(
            float(value),
            self.units.get(name, ""),
            self.origin,
            self.source or f"{self.kind}.json",
            f"{name}, {when}",
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for transient in ("origin", "source", "note"):
            data.pop(transient, None)
        return {"kind": self.kind, **data}


def vcpus_used(machine_info: dict[str, Any]) -> float:
    """The vCPUs a run used: its threads if written down, else the usable cores."""
    for key in ("threads", "cpus_usable", "usable_cpus", "physical_cores_used", "cpus"):
        value = machine_info.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 1.0
