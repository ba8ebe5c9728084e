"""The decision rules, applied in the open: price the options for a scenario, pick one, and
say what would flip it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infralab.costs import model as costs
from infralab.decision.inputs import (
    IDLE_GPU_UTILIZATION,
    SENSITIVE_DATA_TOLERANCE,
    SOURCES,
    DecisionError,
    Input,
    Recommendation,
    Scenario,
    gather_inputs,
)

# ------------------------------------------------------------------ pricing adapter


def price_options(
    workload: costs.Workload, inputs: dict[str, Input]
) -> tuple[list[costs.Option], list[str]]:
    """Options for the LLM part of a workload, from ``infralab.costs`` (the one place to swap)."""
    tps = inputs["generation"].value
    return costs.llm_options(workload, cpu_tokens_per_s=tps, option_set="all")


Pricer = Callable[[costs.Workload, dict[str, Input]], tuple[list[costs.Option], list[str]]]


# ----------------------------------------------------------------------- the decision


@dataclass
class Decision:
    """Everything the memo says, as data (tests and the lab read it)."""

    scenario: Scenario
    recommendation: Recommendation
    inference_on: str
    bills: list[costs.Bill]
    inputs: dict[str, Input]
    reasons: list[str]
    flips: list[str]
    extra_costs: dict[str, float | None]
    notes: list[str] = field(default_factory=list)
    generated: str = ""

    @property
    def chosen(self) -> costs.Bill:
        return next(b for b in self.bills if b.option == self.inference_on)

    def sources(self) -> dict[str, list[str]]:
        """Input names grouped by where they came from."""
        out: dict[str, list[str]] = {s: [] for s in SOURCES}
        for i in self.inputs.values():
            out.setdefault(i.origin, []).append(i.name)
        return out

    def to_markdown(self) -> str:
        from infralab.decision.memo import render_memo

        return render_memo(self)

    def write(self, path: Path | str) -> Path:
        """Write the memo as Markdown; makes the folder; returns the path."""
        path = Path(path)
        if path.suffix.lower() not in (".md", ".markdown"):
            raise DecisionError(f"Write the memo to a .md file, not {path.name!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_markdown(), encoding="utf-8")
        return path

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _is_self_hosted(bill: costs.Bill) -> bool:
    return bill.kind in ("dedicated_gpu", "per_second_gpu", "serverless_cpu")


def _is_gpu(bill: costs.Bill) -> bool:
    return bill.kind in ("dedicated_gpu", "per_second_gpu")


def decide(
    sc: Scenario,
    inputs: dict[str, Input] | None = None,
    pricer: Pricer = price_options,
) -> Decision:
    """Apply the decision rules to one scenario with the given (or gathered) inputs."""
    if not isinstance(sc, Scenario):
        raise DecisionError("decide() needs a Scenario (e.g. decision.scenario('legal')).")
    inputs = gather_inputs() if inputs is None else inputs
    w = sc.workload
    reasons: list[str] = []
    # In a RAG product, retrieval eats into the latency budget before the model starts.
    if sc.rag and inputs.get("rag") and inputs["rag"].value:
        retrieval_s = inputs["rag"].value / 1000.0
        budget = max(w.latency_target_s - retrieval_s, 1e-3)
        reasons.append(
            f"Retrieval takes {retrieval_s * 1000:,.0f} ms ({inputs['rag'].origin}: "
            f"{inputs['rag'].source}, {inputs['rag'].detail}), leaving "
            f"{budget:.2f} s of the {w.latency_target_s:g} s target for generation."
        )
        w = replace(w, latency_target_s=budget)
    options, notes = pricer(w, inputs)
    bills = costs.compare(options, w)
    allowed: list[costs.Bill] = []
    for b in bills:
        if not math.isfinite(b.monthly_usd) or not b.meets_latency:
            continue
        if b.kind == "serverless_cpu" and not sc.small_model_ok:
            continue
        allowed.append(b)
    excluded: list[str] = []
    if not any(b.kind == "serverless_cpu" for b in allowed):
        cpu = [b for b in bills if b.kind == "serverless_cpu"]
        if cpu and not sc.small_model_ok:
            reasons.append(
                f"The CPU option ({cpu[0].option}, ${cpu[0].monthly_usd:,.0f}/month) runs a 135M-"
                "parameter model: cheap, but not the quality this product needs, so it is shown "
                "and not chosen (set small_model_ok=True if your lab 04 test says it is enough)."
            )
    if sc.ml_engineers == 0:
        excluded.append("self-hosted GPU")
        reasons.append(
            "Nobody on the team runs ML systems: self-hosting a model means owning its serving, "
            "scaling and on-call, so only managed options are considered."
        )
        allowed = [b for b in allowed if not _is_gpu(b)]
    if sc.demand == "volatile":
        excluded.append("dedicated GPU")
        reasons.append(
            "Demand is still volatile: rent flexibility first. Always-on GPUs are excluded "
            "until the traffic pattern is stable enough to optimise."
        )
        allowed = [b for b in allowed if b.kind != "dedicated_gpu"]
    if not sc.ai_is_core:
        reasons.append(
            "AI is a feature of this product, not the product: the app's own stack decides, and "
            "a managed API (or a small model on serverless CPU) keeps the feature off the "
            "team's critical path."
        )
        allowed = [b for b in allowed if b.kind in ("api", "serverless_cpu")] or allowed
    for b in allowed:
        if b.kind == "dedicated_gpu" and b.utilization is not None:
            if b.utilization < IDLE_GPU_UTILIZATION:
                reasons.append(
                    f"{b.option} would be busy only {b.utilization:.0%} of the time it is paid "
                    "for: an idle GPU (the article's margin trap)."
                )
                break
    if not allowed:
        allowed = [b for b in bills if math.isfinite(b.monthly_usd)]
        reasons.append(
            "No option meets every rule and the latency target; the cheapest finite one is "
            "shown, and the memo's flip conditions say what to change."
        )
    best = min(allowed, key=lambda b: b.monthly_usd)
    switched = False  # True when confidentiality, not price, picked the option
    if sc.sensitive_data and best.kind == "api":
        hosted = [b for b in allowed if _is_gpu(b)]
        if hosted:
            alt = min(hosted, key=lambda b: b.monthly_usd)
            if alt.monthly_usd <= best.monthly_usd * SENSITIVE_DATA_TOLERANCE:
                reasons.append(
                    f"The data is confidential: {alt.option} keeps prompts and inference logs in "
                    f"infrastructure you control for {alt.monthly_usd / best.monthly_usd:.2f}x the "
                    f"API's bill (within the {SENSITIVE_DATA_TOLERANCE:g}x the memo accepts)."
                )
                best = alt
                switched = True
    elif sc.sensitive_data:
        reasons.append(
            "The data is confidential, and the chosen option already keeps inference on "
            "infrastructure you control."
        )
    api_bills = [b for b in bills if b.kind == "api"]
    if best.kind == "api":
        rec: Recommendation = "traditional cloud"
        reasons.append(
            f"Cheapest option that passes every rule: {best.option} at "
            f"${best.monthly_usd:,.0f}/month. Everything runs on ordinary cloud services "
            "that call the model provider's API."
        )
    elif _is_gpu(best):
        rec = "hybrid" if sc.app_on_cloud else "AI infrastructure"
        cheaper_than = (
            f", against ${min(b.monthly_usd for b in api_bills):,.0f} for the cheapest API"
            if api_bills
            else ""
        )
        lead = (
            "Chosen for confidentiality" if switched else "Cheapest option that passes every rule"
        )
        reasons.append(f"{lead}: {best.option} at ${best.monthly_usd:,.0f}/month{cheaper_than}.")
        if sc.app_on_cloud:
            reasons.append(
                "Inference moves to AI infrastructure; "
                f"{', '.join(sc.app_on_cloud)} stay on traditional cloud, isolated from the "
                "model-serving stack."
            )
    else:
        rec = "traditional cloud"
        reasons.append(
            f"{best.option} runs on ordinary serverless CPU at ${best.monthly_usd:,.0f}/month."
        )
    extra = _extra_costs(sc, inputs)
    flips = _flips(sc, w, best, bills, allowed, options, excluded)
    return Decision(
        scenario=sc,
        recommendation=rec,
        inference_on=best.option,
        bills=bills,
        inputs=inputs,
        reasons=reasons,
        flips=flips,
        extra_costs=extra,
        notes=notes,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def _extra_costs(sc: Scenario, inputs: dict[str, Input]) -> dict[str, float | None]:
    """Costs beside the LLM: the embedding pipeline and the cloud app tier (None = not priced)."""
    from infralab.costs import pricing

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
        from infralab.costs import unit

        v = vcpus.value if vcpus and vcpus.value else 1.0
        mb = unit.lambda_memory_for(v)
        per_1m, _, _ = unit.lambda_per_million(srv.value, mb)
        out[f"{label}, {mb:,} MB"] = sc.workload.requests_per_month / 1e6 * per_1m
    else:
        out[label] = None
    return out


def _flips(
    sc: Scenario,
    w: costs.Workload,
    best: costs.Bill,
    bills: list[costs.Bill],
    allowed: list[costs.Bill],
    options: list[costs.Option],
    excluded: list[str],
) -> list[str]:
    """Conditions under which the recommendation would change, with numbers where possible."""
    flips: list[str] = []
    by_name = {o.name: o for o in options}
    rivals = [
        b
        for b in bills
        if b.option != best.option
        and math.isfinite(b.monthly_usd)
        and b.kind != "serverless_cpu"
        and (_is_gpu(b) != _is_gpu(best))
    ]
    if rivals and best.option in by_name:
        rival = min(rivals, key=lambda b: b.monthly_usd)
        be = costs.break_even(by_name[best.option], by_name[rival.option], w, low=10, high=1e8)
        if be.requests_per_day is not None:
            flips.append(f"Volume: {be.verdict} (now {w.requests_per_day:,.0f} requests/day).")
        else:
            flips.append(f"Volume: {be.verdict}.")
        if rival.kind == "dedicated_gpu" and rival.instances > 0 and best.kind == "api":
            price = best.monthly_usd / (rival.instances * costs.HOURS_PER_MONTH)
            flips.append(
                f"GPU price: {rival.option} would match the API at about ${price:,.2f} per "
                "instance-hour at today's volume."
            )
    if "dedicated GPU" in excluded:
        flips.append(
            "Demand: once traffic is stable and predictable, always-on GPUs come back "
            "into the comparison (re-run this memo)."
        )
    if "self-hosted GPU" in excluded:
        flips.append(
            "Team: with someone who can own model serving, self-hosted GPU options are considered."
        )
    if not sc.ai_is_core:
        flips.append(
            "Product: if inference becomes the product rather than a feature, latency, "
            "token cost and GPU contention become first-order and AI infrastructure is "
            "weighed on cost alone."
        )
    if best.latency_s is not None and best.latency_s > 0.8 * w.latency_target_s:
        flips.append(
            f"Latency: {best.option} takes {best.latency_s:.2f} s of a {w.latency_target_s:.2f} s "
            "budget; a tighter target rules it out."
        )
    if sc.sensitive_data and best.kind == "api":
        flips.append(
            "Governance: if clients forbid sending documents to a model provider, "
            "self-hosted inference is required whatever it costs."
        )
    return flips


def recommendation_sweep(
    sc: Scenario, volumes: list[float], inputs: dict[str, Input] | None = None
) -> list[dict[str, Any]]:
    """The recommendation and chosen option at several volumes (where the decision flips)."""
    inputs = gather_inputs() if inputs is None else inputs
    rows = []
    for v in volumes:
        d = decide(sc.with_traffic(v), inputs)
        rows.append(
            {
                "requests_per_day": v,
                "recommendation": d.recommendation,
                "inference_on": d.inference_on,
                "monthly_usd": float(d.chosen.monthly_usd),
            }
        )
    return rows
