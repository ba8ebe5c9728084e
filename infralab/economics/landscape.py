"""The map of AI infrastructure and the price of one unit of compute, CPU against GPU.

Lesson 01 asks two questions before anything is measured: *what counts as AI
infrastructure* (a map of layers and tools, kept as data in ``datasets/landscape.csv`` so
a student can filter it), and *what does a unit of compute cost* on each side (USD per
hour, per TFLOP/s-hour of peak and per GB-hour of memory, from the dated prices in
``datasets/pricing/`` and the sourced peak figures in ``datasets/compute_peaks.csv``).
Every number carries its source; a figure we have no source for stays empty (NaN) and
the table says so, rather than being guessed.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import pandas as pd

from infralab.core.errors import InfralabError
from infralab.core.paths import LANDSCAPE_CSV, PEAKS_CSV
from infralab.economics.costs import pricing

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "break_even_sentence",
    "cheapest_per_tflop",
    "filter_landscape",
    "load_landscape",
    "load_peaks",
    "unit_price_table",
    "utilization_table",
]


LANDSCAPE_COLUMNS = ["layer", "name", "side", "what_it_does", "in_this_course", "source"]
GPU_COLUMNS = ["provider", "instance", "gpu", "gpu_count", "gpu_memory_gb", "usd_per_hour"]
PRECISIONS = ("fp16", "fp32")

# GPU names in price lists vary ("H100 SXM", "H100-80GB", "8xH100"); each pattern picks the
# spec row. PCIe and NVL variants of the H100 have other peaks, so they match nothing.
_DEVICE_RULES: list[tuple[str, str, str | None]] = [
    ("H100 SXM", r"h100", r"pcie|nvl"),
    ("A100", r"a100", None),
    ("L40S", r"l40s", None),
    ("L4", r"(^|[^a-z0-9]|\dx)l4($|[^a-z0-9s])", None),
]


class LandscapeError(ValueError, InfralabError):
    """Bad input to a landscape helper; the message says what is allowed."""

    hint = "The kit's files are in datasets/ (landscape.csv, compute_peaks.csv, pricing/)."


def _closest(value: str, choices: list[str]) -> str:
    """A 'Did you mean' hint: a choice that contains the typo's words, else the closest spelling."""
    words = [w for w in re.split(r"\W+", value.lower()) if len(w) >= 3]
    for choice in choices:
        if words and all(any(c.startswith(w[:4]) for c in choice.lower().split()) for w in words):
            return f" Did you mean {choice!r}?"
    near = difflib.get_close_matches(value, choices, n=1, cutoff=0.4)
    return f" Did you mean {near[0]!r}?" if near else ""


# --------------------------------------------------------------------------- the map


def load_landscape(path: Path | str | None = None) -> pd.DataFrame:
    """The map of tools by layer, one row per tool, with its source and where the course uses it."""
    path = Path(path) if path else LANDSCAPE_CSV
    if not path.is_file():
        raise FileNotFoundError(f"The landscape table is missing: {path}")
    df = pd.read_csv(path, dtype=str).fillna("")
    missing = [c for c in LANDSCAPE_COLUMNS if c not in df.columns]
    if missing:
        raise LandscapeError(f"{path.name} lacks the columns {missing}")
    return df[LANDSCAPE_COLUMNS]


def layers(df: pd.DataFrame | None = None) -> list[str]:
    """The layers in the order the map lists them (the order the lesson teaches them)."""
    df = load_landscape() if df is None else df
    return list(dict.fromkeys(df["layer"]))


