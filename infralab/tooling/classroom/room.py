"""The room: every shared record as one table, priced (charted by
:func:`infralab.presentation.charts.classroom.charts`).

Each record's headline figure (throughput for serving, load tests, embeddings and
generation; retrieval time for RAG) is read from its typed field, and priced per million
units where a published price fits the hardware it ran on (``datasets/pricing``): on CPU at
the default VM's price per vCPU-hour times the vCPUs the measurement used, on a GPU at the
cheapest on-demand hour of that GPU. Rows that cannot be priced say why.
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pandas as pd

from infralab.core import results

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "frame",
    "spread",
    "standing",
]


# kind -> (field, unit, priced per, higher is better)
HEADLINE: dict[str, tuple[str, str, str | None, bool]] = {
    "serving": ("throughput_rps", "requests/s", "1M requests", True),
    "loadtest": ("throughput_rps", "requests/s", "1M requests", True),
    "embedding": ("sentences_per_s", "sentences/s", "1M embeddings", True),
    "generation": ("decode_tokens_per_s", "tokens/s", "1M tokens", True),
    "rag": ("retrieval_ms", "ms per question", None, False),
}
UTILIZATION = 0.5  # the share of each billed hour the hardware is busy (stated on the chart)


def hardware(record: dict[str, Any]) -> str:
    """A short label for what the record ran on: the GPU's name, else CPU model and vCPUs."""
    provider = str(record.get("provider", "cpu")).lower()
    m = record.get("machine") or {}
    if provider not in ("cpu", "") and provider != "cpuexecutionprovider":
        gpus = m.get("gpus") or []
        return str(record.get("device") or (gpus[0] if gpus else "GPU"))
    vcpus = record.get("cpu_vcpus") or m.get("usable_cpus") or m.get("cpus")
    return f"{m.get('cpu_model') or m.get('processor') or 'CPU'} ({vcpus:g} vCPU)"


def _gpu_price(device: str) -> tuple[float, str] | None:
    from infralab.economics.costs import pricing

    table = pricing.load_prices("gpu_instances")
    for gpu in sorted(table["gpu"].unique(), key=len, reverse=True):
        if gpu.split("-")[0].lower() in device.lower():
            row = pricing.gpu_hourly(gpu, "on_demand").iloc[0]
            per_gpu = float(row["usd_per_hour"]) / float(row["gpu_count"])
            return per_gpu, f"{row['provider']} {row['instance']}, {row['source']} ({row['as_of']})"
    return None


def price(record: dict[str, Any], value: float) -> tuple[float | None, str]:
    """USD per million units of ``value`` units/s on the record's hardware, and the basis."""
    from infralab.economics.costs import billing, unit

    kind = record.get("kind", "")
    if HEADLINE[kind][2] is None:
        return None, "latency: not priced"
    if str(record.get("provider", "cpu")).lower() not in ("cpu", ""):
        found = _gpu_price(hardware(record))
        if found is None:
            return None, f"no published price for {hardware(record)} in datasets/pricing"
        hourly, source = found
    else:
        row = unit.vm_row()
        per_vcpu = float(row["usd_per_hour"]) / float(row["vcpu"])
        hourly = per_vcpu * float(record.get("cpu_vcpus") or 1.0)
        source = f"{row['provider']} {row['instance']} per vCPU, {row['source']} ({row['as_of']})"
    return billing.unit_cost(hourly, value, UTILIZATION), source


def _unreadable(row: dict[str, Any], why: str) -> dict[str, Any]:
    rec = row.get("record") if isinstance(row.get("record"), dict) else {}
    return {
        "nickname": row.get("nickname", ""),
        "workload": str(rec.get("kind", row.get("kind", ""))),
        "hardware": "",
        "metric": "",
        "value": None,
        "unit": "",
        "usd_per_million": None,
        "priced_per": "",
        "price_basis": why,
        "measured": "",
        "command": "",
        "received": row.get("received", ""),
        "sha256": row.get("sha256", ""),
    }


