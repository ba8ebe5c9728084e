"""The bill per placement of a RAG question's stages: serverless CPU versus an hourly GPU.

Why here: these are pricing formulas over measured stage times; the prices come from
``infralab.economics.costs.pricing`` (the one reader of price data) and the unit cost from
``infralab.economics.costs.unit`` (the one formula). The times come from lesson 06's live run and
``python -m infralab bench rag``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from infralab.economics.costs.constants import DEFAULT_GPU
from infralab.economics.costs.pricing import CostError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "placement_costs",
    "placements",
]


def serverless_usd_per_1k(duration_ms: float, memory_gb: float = 2.0) -> float:
    """AWS Lambda price of 1,000 calls of ``duration_ms`` (:func:`billing.lambda_function`
    with the published prices in datasets/pricing, no free tier): GB-seconds, each call
    rounded up to 1 ms, plus the per-request fee."""
    from infralab.economics.costs import billing

    if duration_ms < 0:
        raise CostError(
            f"duration must be >= 0 ms, got {duration_ms}.",
            hint="Pass a measured stage time in milliseconds (0 or more).",
        )
    return billing.lambda_function(1000, duration_ms / 1000.0, memory_gb * 1024.0).monthly_usd


def gpu_usd_per_hour(gpu: str = DEFAULT_GPU) -> tuple[float, str]:
    """Cheapest on-demand price of one ``gpu`` per hour (:func:`pricing.gpu_hour`), and its source."""
    from infralab.economics.costs.pricing import gpu_hour

    row = gpu_hour(gpu, "on_demand")
    return float(row["usd_per_gpu_hour"]), f"{row['provider']} {row['instance']} ({row['as_of']})"


def gpu_usd_per_1k(duration_ms: float, usd_per_hour: float, utilization: float) -> float | None:
    """An hourly GPU serving one call at a time: cost of 1,000 calls at ``utilization``."""
    from infralab.economics.costs.billing import unit_cost

    if duration_ms <= 0:
        raise CostError(
            "a GPU stage needs a duration above 0 ms.",
            hint="Pass the GPU time you measured in ms, or leave the stage out of gpu_ms.",
        )
    return unit_cost(usd_per_hour, 1000.0 / duration_ms, utilization, per=1000.0)


def placement_costs(
    stage_ms: Mapping[str, float],
    *,
    gpu: str = DEFAULT_GPU,
    utilization: float = 0.3,
    memory_gb: float = 2.0,
    gpu_ms: Mapping[str, float] | None = None,
    gpu_note: str = "measured",
) -> pd.DataFrame:
    """Per stage: the measured CPU time priced on serverless CPU, and what the same stage
    would cost on an hourly GPU. ``gpu_ms`` holds GPU timings you measured (or estimated
    from a recorded run: say so in ``gpu_note``); stages without one are priced at the CPU
    time (column ``gpu_time``). Either way the table gives the speed-up the GPU would need
    to break even, instead of an invented GPU number."""
    if not 0 < utilization <= 1:
        raise CostError(
            f"utilization is a share in (0, 1], got {utilization}.",
            hint="Write utilization as a share: 0.3 for 30 % of the hour busy, at most 1.",
        )
    price, source = gpu_usd_per_hour(gpu)
    gpu_ms = dict(gpu_ms or {})
    rows = []
    for stage in ("embed_query", "search", "generate"):
        if stage not in stage_ms:
            continue
        cpu_ms = float(stage_ms[stage])
        cpu_usd = serverless_usd_per_1k(cpu_ms, memory_gb)
        g_ms = float(gpu_ms.get(stage, cpu_ms))
        g_usd = gpu_usd_per_1k(max(g_ms, 1e-3), price, utilization)
        # GPU cost per call scales with its time: break even when t_gpu = t_cpu / speed-up
        at_cpu_speed = gpu_usd_per_1k(max(cpu_ms, 1e-3), price, utilization) or float("inf")
        rows.append(
            {
                "stage": stage,
                "cpu_ms": cpu_ms,
                "serverless_cpu_usd_per_1k": cpu_usd,
                "gpu_ms": g_ms,
                "gpu_time": gpu_note if stage in gpu_ms else "assumed = CPU time",
                "gpu_usd_per_1k": g_usd,
                "gpu_speedup_to_break_even": at_cpu_speed / cpu_usd if cpu_usd else float("inf"),
            }
        )
    table = pd.DataFrame(rows).set_index("stage")
    table.attrs.update(
        gpu=gpu,
        gpu_usd_per_hour=price,
        gpu_price_source=source,
        utilization=utilization,
        memory_gb=memory_gb,
    )
    return table


def placements(
    stage_ms: Mapping[str, float],
    costs: pd.DataFrame,
    network_ms: float,
) -> pd.DataFrame:
    """Whole-question latency and cost for the usual ways to split the stages.

    Each move of work across the cloud / AI-infra boundary adds one ``network_ms`` round
    trip; cost is the sum of the stages where they run (the network itself is not billed
    here: egress between providers is, but it is small for text)."""
    plans = {
        "all on cloud CPU (serverless)": {"embed_query": "cpu", "search": "cpu", "generate": "cpu"},
        "retrieve on cloud, generate on GPU": {
            "embed_query": "cpu",
            "search": "cpu",
            "generate": "gpu",
        },
        "all on GPU infra": {"embed_query": "gpu", "search": "gpu", "generate": "gpu"},
    }
    rows = []
    for name, plan in plans.items():
        usd = 0.0
        ms = 0.0
        for stage, where in plan.items():
            if stage not in costs.index:
                continue
            row = costs.loc[stage]
            usd += (
                row["serverless_cpu_usd_per_1k"] if where == "cpu" else (row["gpu_usd_per_1k"] or 0)
            )
            ms += row["cpu_ms"] if where == "cpu" else row["gpu_ms"]
        hops = 1 if "gpu" in plan.values() else 0  # the app on the cloud calls the AI infra once
        rows.append(
            {
                "placement": name,
                "latency_ms": ms + hops * network_ms,
                "network_hops": hops,
                "usd_per_1k_questions": usd,
            }
        )
    return pd.DataFrame(rows).set_index("placement")
