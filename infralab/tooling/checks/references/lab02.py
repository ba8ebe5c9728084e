"""Lab 02's references: request validation, the load summary, Lambda at a memory size."""

from __future__ import annotations

from typing import Any

import numpy as np

from infralab.economics.costs import billing, pricing
from infralab.tooling.checks.endpoint_request_judges import MAX_CHARS, MAX_TEXTS

# AWS Lambda: memory sets the CPU, one vCPU at 1,769 MB (datasets/pricing/serverless_limits.csv,
# from https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The bill
# itself is the kit's one Lambda formula, infralab.economics.costs.billing.lambda_function.
LAMBDA_MB_PER_VCPU = pricing.serverless_fact("aws", "lambda", "memory_mb_per_vcpu")[0]


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
    # one thread measured on one vCPU: billing.lambda_function scales it to the memory's share
    one = billing.lambda_function(1, cpu_seconds, memory_mb, measured_vcpus=1.0)
    bill = billing.lambda_function(requests, cpu_seconds, memory_mb, measured_vcpus=1.0)
    billed_ms = round(one.breakdown["billed_duration_s"] * 1000)
    return {"vcpu_share": memory_mb / LAMBDA_MB_PER_VCPU, "billed_ms": billed_ms,
            "usd": bill.monthly_usd}  # fmt: skip


def cold_start_slowdown(record: dict[str, float]) -> float:
    return record["total_s"] / record["warm_response_s"]


def throughput_rps(ok: int, wall_s: float) -> float:
    return ok / wall_s


def break_even_requests(hourly_usd: float, cpu_seconds: float, memory_mb: float) -> float:
    # requests a month at which the flat bill (billing.hourly) equals Lambda's linear one
    per_request = billing.lambda_function(1_000_000, cpu_seconds, memory_mb,
                                          measured_vcpus=1.0).monthly_usd / 1e6  # fmt: skip
    return billing.hourly(hourly_usd).monthly_usd / per_request


def batch_plan(
    arrivals: list[float], max_batch_size: int, max_wait_s: float
) -> list[tuple[float, int]]:
    """(time, size) of each model call a micro-batcher makes when the model answers at once:
    a call goes when ``max_batch_size`` items wait, or when the oldest has waited
    ``max_wait_s``, whichever comes first; items are taken oldest first."""
    pending = sorted(float(t) for t in arrivals)
    plan, i = [], 0
    while i < len(pending):
        deadline = pending[i] + max_wait_s
        j = i
        while j < len(pending) and j - i < max_batch_size and pending[j] <= deadline:
            j += 1
        size = j - i
        plan.append((pending[j - 1] if size == max_batch_size else deadline, size))
        i = j
    return plan