def filter_landscape(
    df: pd.DataFrame | None = None,
    *,
    layer: str | None = None,
    side: str | None = None,
    text: str | None = None,
) -> pd.DataFrame:
    """Rows of the map for one layer and/or side, and/or containing ``text`` anywhere.

    ``None``, ``""`` or ``"all"`` means no filter. An unknown layer or side raises a
    :class:`LandscapeError` that lists the valid ones and suggests the closest.
    """
    df = load_landscape() if df is None else df
    out = df
    for column, value in (("layer", layer), ("side", side)):
        if value is None or str(value).strip().lower() in ("", "all"):
            continue
        if not isinstance(value, str):
            raise LandscapeError(f"{column} should be a string, not {type(value).__name__}.")
        choices = list(dict.fromkeys(df[column]))
        lowered = {c.lower(): c for c in choices}
        if value.strip().lower() not in lowered:
            raise LandscapeError(
                f"Unknown {column} {value!r}.{_closest(value, choices)} "
                f"Choose one of: {', '.join(choices)}."
            )
        out = out[out[column] == lowered[value.strip().lower()]]
    if text:
        needle = str(text).strip().lower()
        hay = out.apply(lambda row: " ".join(row.astype(str)).lower(), axis=1)
        out = out[hay.str.contains(needle, regex=False)]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------- price per unit


def load_peaks(path: Path | str | None = None) -> pd.DataFrame:
    """Sourced peak TFLOP/s, memory and bandwidth per device and precision."""
    path = Path(path) if path else PEAKS_CSV
    df = pd.read_csv(path)
    if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
        raise LandscapeError(f"{path.name}: every peak figure needs a source.")
    return df


def load_gpu_instances(path: Path | str | None = None) -> pd.DataFrame:
    """GPU instance prices from ``datasets/pricing/gpu_instances.csv`` (the cost lesson's data)."""
    if path is None:  # the kit's own file, read (and validated) by the pricing module
        return pricing.load_prices("gpu_instances")
    path = Path(path)  # a file of your own
    if not path.is_file():
        raise FileNotFoundError(
            f"No GPU price list at {path}. It ships with the kit (datasets/pricing/); "
            "if you cloned only part of the repository, fetch the whole of it."
        )
    df = pd.read_csv(path)
    missing = [c for c in GPU_COLUMNS if c not in df.columns]
    if missing:
        raise LandscapeError(f"{path.name} lacks the columns {missing}")
    return df


def match_device(gpu_name: str, peaks: pd.DataFrame | None = None) -> str | None:
    """The spec row a price list's GPU name refers to, or None when we hold no sourced spec."""
    name = str(gpu_name).lower()
    known = set(load_peaks()["device"]) if peaks is None else set(peaks["device"])
    for device, pattern, exclude in _DEVICE_RULES:
        if device not in known or not re.search(pattern, name):
            continue
        if exclude and re.search(exclude, name):
            return None
        return device
    return None


def gpu_unit_prices(
    instances: pd.DataFrame | None = None,
    peaks: pd.DataFrame | None = None,
    precision: str = "fp16",
) -> pd.DataFrame:
    """Per GPU instance: USD per hour, per GPU-hour, per GB-hour of GPU memory and per TFLOP/s-hour.

    ``usd_per_tflop_hour`` divides the hourly price by the *peak* TFLOP/s at ``precision``
    (what one TFLOP/s of peak capability costs for an hour; work actually done costs more
    by 1 / utilization). It is NaN where we hold no sourced peak for that GPU.
    """
    if precision not in PRECISIONS:
        raise LandscapeError(f"precision must be one of {PRECISIONS}, not {precision!r}.")
    inst = load_gpu_instances() if instances is None else instances.copy()
    peaks = load_peaks() if peaks is None else peaks
    inst = inst[pd.to_numeric(inst["usd_per_hour"], errors="coerce") > 0].copy()
    inst["usd_per_hour"] = inst["usd_per_hour"].astype(float)
    inst["gpu_count"] = pd.to_numeric(inst["gpu_count"], errors="coerce").fillna(1).astype(int)
    inst["device"] = [
        match_device(f"{g} {i}", peaks) for g, i in zip(inst["gpu"], inst["instance"], strict=True)
    ]
    per_prec = peaks[peaks["precision"] == precision].set_index("device")
    inst["usd_per_gpu_hour"] = inst["usd_per_hour"] / inst["gpu_count"]
    inst["memory_gb"] = pd.to_numeric(inst["gpu_memory_gb"], errors="coerce") * inst["gpu_count"]
    inst["usd_per_gb_hour"] = inst["usd_per_hour"] / inst["memory_gb"]
    tflops = inst["device"].map(per_prec["peak_tflops"]) * inst["gpu_count"]
    inst["peak_tflops"] = tflops
    inst["usd_per_tflop_hour"] = inst["usd_per_hour"] / tflops
    inst["spec_source"] = inst["device"].map(per_prec["source"]).fillna("no sourced spec")
    inst["precision"] = precision
    inst["kind"] = "GPU"
    keep = [
        "kind",
        "provider",
        "instance",
        "gpu",
        "gpu_count",
        *[c for c in ("pricing", "region") if c in inst.columns],
        "usd_per_hour",
        "usd_per_gpu_hour",
        "memory_gb",
        "usd_per_gb_hour",
        "device",
        "precision",
        "peak_tflops",
        "usd_per_tflop_hour",
        *[c for c in ("source", "as_of") if c in inst.columns],
        "spec_source",
        *[c for c in ("note",) if c in inst.columns],
    ]
    return inst[keep].reset_index(drop=True)


