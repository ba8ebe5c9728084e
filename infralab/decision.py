"""The capstone: a startup scenario, the student's own numbers, and a one-page decision memo.

The source article ends with a handful of decision rules and three startup stories. This
module turns each story into a workload the cost model can price, feeds it the student's
measurements from lessons 02-06 (or the kit's recorded/default figures, labelled as such),
applies the rules in the open, and writes a Markdown memo: the recommendation (traditional
cloud, AI infrastructure or hybrid), the numbers behind it, and what would flip it.

Pricing goes through one small adapter, :func:`price_options`, so the decision logic does
not depend on how ``infralab.costs`` builds its options; pass another ``pricer`` to
:func:`decide` to swap it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from infralab.costs import model as costs

Recommendation = Literal["traditional cloud", "AI infrastructure", "hybrid"]
Demand = Literal["volatile", "growing", "stable"]
SOURCES = ("measured", "recorded", "default", "missing")

# A self-hosted option must be within this factor of the API's bill for sensitive data to
# tip the balance towards keeping inference in-house. A judgment call, stated in the memo.
SENSITIVE_DATA_TOLERANCE = 1.5
# Below this planned utilization a dedicated GPU is the "idle GPU" the article warns about.
IDLE_GPU_UTILIZATION = 0.3


class DecisionError(ValueError):
    """Bad scenario input; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Input:
    """One number the decision uses, with where it came from."""

    name: str
    value: float | None
    unit: str
    source: str  # measured | recorded | default | missing
    detail: str

    def shown(self) -> str:
        return "—" if self.value is None else f"{self.value:,.4g} {self.unit}"


@dataclass(frozen=True)
class Scenario:
    """A startup, described the way the article's decision rules need it.

    The traffic figures are *scenario assumptions* (a student edits them); prices and
    throughputs never come from here.
    """

    key: str
    title: str
    story: str
    workload: costs.Workload
    ai_is_core: bool
    demand: Demand
    ml_engineers: int
    sensitive_data: bool
    app_on_cloud: tuple[str, ...]
    rag: bool = False
    chunks_embedded_per_day: float = 0.0
    small_model_ok: bool = False
    article_choice: str = ""

    def __post_init__(self) -> None:
        if self.demand not in ("volatile", "growing", "stable"):
            raise DecisionError(
                f"demand must be 'volatile', 'growing' or 'stable', not {self.demand!r}"
            )
        if int(self.ml_engineers) != self.ml_engineers or self.ml_engineers < 0:
            raise DecisionError(
                f"ml_engineers must be a whole number >= 0, not {self.ml_engineers!r}"
            )
        if self.chunks_embedded_per_day < 0:
            raise DecisionError("chunks_embedded_per_day must be >= 0")
        if not isinstance(self.workload, costs.Workload):
            raise DecisionError("workload must be an infralab.costs.model.Workload")

    def with_traffic(self, requests_per_day: float) -> Scenario:
        """The same startup at another volume (for the 'what would flip it' sweep)."""
        return replace(self, workload=self.workload.at(requests_per_day))


SCENARIOS: dict[str, Scenario] = {
    "saas": Scenario(
        key="saas",
        title="B2B SaaS adding AI summaries",
        story=(
            "A business SaaS product with three engineers and nobody who runs ML systems adds "
            "two AI features: summaries of meetings and automatic labels on support tickets."
        ),
        workload=costs.Workload(
            requests_per_day=2_000,
            tokens_in=2_000,
            tokens_out=250,
            latency_target_s=10.0,
            traffic="business_hours",
        ),
        ai_is_core=False,
        demand="volatile",
        ml_engineers=0,
        sensitive_data=False,
        app_on_cloud=("web app", "auth", "billing", "database", "ticket store"),
        article_choice="traditional cloud plus external AI APIs",
    ),
    "legal": Scenario(
        key="legal",
        title="AI-native legal assistant",
        story=(
            "A start-up sells law firms contract review: clause extraction and questions "
            "answered from each firm's own private documents, long inputs, tight latency."
        ),
        workload=costs.Workload(
            requests_per_day=40_000,
            tokens_in=8_000,
            tokens_out=500,
            latency_target_s=5.0,
            traffic="business_hours",
        ),
        ai_is_core=True,
        demand="stable",
        ml_engineers=2,
        sensitive_data=True,
        app_on_cloud=("web app", "auth", "billing", "document storage"),
        rag=True,
        chunks_embedded_per_day=200_000,
        article_choice="hybrid: AI infrastructure for inference, cloud for the app",
    ),
    "web3": Scenario(
        key="web3",
        title="Web3 analytics with AI agents",
        story=(
            "A crypto-native team indexes wallets, DeFi positions and governance votes, and "
            "lets users question that data through agents; traffic jumps with market events."
        ),
        workload=costs.Workload(
            requests_per_day=200_000,
            tokens_in=3_000,
            tokens_out=300,
            latency_target_s=8.0,
            traffic="spiky",
        ),
        ai_is_core=True,
        demand="growing",
        ml_engineers=2,
        sensitive_data=False,
        app_on_cloud=("chain indexers", "API", "auth", "storage"),
        rag=True,
        chunks_embedded_per_day=1_000_000,
        article_choice="cloud for indexing, APIs and storage; AI infrastructure for inference",
    ),
}