def frame(rows: list[dict[str, Any]], skip_unreadable: bool = True) -> pd.DataFrame:
    """One row per shared record: who, what, on which hardware, the headline figure, its cost.

    A record this kit cannot read (one an older collector stored) is left out, or with
    ``skip_unreadable=False`` kept as a row without a figure that says so (the CSV export).
    """
    out = []
    for row in rows:
        try:
            out.append(_row(row))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            if not skip_unreadable:
                out.append(_unreadable(row, f"unreadable record ({type(exc).__name__})"))
    return pd.DataFrame(out)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    rec = row["record"]
    kind = rec.get("kind", row.get("kind"))
    field, unit_, per, _ = HEADLINE[kind]
    value = float(rec[field])
    usd, basis = price(rec, value)
    return {
        "nickname": row["nickname"],
        "workload": kind,
        "hardware": hardware(rec),
        "metric": field,
        "value": value,
        "unit": unit_,
        "usd_per_million": usd,
        "priced_per": per or "",
        "price_basis": basis,
        "measured": str(rec.get("date", ""))[:10],
        "command": rec.get("command", ""),
        "received": row.get("received", ""),
        "sha256": row.get("sha256", ""),
    }


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run: one starting with =, +, -, @, tab or carriage
    return gets a leading single quote (OWASP's advice against CSV injection); numbers and
    other text pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: list[dict[str, Any]]) -> str:
    """The class as CSV: the room table plus every record as JSON (for any other analysis).

    Every text cell that a spreadsheet would read as a formula is escaped (:func:`csv_cell`):
    a record's ``command`` is whatever a student sent, ``=HYPERLINK(...)`` included.
    """
    df = frame(rows, skip_unreadable=False) if rows else pd.DataFrame()
    if df.empty:
        df = pd.DataFrame(columns=["nickname", "workload"])
    if rows:
        df["record_json"] = [json.dumps(r["record"], sort_keys=True) for r in rows]
    for column in df.columns:
        if not pd.api.types.is_numeric_dtype(df[column]):  # object or str dtype
            df[column] = df[column].map(csv_cell)
    buf = io.StringIO()
    # CRLF, as RFC 4180 writes: the csv writer then quotes any cell holding a lone CR too
    # (with "\n" it wrote one unquoted, and a reader split the row there).
    df.to_csv(buf, index=False, lineterminator="\r\n")
    return buf.getvalue()


def spread(df: pd.DataFrame) -> pd.DataFrame:
    """Per workload: how many, the median, and how far apart the fastest and slowest are."""
    g = df.groupby(["workload", "unit"])["value"]
    out = g.agg(records="count", slowest="min", median="median", fastest="max").reset_index()
    out["fastest_over_slowest"] = (out["fastest"] / out["slowest"]).round(1)
    return out


def standing(df: pd.DataFrame, nickname: str) -> pd.DataFrame:
    """Where one student sits per workload: their figure and the share of the room below it."""
    rows = []
    for kind, group in df.groupby("workload"):
        mine = group[group["nickname"] == nickname]
        if mine.empty:
            continue
        better_high = HEADLINE[kind][3]
        value = mine["value"].max() if better_high else mine["value"].min()
        beaten = (group["value"] < value) if better_high else (group["value"] > value)
        rows.append(
            {
                "workload": kind,
                "value": value,
                "unit": HEADLINE[kind][1],
                "room_median": group["value"].median(),
                "share_of_room_behind_you": round(float(beaten.mean()), 2),
            }
        )
    return pd.DataFrame(rows)


DEMO_HARDWARE = (  # (label, vCPUs, speed factor against the kit's recorded CPU run)
    ("demo: laptop CPU", 4, 1.6),
    ("demo: Binder CPU", 2, 0.8),
    ("demo: Colab CPU", 2, 0.7),
    ("demo: workstation CPU", 8, 3.0),
)


def demo_records(students: int = 12, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """Generated (nickname, record) pairs, labelled demo in every field a chart shows.

    Why: the instructor notebook must run before any student has shared anything. The
    figures are the kit's recorded CPU runs scaled by an invented speed factor per machine,
    so they look like a room but are not one; machine labels and nicknames start "demo".
    """
    rng = random.Random(seed)
    base = {k: results.load_recorded(k) for k in ("serving", "embedding", "generation")}
    out = []
    for i in range(students):
        label, vcpus, factor = DEMO_HARDWARE[i % len(DEMO_HARDWARE)]
        factor *= rng.uniform(0.8, 1.2)
        machine = {"cpu_model": label, "cpus": vcpus, "usable_cpus": vcpus, "gpus": []}
        command = "demo data: infralab.tooling.classroom.room.demo_records"
        recs = [
            results.ServingResult(
                throughput_rps=base["serving"].throughput_rps * factor,
                mean_duration_s=base["serving"].mean_duration_s / factor,
                cpu_vcpus=float(vcpus),
                machine=machine,
                command=command,
            ),
            results.EmbeddingResult(
                sentences_per_s=base["embedding"].sentences_per_s * factor,
                engine=base["embedding"].engine,
                cpu_vcpus=float(vcpus),
                machine=machine,
                command=command,
            ),
            results.GenerationResult(
                decode_tokens_per_s=base["generation"].decode_tokens_per_s * factor,
                cpu_vcpus=float(vcpus),
                machine=machine,
                command=command,
            ),
        ]
        out += [(f"demo-{i:02d}", r.to_dict()) for r in recs]
    return out
