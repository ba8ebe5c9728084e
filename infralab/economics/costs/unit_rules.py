"""One unit cost and the rules every unit cost uses: :class:`UnitCost` (what one unit of work
costs on one option, with every figure behind it), Lambda's CPU-share rule (one vCPU per
1,769 MB, linear in memory, from the Lambda developer guide), the price rows of a CPU VM and
a GPU, and a rate measured on some vCPUs priced on a VM (:func:`vm_unit_cost`).

:mod:`infralab.economics.costs.unit` prices each lesson's measurement with these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from infralab.core.errors import InfralabError
from infralab.core.results import Figure
from infralab.economics.costs import billing, pricing
from infralab.economics.costs.constants import DEFAULT_GPU, DEFAULT_VM
from infralab.economics.costs.workload import Bill


class UnitCostError(ValueError, InfralabError):
    """Bad input to a unit cost; the message names the value and what is allowed."""

    hint = (
        "Save the measurement first (the lesson that measures it calls infralab.core.results.save)."
    )


@dataclass(frozen=True)
class UnitCost:
    """What one unit of work costs on one option, and every figure behind it."""

    option: str
    usd: float | None  # per ``per``; None when the option cannot serve (``note`` says why)
    per: str  # "1M requests", "1M embeddings", "1M tokens", "1k questions"
    basis: str  # how it was computed, in words and numbers
    inputs: tuple[Figure, ...] = ()
    model: str = ""  # what runs on it (options that run another model are another product)
    quality: str = ""  # its measured or sourced quality, in words
    note: str = ""
    stage: str = ""  # for RAG: which stage of a question

    def row(self) -> dict[str, object]:
        return {
            "option": self.option,
            "stage": self.stage,
            f"usd_per_{self.per.replace(' ', '_')}": self.usd,
            "model": self.model,
            "quality": self.quality,
            "basis": self.basis,
            "origins": "; ".join(f.label() for f in self.inputs),
            "note": self.note,
        }


def table(costs: Iterable[UnitCost]) -> pd.DataFrame:
    """Unit costs as a table, one row per option (and stage)."""
    return pd.DataFrame([c.row() for c in costs])


def _positive(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UnitCostError(f"{name} must be a number, not {value!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise UnitCostError(f"{name} must be a positive, finite number, not {value!r}")
    return v


def _share(name: str, value: float) -> float:
    v = _positive(name, value)
    if v > 1:
        raise UnitCostError(f"{name} is a share between 0 and 1, not {value!r}")
    return v


def _price(value: float, unit: str, row: pd.Series | dict, detail: str = "") -> Figure:
    return Figure(float(value), unit, "default", str(row["source"]), f"{row['as_of']} {detail}")


def _from_bill(b: Bill) -> tuple[float, str, tuple[Figure, ...]]:
    """(USD, basis, price figures) of a bill."""
    return b.monthly_usd, b.basis, b.inputs


# ----------------------------------------------------------------------------- Lambda rule


def lambda_mb_per_vcpu() -> Figure:
    """Lambda's memory per vCPU (1,769 MB), with its source."""
    value, source, as_of = pricing.serverless_fact("aws", "lambda", "memory_mb_per_vcpu")
    return Figure(value, "MB per vCPU", "default", source, as_of)


def lambda_memory_for(vcpus: float) -> int:
    """The Lambda memory (MB) that buys ``vcpus`` of CPU, within Lambda's 128-10,240 MB."""
    per = lambda_mb_per_vcpu().value
    lo, _, _ = pricing.serverless_fact("aws", "lambda", "min_memory_mb")
    hi, _, _ = pricing.serverless_fact("aws", "lambda", "max_memory_mb")
    mb = math.ceil(_positive("vcpus", vcpus) * per)
    if mb > hi:
        raise UnitCostError(
            f"{vcpus:g} vCPUs need {mb:,} MB, above Lambda's {hi:,.0f} MB: measure with fewer "
            "threads (e.g. 2) to price it on Lambda"
        )
    return int(max(lo, mb))


def lambda_vcpus_at(memory_mb: float) -> float:
    """The vCPU share a function with ``memory_mb`` gets (linear in memory, capped)."""
    lo, _, _ = pricing.serverless_fact("aws", "lambda", "min_memory_mb")
    hi, _, _ = pricing.serverless_fact("aws", "lambda", "max_memory_mb")
    top, _, _ = pricing.serverless_fact("aws", "lambda", "max_vcpu")
    mb = _positive("memory_mb", memory_mb)
    if not lo <= mb <= hi:
        raise UnitCostError(f"Lambda memory must be {lo:.0f} to {hi:,.0f} MB, not {memory_mb:g}")
    return min(mb / lambda_mb_per_vcpu().value, top)


def vm_row(instance: str = DEFAULT_VM) -> pd.Series:
    """One CPU VM's on-demand price row."""
    return pricing.cpu_vm(instance).iloc[0]


def gpu_row(gpu: str = DEFAULT_GPU) -> pd.Series:
    """The cheapest on-demand price per GPU-hour for ``gpu`` (:func:`pricing.gpu_hour`)."""
    return pricing.gpu_hour(gpu, "on_demand")


def vm_unit_cost(
    rate: Figure, vcpus: Figure, vm: str, util: float, per: str, what: str, model: str,
    quality: str, note: str = "",
) -> UnitCost:  # fmt: skip
    """Per 1M units on a CPU VM busy ``util`` of the time: the rate measured on ``vcpus``
    scaled to the VM's vCPUs, priced by :func:`billing.unit_cost`."""
    row = vm_row(vm)
    n = int(row["vcpu"])
    vm_rate = rate.value * n / vcpus.value
    usd_h = float(row["usd_per_hour"])
    return UnitCost(
        f"CPU VM {vm} ({n} vCPU), {util:.0%} busy",
        billing.unit_cost(usd_h, vm_rate, util),
        per,
        f"{rate.value:,.1f} {what}/s on {vcpus.value:g} vCPU -> {vm_rate:,.1f} on {n} vCPU"
        + (f", {note}" if note else "")
        + f"; {usd_h:g} USD/h",
        (rate, vcpus, _price(row["usd_per_hour"], "USD/h", row, vm)),
        model,
        quality,
    )