def load_serverless_cpu(path: Path | str | None = None) -> pd.DataFrame:
    """Serverless CPU prices from ``datasets/pricing/serverless_cpu.csv``."""
    if path is None:
        return pricing.load_prices("serverless_cpu")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No serverless CPU price list at {path}.")
    return pd.read_csv(path)


def _flat_serverless_rates(serverless: pd.DataFrame) -> pd.DataFrame:
    """Serverless rows with a numeric price, one per meter (the flat rate, not the tiers)."""
    prices = serverless.copy()
    prices["usd_per_unit"] = pd.to_numeric(prices["usd_per_unit"], errors="coerce")
    priced = prices[prices["usd_per_unit"].notna()]
    if "tier_from_units_per_month" in priced.columns:  # one row per meter: the flat rate
        priced = priced[priced["tier_from_units_per_month"].isna()]
    return priced


def _vm_note(rated: bool, burstable: bool) -> str:
    """Why a VM has a peak (the shared AVX2 figure) or has none."""
    if rated:
        return "peak = the 2-core AVX2 figure per vCPU (an assumption)"
    return "burstable: no sustained peak" if burstable else "arm64: no sourced peak in the kit"


def _vm_rows(per_vcpu_tflops: float, cpu: pd.Series) -> list[dict[str, Any]]:
    """One row per on-demand CPU VM; only full-speed x86 VMs get the sourced peak."""
    rows: list[dict[str, Any]] = []
    for _, row in pricing.load_prices("cpu_vm").iterrows():
        x86 = row["architecture"] == "x86_64"
        burstable = str(row["instance"]).startswith("t")  # full speed only on CPU credits
        rated = x86 and not burstable
        tflops = per_vcpu_tflops * float(row["vcpu"]) if rated else float("nan")
        mem_gb = float(row["memory_gib"]) * 1.073741824
        rows.append(
            {
                "kind": "CPU",
                "provider": row["provider"],
                "instance": f"{row['instance']} VM, {int(row['vcpu'])} vCPU",
                "pricing": row["pricing"],
                "usd_per_hour": float(row["usd_per_hour"]),
                "memory_gb": mem_gb,
                "usd_per_gb_hour": float(row["usd_per_hour"]) / mem_gb,
                "precision": "fp32",
                "peak_tflops": tflops,
                "usd_per_tflop_hour": float(row["usd_per_hour"]) / tflops,
                "note": _vm_note(rated, burstable),
                "source": row["source"],
                "as_of": row["as_of"],
                "spec_source": cpu["source"] if rated else "",
            }
        )
    return rows


