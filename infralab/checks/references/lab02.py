"""Lab 02's references: request validation, the load summary, Lambda at a memory size."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from infralab.checks.lab02 import MAX_CHARS, MAX_TEXTS
from infralab.costs.pricing import HOURS_PER_MONTH
from infralab.costs.serverless import LAMBDA_PRICE_PER_GB_S, LAMBDA_PRICE_PER_MILLION_REQUESTS

# AWS Lambda: memory sets the CPU. "At 1,769 MB, a function has the equivalent of one vCPU
# (one vCPU-second of credits per second)"; the share scales linearly with memory.
# Source: https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html (read 2026-11).
LAMBDA_MB_PER_VCPU = 1769
# Prices from the kit's price data (datasets/pricing/serverless_cpu.csv), read once by
# infralab.costs.pricing.
LAMBDA_USD_PER_GB_S = LAMBDA_PRICE_PER_GB_S
LAMBDA_USD_PER_MILLION_REQUESTS = LAMBDA_PRICE_PER_MILLION_REQUESTS


def validate_request(body: Any) -> list[str]:
    if not isinstance(body, dict) or "input" not in body:
        raise ValueError("bad body")
    texts = body["input"]
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or len(texts) > MAX_TEXTS:
        raise ValueError("bad input")
    for text in texts:
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHARS:
            raise ValueError("bad text")
    return texts


def load_summary(latencies_s: list[float], wall_s: float) -> dict[str, float] | None:
    if not latencies_s:
        return None
    ms = np.asarray(latencies_s, dtype=float) * 1e3
    out = {f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)}
    out["throughput_rps"] = len(latencies_s) / wall_s
    return out


def lambda_bill_at_memory(requests: int, cpu_seconds: float, memory_mb: float) -> dict[str, float]:
    share = memory_mb / LAMBDA_MB_PER_VCPU
    duration_s = cpu_seconds / min(share, 1.0)  # one thread cannot use more than one vCPU
    billed_ms = max(1, math.ceil(round(duration_s * 1000, 6)))
    gb_s = requests * billed_ms / 1000 * memory_mb / 1024
    usd = gb_s * LAMBDA_USD_PER_GB_S + requests / 1e6 * LAMBDA_USD_PER_MILLION_REQUESTS
    return {"vcpu_share": share, "billed_ms": billed_ms, "usd": usd}


def cold_start_slowdown(record: dict[str, float]) -> float:
    return record["total_s"] / record["warm_response_s"]


def throughput_rps(ok: int, wall_s: float) -> float:
    return ok / wall_s


def break_even_requests(hourly_usd: float, cpu_seconds: float, memory_mb: float) -> float:
    per_request = lambda_bill_at_memory(1_000_000, cpu_seconds, memory_mb)["usd"] / 1e6
    return hourly_usd * HOURS_PER_MONTH / per_request
