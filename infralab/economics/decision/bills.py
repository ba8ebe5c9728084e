"""What a scenario allows and what it pays beside the LLM: the pieces of the decision rules
that the sensitivity scan re-applies on moved inputs, below both (``rules`` decides with
them, ``sensitivity`` explains with them)."""

from __future__ import annotations

import math

from infralab.economics.costs import model as costs
from infralab.economics.decision.inputs import Input, Scenario


def constraints(sc: Scenario, b: costs.Bill) -> list[str]:
    """Why a bill is not allowed under the scenario's explicit constraints (empty: allowed)."""
    why = []
    if not math.isfinite(b.monthly_usd):
        why.append("cannot serve this traffic")
    if not b.meets_latency:
        why.append("misses the latency target")
    if sc.sensitive_data and b.kind == "api":
        why.append("data residency: prompts would leave infrastructure you control")
    if b.model == costs.CPU_MODEL and not sc.small_model_ok:
        why.append(
            f"quality: the 135M model's measured correctness is below the "
            f"{sc.min_answer_correctness:.0%} this product needs"
        )
    if sc.demand != "stable" and "reserved" in b.option:
        why.append(f"demand is {sc.demand}: no commitment to a reserved GPU")
    return why


def _extra_costs(sc: Scenario, inputs: dict[str, Input]) -> dict[str, float | None]:
    """Costs beside the LLM: the embedding pipeline and the cloud app tier (None = not priced)."""
    from infralab.economics.costs import pricing

    out: dict[str, float | None] = {}
    days = costs.DAYS_PER_MONTH
    emb = inputs.get("embedding")
    if sc.rag and sc.chunks_embedded_per_day > 0:
        if emb and emb.value:
            per_vcpu_s, _ = pricing.serverless_cpu_price("gcp", "cloud_run_request_based", "cpu")
            cpu_s = sc.chunks_embedded_per_day * days / emb.value  # on the measuring machine
            out["embedding pipeline (Cloud Run, 2 vCPU)"] = cpu_s * 2 * per_vcpu_s
        else:
            out["embedding pipeline (Cloud Run, 2 vCPU)"] = None
    srv = inputs.get("serving")
    vcpus = inputs.get("serving_vcpus")
    label = "app API tier (Lambda at the measured CPU share)"
    if srv and srv.value:
        from infralab.economics.costs import billing, unit

        v = vcpus.value if vcpus and vcpus.value else 1.0
        mb = unit.lambda_memory_for(v)
        per_1m = billing.lambda_function(1e6, srv.value, mb).monthly_usd
        out[f"{label}, {mb:,} MB"] = sc.workload.requests_per_month / 1e6 * per_1m
    else:
        out[label] = None
    return out