def _vcpu_second_rows(
    priced: pd.DataFrame, per_vcpu_tflops: float, vcpus: int, cpu: pd.Series
) -> list[dict[str, Any]]:
    """Serverless services billed per vCPU-second (Cloud Run): an hour of ``vcpus`` vCPUs."""
    rows: list[dict[str, Any]] = []
    for _, row in priced[priced["unit"] == "vcpu_second"].iterrows():
        hour = float(row["usd_per_unit"]) * 3600 * vcpus
        tflops = per_vcpu_tflops * vcpus
        rows.append(
            {
                "kind": "CPU",
                "provider": row["provider"],
                "instance": f"{row['service']}, {vcpus} vCPU",
                "usd_per_hour": hour,
                "memory_gb": float("nan"),
                "usd_per_gb_hour": float("nan"),
                "precision": "fp32",
                "peak_tflops": tflops,
                "usd_per_tflop_hour": hour / tflops,
                "note": "memory is billed apart (per GiB-second)",
                "source": row["source"],
                "as_of": row["as_of"],
                "spec_source": cpu["source"],
            }
        )
    return rows


def _gb_second_rows(priced: pd.DataFrame) -> list[dict[str, Any]]:
    """Serverless services billed per GB-second (Lambda): memory is priced, not cores."""
    rows: list[dict[str, Any]] = []
    for _, row in priced[priced["unit"] == "gb_second"].iterrows():
        hour = float(row["usd_per_unit"]) * 3600
        rows.append(
            {
                "kind": "CPU",
                "provider": row["provider"],
                "instance": f"{row['service']}, 1 GB",
                "usd_per_hour": hour,
                "memory_gb": 1.0,
                "usd_per_gb_hour": hour,
                "precision": "fp32",
                "peak_tflops": float("nan"),
                "usd_per_tflop_hour": float("nan"),
                "note": "CPU share grows with memory: one vCPU at 1,769 MB",
                "source": row["source"],
                "as_of": row["as_of"],
                "spec_source": "",
            }
        )
    return rows


def cpu_unit_prices(
    serverless: pd.DataFrame | None = None,
    peaks: pd.DataFrame | None = None,
    vcpus: int = 2,
) -> pd.DataFrame:
    """The CPU side: on-demand CPU VMs (``datasets/pricing/cpu_vm.csv``) and serverless
    per-second prices.

    A VM or a Cloud Run ``vcpus``-vCPU hour has a price; its peak is the sourced 2-core AVX2
    figure shared per vCPU (an assumption the lesson states: an x86 vCPU is often half a
    physical core, so the real peak may be lower; an arm64 VM has no sourced peak here).
    Lambda bills per GB-second, which prices memory (one vCPU per 1,769 MB), not cores. A
    figure without a source stays NaN and ``note`` says why.
    """
    if not isinstance(vcpus, int) or vcpus < 1:
        raise LandscapeError(f"vcpus must be a whole number >= 1, not {vcpus!r}.")
    serverless = load_serverless_cpu() if serverless is None else serverless
    peaks = load_peaks() if peaks is None else peaks
    cpu_rows = peaks[(peaks["kind"] == "cpu") & (peaks["precision"] == "fp32")]
    if cpu_rows.empty:
        raise LandscapeError("No sourced CPU peak in compute_peaks.csv.")
    cpu = cpu_rows.iloc[0]
    per_vcpu_tflops = float(cpu["peak_tflops"]) / 2.0  # the sourced figure is for 2 cores
    priced = _flat_serverless_rates(serverless)
    rows = [
        *_vm_rows(per_vcpu_tflops, cpu),
        *_vcpu_second_rows(priced, per_vcpu_tflops, vcpus, cpu),
        *_gb_second_rows(priced),
    ]
    if not rows:
        raise LandscapeError("No vCPU-second or GB-second price in the serverless CPU list.")
    return pd.DataFrame(rows)


def unit_price_table(precision: str = "fp16") -> pd.DataFrame:
    """CPU and GPU rows side by side with the same unit columns (for the lesson's charts)."""
    gpu = gpu_unit_prices(precision=precision)
    cpu = cpu_unit_prices()
    cols = [
        "kind",
        "provider",
        "instance",
        "pricing",
        "usd_per_hour",
        "memory_gb",
        "usd_per_gb_hour",
        "precision",
        "peak_tflops",
        "usd_per_tflop_hour",
        "source",
        "as_of",
        "spec_source",
        "note",
    ]
    both = pd.concat([cpu.reindex(columns=cols), gpu.reindex(columns=cols)], ignore_index=True)
    text = ["pricing", "source", "as_of", "spec_source", "note"]
    both[text] = both[text].astype(object).where(both[text].notna(), "")  # NaN is not JSON
    return both


