"""Published prices from datasets/pricing/*.csv: loaded, validated, never invented.

Every row carries its ``source`` and ``as_of`` date and every price column names its unit
(``usd_per_hour``, ``usd_per_1m_input_tokens``, ...). The validator refuses a file with a row
that lacks either, or with a negative or non-numeric price, so a bad edit fails loudly in the
schema test instead of quietly skewing a break-even. A price the sources do not give stays
blank (missing) where the schema allows it; it is never filled with a guess.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from infralab.core.errors import InfralabError
from infralab.core.paths import PRICING_DIR, REPO_ROOT
from infralab.economics.costs.constants import HOURS_PER_MONTH  # noqa: F401  (kept importable from here)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "api_prices",
    "hourly_prices",
    "load_prices",
    "round_trip",
]


_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")


_NUMERIC_EXTRA = (
    "gpu_memory_gb",
    "free_units_per_month",
    "tier_from_units_per_month",
    "billing_increment_s",
    "vcpu",
    "memory_gib",
)


def source_is_citable(text: str) -> bool:
    """A source a student's clone can follow: a web address, or a file inside the repository.

    Why: a citation of a path outside the repository (a maintainer's notes) is a dead end
    for everyone else, so it is refused like a missing source.
    """
    text = text.strip()
    if text.startswith("https://") or text.startswith("http://"):
        return True
    path = text.split(" ", 1)[0].split("#", 1)[0]
    if not path or path.startswith(("/", "..")) or ".." in Path(path).parts:
        return False
    return (REPO_ROOT / path).is_file()


class PricingError(ValueError, InfralabError):
    """A price file that breaks the schema; the message lists every bad row."""

    hint = "datasets/pricing/README.md lists each file's columns; every price needs a source and a date."


@dataclass(frozen=True)
class Schema:
    """What one price file must hold: columns, which are prices, which may be blank."""

    columns: tuple[str, ...]
    prices: tuple[str, ...]
    optional: tuple[str, ...] = ("note",)
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    positive_ints: tuple[str, ...] = ()


SCHEMAS: dict[str, Schema] = {
    "llm_api": Schema(
        columns=(
            "provider",
            "model",
            "usd_per_1m_input_tokens",
            "usd_per_1m_output_tokens",
            "source",
            "as_of",
            "note",
        ),
        prices=("usd_per_1m_input_tokens", "usd_per_1m_output_tokens"),
    ),
    "gpu_instances": Schema(
        columns=(
            "provider",
            "instance",
            "gpu",
            "gpu_count",
            "gpu_memory_gb",
            "pricing",
            "usd_per_hour",
            "region",
            "source",
            "as_of",
            "note",
        ),
        prices=("usd_per_hour",),
        optional=("note", "gpu_memory_gb"),
        choices={"pricing": ("on_demand", "reserved", "spot")},
        positive_ints=("gpu_count",),
    ),
    "serverless_gpu": Schema(
        columns=("provider", "gpu", "usd_per_hour", "billing", "source", "as_of", "note"),
        prices=("usd_per_hour",),
        choices={"billing": ("per_second",)},
    ),
    "serverless_cpu": Schema(
        columns=(
            "provider",
            "service",
            "architecture",
            "meter",
            "unit",
            "usd_per_unit",
            "free_units_per_month",
            "tier_from_units_per_month",
            "billing_increment_s",
            "source",
            "as_of",
            "note",
        ),
        prices=("usd_per_unit",),
        # A meter may have a free tier but no price in the sources: the price stays blank.
        optional=(
            "note",
            "usd_per_unit",
            "free_units_per_month",
            "tier_from_units_per_month",
            "billing_increment_s",
        ),
        choices={
            "architecture": ("any", "x86_64", "arm64"),
            "meter": ("requests", "compute", "cpu", "memory"),
            "unit": ("1m_requests", "gb_second", "gib_second", "vcpu_second"),
        },
    ),
    "serverless_limits": Schema(
        columns=("provider", "service", "fact", "value", "unit", "source", "as_of", "note"),
        prices=("value",),
        choices={"unit": ("mb", "gib", "vcpu", "requests")},
    ),
    "cpu_vm": Schema(
        columns=(
            "provider",
            "instance",
            "vcpu",
            "memory_gib",
            "architecture",
            "pricing",
            "usd_per_hour",
            "region",
            "source",
            "as_of",
            "note",
        ),
        prices=("usd_per_hour",),
        choices={
            "architecture": ("x86_64", "arm64"),
            "pricing": ("on_demand", "reserved", "committed", "spot"),
        },
        positive_ints=("vcpu",),
    ),
    "egress": Schema(
        columns=("provider", "direction", "usd_per_gb", "source", "as_of", "note"),
        prices=("usd_per_gb",),
        choices={"direction": ("internet",)},
    ),
    "hardware": Schema(
        columns=("device", "metric", "value", "unit", "source", "as_of", "note"),
        prices=("value",),
        choices={"unit": ("tflop_per_s", "tb_per_s", "samples_per_s", "tokens_per_s")},
    ),
    "network": Schema(
        columns=("provider", "scope", "metric", "value", "unit", "source", "as_of", "note"),
        prices=("value",),
        choices={"unit": ("ms",), "metric": ("rtt_monthly_min", "rtt_monthly_max")},
    ),
}


def validate(df: pd.DataFrame, name: str) -> list[str]:
    """Every problem in one price table, as 'row N: ...' lines (empty when valid).

    Row numbers count like a spreadsheet: the header is row 1, the first price row 2.
    """
    if name not in SCHEMAS:
        raise PricingError(f"unknown price file {name!r}; known: {', '.join(SCHEMAS)}")
    schema = SCHEMAS[name]
    missing = [c for c in schema.columns if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.columns]
    problems: list[str] = []
    if missing:
        problems.append(f"missing column(s): {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected column(s) (units must be in the name): {', '.join(extra)}")
    if missing:
        return problems
    if df.empty:
        problems.append("no rows")
    numeric = set(schema.prices) | set(schema.positive_ints)
    numeric |= set(_NUMERIC_EXTRA)
    for i, row in df.iterrows():
        where = f"row {int(i) + 2}"  # type: ignore[call-overload]
        for col in schema.columns:
            text = "" if pd.isna(row[col]) else str(row[col]).strip()
            if not text:
                if col not in schema.optional:
                    problems.append(f"{where}: {col} is empty")
                continue
            if col == "source" and not source_is_citable(text):
                problems.append(
                    f"{where}: source {text!r} is neither a web address (https://...) nor a "
                    "file in this repository"
                )
            if col == "as_of" and not _DATE.match(text):
                problems.append(f"{where}: as_of {text!r} is not a date (YYYY-MM-DD or YYYY-MM)")
            if col in schema.choices and text not in schema.choices[col]:
                allowed = ", ".join(schema.choices[col])
                problems.append(f"{where}: {col} {text!r} is not one of {allowed}")
            if col in numeric:
                try:
                    value = float(text)
                except ValueError:
                    problems.append(f"{where}: {col} {text!r} is not a number")
                    continue
                if value != value or value < 0:
                    problems.append(f"{where}: {col} is {text} (negative or NaN)")
                elif col in schema.positive_ints and (value < 1 or value != int(value)):
                    problems.append(f"{where}: {col} must be a whole number >= 1, not {text}")
    return problems


def load_prices(name: str, folder: Path | str | None = None) -> pd.DataFrame:
    """Load ``<folder>/<name>.csv`` after validating it; raise PricingError listing bad rows."""
    if name not in SCHEMAS:
        raise PricingError(f"unknown price file {name!r}; known: {', '.join(SCHEMAS)}")
    path = Path(folder or PRICING_DIR) / f"{name}.csv"
    if not path.is_file():
        raise PricingError(f"{path} not found: is this a full checkout of the kit?")
    # cached per file version: a dashboard redraw must not re-read and re-validate CSVs;
    # ctime, size and inode join mtime so a quick edit within one clock tick is still seen
    st = path.stat()
    version = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
    return _load(str(path), name, version).copy()


@functools.lru_cache(maxsize=32)
def _load(path_text: str, name: str, _version: tuple[int, int, int, int]) -> pd.DataFrame:
    path = Path(path_text)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    problems = validate(df, name)
    if problems:
        raise PricingError(f"{path.name} breaks the price schema:\n  " + "\n  ".join(problems))
    schema = SCHEMAS[name]
    for col in df.columns:
        if col in schema.prices or col in ("gpu_count", *_NUMERIC_EXTRA):
            df[col] = pd.to_numeric(df[col].replace("", None), errors="coerce")
    if name == "gpu_instances":
        df["usd_per_gpu_hour"] = df["usd_per_hour"] / df["gpu_count"]
    if name == "serverless_gpu":
        df["usd_per_second"] = df["usd_per_hour"] / 3600.0
    return df


def validate_folder(folder: Path | str | None = None) -> dict[str, list[str]]:
    """Problems per price file in ``folder``; a file the schema does not know is a problem."""
    root = Path(folder or PRICING_DIR)
    report: dict[str, list[str]] = {}
    for path in sorted(root.glob("*.csv")):
        if path.stem not in SCHEMAS:
            report[path.stem] = [f"no schema for {path.name}: add one to SCHEMAS"]
            continue
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        report[path.stem] = validate(df, path.stem)
    return report


def gpu_hourly(gpu: str, pricing: str = "on_demand") -> pd.DataFrame:
    """Rows for one GPU model and pricing kind, cheapest per GPU-hour first."""
    df = load_prices("gpu_instances")
    if pricing not in SCHEMAS["gpu_instances"].choices["pricing"]:
        raise PricingError(f"pricing {pricing!r} must be on_demand, reserved or spot")
    rows = df[(df["gpu"].str.lower() == gpu.lower()) & (df["pricing"] == pricing)]
    if rows.empty:
        known = ", ".join(sorted(df["gpu"].unique()))
        raise PricingError(f"no {pricing} price for GPU {gpu!r}; GPUs with prices: {known}")
    return rows.sort_values("usd_per_gpu_hour").reset_index(drop=True)


def serverless_cpu_price(
    provider: str, service: str, meter: str, architecture: str = "x86_64"
) -> tuple[float, float]:
    """(usd_per_unit, free_units_per_month) for one serverless meter; NaN where missing.

    Picks the flat (untiered) row when there is one, else the first tier; a meter priced the
    same on every architecture is listed once as ``any``.
    """
    row = serverless_cpu_row(provider, service, meter, architecture)
    return float(row["usd_per_unit"]), float(row["free_units_per_month"])


def serverless_cpu_row(
    provider: str, service: str, meter: str, architecture: str = "x86_64"
) -> pd.Series:
    """The row behind :func:`serverless_cpu_price` (with its source and date)."""
    df = load_prices("serverless_cpu")
    rows = df[
        (df["provider"] == provider)
        & (df["service"] == service)
        & (df["meter"] == meter)
        & df["architecture"].isin([architecture, "any"])
    ]
    if rows.empty:
        raise PricingError(f"no serverless price for {provider}/{service}/{meter}/{architecture}")
    flat = rows[rows["tier_from_units_per_month"].isna()]
    return (flat if not flat.empty else rows.sort_values("tier_from_units_per_month")).iloc[0]


def lambda_tiers(architecture: str = "x86_64") -> list[tuple[float, float]]:
    """Lambda's monthly GB-second tiers as (from_gb_s, usd_per_gb_s), lowest first."""
    df = load_prices("serverless_cpu")
    rows = df[
        (df["service"] == "lambda")
        & (df["meter"] == "compute")
        & (df["architecture"] == architecture)
        & df["tier_from_units_per_month"].notna()
    ].sort_values("tier_from_units_per_month")
    if rows.empty:
        raise PricingError(f"no Lambda tiers for architecture {architecture!r} (x86_64, arm64)")
    return [(float(r.tier_from_units_per_month), float(r.usd_per_unit)) for r in rows.itertuples()]


def serverless_fact(provider: str, service: str, fact: str) -> tuple[float, str, str]:
    """(value, source, as_of) of one sourced limit, e.g. Lambda's memory per vCPU."""
    df = load_prices("serverless_limits")
    rows = df[(df["provider"] == provider) & (df["service"] == service) & (df["fact"] == fact)]
    if rows.empty:
        known = ", ".join(sorted(df["fact"].unique()))
        raise PricingError(f"no sourced fact {provider}/{service}/{fact}; known facts: {known}")
    row = rows.iloc[0]
    return float(row["value"]), str(row["source"]), str(row["as_of"])


def cpu_vm(instance: str | None = None, pricing: str = "on_demand") -> pd.DataFrame:
    """CPU virtual machines at one pricing kind, cheapest per vCPU-hour first."""
    df = load_prices("cpu_vm")
    df = df[df["pricing"] == pricing]
    if instance is not None:
        df = df[df["instance"] == instance]
        if df.empty:
            known = ", ".join(load_prices("cpu_vm")["instance"])
            raise PricingError(f"no {pricing} price for VM {instance!r}; known: {known}")
    df = df.assign(usd_per_vcpu_hour=df["usd_per_hour"] / df["vcpu"])
    return df.sort_values("usd_per_vcpu_hour").reset_index(drop=True)


# --- the unit-cost formulas (one copy: charts, checks and the RAG bill call these) ----------
class CostError(ValueError, InfralabError):
    """Bad input to the cost model; the message says which value and what is allowed."""

    hint = "Prices, rates and counts are numbers >= 0; utilization is a share between 0 and 1."


class CostTypeError(TypeError, CostError):
    """A cost input of the wrong type (text, True/False, None): a CostError that is still
    the TypeError it always was, for callers that catch that."""


def check_nonneg(name: str, value: float) -> float:
    """``value`` as a finite float >= 0, else a :class:`CostError` naming it (text and
    True/False are refused: ``float("0.1")`` would hide a caller's mistake)."""
    if isinstance(value, (str, bytes, bool)):
        raise CostError(f"{name} must be a number, not {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CostError(f"{name} must be a number, not {value!r}") from None
    if v != v or v < 0 or math.isinf(v):
        raise CostError(f"{name} must be a finite number >= 0, not {value!r}")
    return v


def egress_row(provider: str, direction: str = "internet") -> pd.Series:
    """The per-GB price of data leaving ``provider`` (datasets/pricing/egress.csv)."""
    df = load_prices("egress")
    rows = df[(df["provider"] == provider) & (df["direction"] == direction)]
    if rows.empty:
        known = ", ".join(sorted(df["provider"]))
        raise PricingError(
            f"no {direction} egress price for {provider!r} (known: {known}); not guessed"
        )
    return rows.iloc[0]


def round_trip(scope: str, metric: str = "rtt_monthly_max", provider: str = "azure") -> pd.Series:
    """A published round-trip time between cloud regions (datasets/pricing/network.csv), with
    its source and date: what a simulated network delay stands for."""
    df = load_prices("network")
    rows = df[(df["provider"] == provider) & (df["scope"] == scope) & (df["metric"] == metric)]
    if rows.empty:
        known = "; ".join(sorted(set(df["scope"])))
        raise PricingError(f"no {metric} round trip for {provider} {scope!r} (known: {known})")
    return rows.iloc[0]


def gpu_hour(gpu: str, pricing: str = "on_demand", provider: str | None = None) -> pd.Series:
    """The one GPU-hour price: the cheapest per-GPU-hour row for ``gpu`` (at ``provider`` if
    given), with its source and date."""
    rows = gpu_hourly(gpu, pricing)
    if provider is not None:
        rows = rows[rows["provider"] == provider]
        if rows.empty:
            raise PricingError(f"no {pricing} price for {gpu} at {provider} in gpu_instances.csv")
    return rows.iloc[0]


# --- price tables a lesson sets against a measured speed ------------------------------------
def api_prices() -> pd.DataFrame:
    """Published LLM API prices per 1M tokens (datasets/pricing/llm_api.csv) with source, date
    and the file they came from (column ``from``)."""
    df = load_prices("llm_api").copy()
    df["from"] = str((PRICING_DIR / "llm_api.csv").relative_to(REPO_ROOT))
    return df


def hourly_prices(gpu: str = "H100") -> pd.DataFrame:
    """Hourly prices to set against a measured speed, each with its source and date.

    A CPU machine like the student's: the cheapest 2-vCPU x86 on-demand VM in
    ``cpu_vm.csv`` that is not burstable (a ``t`` instance runs at full speed only while its
    CPU credits last). A GPU: the cheapest single ``gpu`` hour in ``gpu_instances.csv``.
    """
    rows = []
    vm = load_prices("cpu_vm")
    hit = vm[
        (vm["vcpu"] == 2)
        & (vm["architecture"] == "x86_64")
        & (vm["pricing"] == "on_demand")
        & ~vm["instance"].str.startswith("t")
    ].dropna(subset=["usd_per_hour"])
    if len(hit):
        r = hit.sort_values("usd_per_hour").iloc[0]
        rows.append({"machine": f"2 vCPU VM ({r['provider']} {r['instance']}, on demand)",
                     "device": "cpu", "usd_per_hour": float(r["usd_per_hour"]),
                     "source": r["source"], "as_of": r["as_of"]})  # fmt: skip
    gpus = load_prices("gpu_instances")
    one = gpus[(gpus["gpu"].astype(str).str.startswith(gpu)) & (gpus["gpu_count"] == 1)]
    one = one.dropna(subset=["usd_per_hour"])
    if len(one):
        r = one.sort_values("usd_per_hour").iloc[0]
        rows.append({"machine": f"1x {r['gpu']} ({r['provider']} {r['instance']}, {r['pricing']})",
                     "device": "cuda", "usd_per_hour": float(r["usd_per_hour"]),
                     "source": r["source"], "as_of": r["as_of"]})  # fmt: skip
    return pd.DataFrame(rows, columns=["machine", "device", "usd_per_hour", "source", "as_of"])