def scenario(key: str) -> Scenario:
    """One of the article's three scenarios by key ('saas', 'legal', 'web3')."""
    if key not in SCENARIOS:
        raise DecisionError(f"Unknown scenario {key!r}; choose one of: {', '.join(SCENARIOS)}.")
    return SCENARIOS[key]


# ------------------------------------------------------------------------ the inputs


def _from_measured(name: str, m: costs.Measured | None, missing_hint: str) -> Input:
    if m is None:
        return Input(name, None, "", "missing", missing_hint)
    return Input(name, float(m.value), m.unit, m.source, m.detail)


def gather_inputs() -> dict[str, Input]:
    """The four measurements the capstone uses, each labelled with its origin and file.

    Each is a field of a typed result (``infralab.results``): the student's saved run if it
    is valid, else the kit's recorded run, never a key guessed from a free-form file.
    """
    from infralab import results

    inputs = {
        "generation": _from_measured(
            "CPU decode speed (lesson 04)",
            costs.measured_throughput("generation"),
            "run lesson 04 to measure it",
        ),
        "embedding": _from_measured(
            "CPU embedding throughput (lesson 03)",
            costs.measured_throughput("embedding"),
            "run lesson 03 to measure it",
        ),
        "serving": _from_measured(
            "API time per request on CPU (lesson 02)",
            costs.measured_duration_s("serving"),
            "run lesson 02 to measure it; the app tier is then not priced",
        ),
    }
    try:
        fig = results.load("serving").figure("cpu_vcpus")
        inputs["serving_vcpus"] = Input(
            "CPU the request was measured with (lesson 02)",
            fig.value,
            fig.unit,
            fig.origin,
            f"{fig.source}, {fig.detail}",
        )
    except (FileNotFoundError, results.ResultError, OSError):
        pass
    try:
        fig = results.load("rag").figure("retrieval_ms")
        inputs["rag"] = Input(
            "retrieval latency (lesson 06)",
            fig.value,
            fig.unit,
            fig.origin,
            f"{fig.source}, {fig.detail}",
        )
    except (FileNotFoundError, results.ResultError, OSError):
        inputs["rag"] = Input(
            "retrieval latency (lesson 06)", None, "ms", "missing", "run lesson 06 to measure it"
        )
    return inputs


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
            out.setdefault(i.source, []).append(i.name)
        return out

    def to_markdown(self) -> str:
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
            f"Retrieval takes {retrieval_s * 1000:,.0f} ms ({inputs['rag'].source}: "
            f"{inputs['rag'].detail}), leaving "
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


# ----------------------------------------------------------------------------- memo


def _money(x: float | None) -> str:
    if x is None:
        return "not priced"
    if not math.isfinite(x):
        return "cannot serve"
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}"