def cheapest_per_tflop(table: pd.DataFrame) -> pd.Series:
    """The row with the lowest USD per peak TFLOP/s-hour (rows without a spec are ignored)."""
    rated = table.dropna(subset=["usd_per_tflop_hour"])
    if rated.empty:
        raise LandscapeError("No row has both a price and a sourced peak TFLOP/s.")
    return rated.loc[rated["usd_per_tflop_hour"].idxmin()]


def utilization_break_even(
    table: pd.DataFrame,
    gpu_instance: str = "p5.4xlarge",
    *,
    provider: str | None = None,
    pricing: str | None = None,
) -> tuple[float, pd.Series, pd.Series]:
    """``(utilization, gpu_row, cpu_row)``: the busy share at which ``gpu_instance``'s price per
    *useful* TFLOP/s-hour equals the cheapest CPU offer's at 100 % (below it the CPU wins).

    Useful work costs ``usd_per_tflop_hour / utilization``, so the crossing is the ratio of
    the two peak prices: the lesson's table and its sentence both come from here. One
    instance name can carry several rows (on-demand and spot, two clouds): ``provider`` and
    ``pricing`` pick one; without them the first listed row is used.
    """
    gpus = table[(table["kind"] == "GPU") & (table["instance"] == gpu_instance)]
    if provider is not None:
        gpus = gpus[gpus["provider"] == provider]
    if pricing is not None:
        gpus = gpus[gpus["pricing"] == pricing]
    gpus = gpus.dropna(subset=["usd_per_tflop_hour"])
    if gpus.empty:
        wanted = " ".join(x for x in (provider, gpu_instance, pricing) if x)
        known = table[(table["kind"] == "GPU") & (table["instance"] == gpu_instance)]
        offered = sorted({f"{r.provider} {r.pricing}" for r in known.itertuples()})
        hint = f" Rows with that instance: {', '.join(offered)}." if offered else ""
        raise LandscapeError(f"No GPU row {wanted!r} with a sourced peak in the table.{hint}")
    cpus = table[table["kind"] == "CPU"].dropna(subset=["usd_per_tflop_hour"])
    if cpus.empty:
        raise LandscapeError("No CPU row with a price and a sourced peak in the table.")
    gpu = gpus.iloc[0]
    cpu = cpus.loc[cpus["usd_per_tflop_hour"].idxmin()]
    return float(gpu["usd_per_tflop_hour"] / cpu["usd_per_tflop_hour"]), gpu, cpu


def utilization_table(
    table: pd.DataFrame,
    utilizations: tuple[float, ...] = (0.005, 0.01, 0.02, 0.1, 0.3, 0.7),
    gpu_instance: str = "p5.4xlarge",
) -> pd.DataFrame:
    """USD per useful TFLOP/s-hour of the GPU at each utilization, next to the cheapest CPU."""
    _, gpu, cpu = utilization_break_even(table, gpu_instance)
    rows = [
        {
            "utilization": u,
            f"{gpu['provider']} {gpu['instance']} (GPU)": gpu["usd_per_tflop_hour"] / u,
            f"{cpu['provider']} {cpu['instance']} (CPU) at 100 %": cpu["usd_per_tflop_hour"],
            "cheaper": "GPU"
            if gpu["usd_per_tflop_hour"] / u < cpu["usd_per_tflop_hour"]
            else "CPU",
        }
        for u in utilizations
    ]
    return pd.DataFrame(rows)


def break_even_sentence(table: pd.DataFrame, gpu_instance: str = "p5.4xlarge") -> str:
    """The lesson's claim about the utilization break-even, written from the numbers."""
    u, gpu, cpu = utilization_break_even(table, gpu_instance)
    return (
        f"Below {u:.2%} utilization the {gpu['provider']} {gpu['instance']} costs more per useful "
        f"TFLOP/s-hour than the cheapest CPU offer ({cpu['provider']} {cpu['instance']}, fully "
        f"busy); above it the GPU is cheaper per unit of work."
    )