def render_memo(d: Decision) -> str:
    """The one-page Markdown memo."""
    sc, w = d.scenario, d.scenario.workload
    src = d.sources()
    measured = ", ".join(src["measured"]) or "none"
    fallback = [f"{i.name} ({i.source})" for i in d.inputs.values() if i.source != "measured"]
    lines = [
        f"# Decision memo: {sc.title}",
        "",
        f"*{d.generated} · infralab capstone · inputs measured on this machine: {measured}; "
        f"not measured here: {', '.join(fallback) or 'none'}.*",
        "",
        f"**Recommendation: {d.recommendation}.** LLM inference on **{d.inference_on}** "
        f"({_money(d.chosen.monthly_usd)}/month)"
        + (f"; {', '.join(sc.app_on_cloud)} on traditional cloud." if sc.app_on_cloud else "."),
        "",
        f"{sc.story}",
        "",
        "## The workload (scenario assumptions)",
        "",
        "| requests/day | tokens in / out | traffic | latency target | demand | ML engineers | confidential data |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {w.requests_per_day:,.0f} | {w.tokens_in:,.0f} / {w.tokens_out:,.0f} | {w.traffic} | "
        f"{w.latency_target_s:g} s | {sc.demand} | {sc.ml_engineers} | "
        f"{'yes' if sc.sensitive_data else 'no'} |",
        "",
        "## Inputs and where they came from",
        "",
        "| input | value | source | detail |",
        "| --- | --- | --- | --- |",
    ]
    for i in d.inputs.values():
        lines.append(f"| {i.name} | {i.shown()} | **{i.source}** | {i.detail} |")
    lines += [
        "",
        "*measured*: your run of the lesson on this machine (your results folder); *recorded*: "
        "the kit's own benchmark (the datasets/benchmarks file named); *default*: a sourced "
        "figure; *missing*: not measured, so not priced.",
        "",
        "## The numbers (LLM part, per month)",
        "",
        "| option | monthly | per 1k requests | utilization | latency | meets target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in d.bills:
        per1k = b.usd_per_1k_requests
        util = "—" if b.utilization is None else f"{b.utilization:.0%}"
        lat = "—" if b.latency_s is None else f"{b.latency_s:.2f} s"
        mark = " ←" if b.option == d.inference_on else ""
        lines.append(
            f"| {b.option}{mark} | {_money(b.monthly_usd)} | "
            f"{'—' if per1k is None or not math.isfinite(per1k) else f'${per1k:,.3f}'} | {util} | "
            f"{lat} | {'yes' if b.meets_latency else 'no'} |"
        )
    if d.extra_costs:
        parts = [
            f"{k}: {_money(v)}/month" if v is not None else f"{k}: not priced (no measurement)"
            for k, v in d.extra_costs.items()
        ]
        lines += ["", "Beside the LLM: " + "; ".join(parts) + "."]
    lines += ["", "## Why", ""] + [f"- {r}" for r in d.reasons]
    lines += ["", "## What would flip it", ""] + [f"- {f}" for f in d.flips]
    lines += [
        "",
        "## Not in these numbers",
        "",
        "- People: MLOps and on-call time for anything self-hosted; optimisation work on batching and routing.",
        "- Traffic: data egress between clouds, and the latency of crossing them on every request.",
        "- Governance: access control on the model and the vector store, prompt and inference-log retention, audit.",
        "",
        "Prices: " + "; ".join(d.notes),
    ]
    if sc.article_choice:
        lines += ["", f"*The source article's choice for this scenario: {sc.article_choice}.*"]
    return "\n".join(lines) + "\n"


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


def explorer(sc: Scenario | str = "legal", inputs: dict[str, Input] | None = None) -> Any:
    """Controls for volume, demand, team and confidentiality; the decision redraws as they move.

    Returns an ``ipywidgets.VBox`` whose ``decision`` attribute holds the latest
    :class:`Decision` (so code, and tests, can read what the widgets show).
    """
    import ipywidgets as w
    import pandas as pd
    from IPython.display import Markdown, display

    base = scenario(sc) if isinstance(sc, str) else sc
    inputs = gather_inputs() if inputs is None else inputs
    volume = w.FloatLogSlider(
        value=base.workload.requests_per_day,
        base=10,
        min=2,
        max=7,
        step=0.05,
        description="requests/day",
        readout_format=",.0f",
        continuous_update=False,
        style={"description_width": "initial"},
    )
    demand = w.Dropdown(
        options=["volatile", "growing", "stable"], value=base.demand, description="demand"
    )
    team = w.IntSlider(
        value=base.ml_engineers,
        min=0,
        max=5,
        description="ML engineers",
        style={"description_width": "initial"},
    )
    secret = w.Checkbox(value=base.sensitive_data, description="confidential data")
    out = w.Output()
    box = w.VBox([w.HBox([volume, demand]), w.HBox([team, secret]), out])

    def redraw(_: Any = None) -> None:
        current = replace(
            base.with_traffic(volume.value),
            demand=demand.value,
            ml_engineers=team.value,
            sensitive_data=secret.value,
        )
        d = decide(current, inputs)
        box.decision = d
        table = pd.DataFrame([b.as_row() for b in d.bills])[
            ["option", "monthly_usd", "usd_per_1k_requests", "utilization", "meets_latency"]
        ]
        out.clear_output(wait=True)
        with out:
            display(
                Markdown(
                    f"**{d.recommendation}**: LLM inference on **{d.inference_on}** "
                    f"({_money(d.chosen.monthly_usd)}/month at {volume.value:,.0f} requests/day)"
                )
            )
            display(table.round(3))

    for control in (volume, demand, team, secret):
        control.observe(redraw, names="value")
    redraw()
    return box
