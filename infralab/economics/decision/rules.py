"""The decision rules, applied in the open: price the options for a scenario, pick one, and
say what would flip it."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from infralab.economics.costs import model as costs
from infralab.economics.costs.constants import APP_CLOUD
from infralab.economics.decision.bills import _extra_costs, constraints
from infralab.economics.decision.inputs import (
    BYTES_PER_TOKEN,
    ENGINEER_USD_PER_HOUR,
    HOURS_PER_FULL_TIME_MONTH,
    SOURCES,
    DecisionError,
    Input,
    Recommendation,
    Scenario,
    gather_inputs,
)
from infralab.economics.decision.memo import render_memo
from infralab.economics.decision.sensitivity import Flip, choice, sensitivity

# ------------------------------------------------------------------ pricing adapter


# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = ["resolve_quality", "with_plan_costs"]


def price_options(
    workload: costs.Workload, inputs: dict[str, Input]
) -> tuple[list[costs.Option], list[str]]:
    """Options for the LLM part of a workload, from ``infralab.economics.costs`` (the one place to swap).

    Every speed in ``inputs`` reaches the options that use it, so a what-if on one input (the
    sensitivity scan) reprices exactly those options."""
    speeds = {k: inputs[n] for k, n in SPEED_INPUTS.items() if n in inputs and inputs[n].value}
    anchor = inputs.get("gpu_anchor")
    return costs.llm_options(workload, option_set="all", speeds=speeds,
                             gpu_anchor_tokens_per_s=anchor.value if anchor else None)  # fmt: skip


# which input feeds which speed of ``costs.llm_options``
SPEED_INPUTS = {"cpu_decode": "generation", "cpu_prefill": "prefill",
                "gpu_decode": "gpu_generation", "gpu_prefill": "gpu_prefill"}  # fmt: skip


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
    pricer: Pricer = price_options
    allowed: bool = True  # False: no option met every constraint; the cheapest finite is shown
    # the scenario as given, before quality was settled from the measurement (``scenario`` is
    # the settled one): what-ifs start from it, so a moved measurement can change the verdict
    given: Scenario | None = None

    @functools.cached_property
    def sensitivity(self) -> list[Flip]:
        """How far each input must move (x0.25..x4) to change the choice, most sensitive first."""
        return sensitivity(self)

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
        return render_memo(self)

    def redecide(self, sc: Scenario, inputs: dict[str, Input]) -> Decision:
        """The same rules and pricer on a moved scenario or inputs, the choice only (what the
        sensitivity scan compares)."""
        return decide(sc, inputs, self.pricer, explain=False)

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


def _is_gpu(bill: costs.Bill) -> bool:
    return bill.kind in ("dedicated_gpu", "per_second_gpu")


def people_usd(sc: Scenario) -> tuple[float, str]:
    """Monthly people cost of running a self-hosted GPU model, and how it was computed.

    The team's ML engineers give ``ops_hours_per_month``; a team with none must hire, and a
    hire comes whole (a full-time month). Priced at the scenario's rate, else the sourced one.
    """
    rate = sc.engineer_usd_per_hour
    src = (
        "your rate"
        if rate is not None
        else f"{ENGINEER_USD_PER_HOUR.detail}: {ENGINEER_USD_PER_HOUR.source}"
    )
    rate = ENGINEER_USD_PER_HOUR.value if rate is None else rate
    hours = (
        sc.ops_hours_per_month
        if sc.ml_engineers > 0
        else max(sc.ops_hours_per_month, HOURS_PER_FULL_TIME_MONTH)
    )
    who = (
        "the team's ML engineers"
        if sc.ml_engineers > 0
        else "one full-time hire (the team has no ML engineer)"
    )
    return hours * rate, f"{hours:,.0f} h/month of {who} x {rate:g} USD/h ({src})"


def with_plan_costs(sc: Scenario, w: costs.Workload, b: costs.Bill) -> costs.Bill:
    """The option's bill plus what the plan adds: egress when the app's cloud sends prompts to
    another provider, people to run a self-hosted GPU."""
    from infralab.economics.costs import billing

    extra: dict[str, float] = {}
    if b.provider and b.provider != APP_CLOUD and math.isfinite(b.monthly_usd):
        gb = w.requests_per_month * w.tokens_per_request * BYTES_PER_TOKEN.value / 1e9
        extra["egress"] = billing.egress(gb, provider=APP_CLOUD).monthly_usd
    if _is_gpu(b):
        extra["people"] = people_usd(sc)[0]
    if not extra:
        return b
    return replace(
        b, monthly_usd=b.monthly_usd + sum(extra.values()), breakdown={**b.breakdown, **extra}
    )


def pick(sc: Scenario, bills: list[costs.Bill]) -> tuple[costs.Bill, dict[str, list[str]]]:
    """The cheapest bill the constraints allow, and why each option is out (empty: allowed).
    When none is allowed, the cheapest that can serve at all (the memo says so)."""
    excluded = {b.option: constraints(sc, b) for b in bills}
    allowed = [b for b in bills if not excluded[b.option]]
    allowed = allowed or [b for b in bills if math.isfinite(b.monthly_usd)]
    return min(allowed, key=lambda b: b.monthly_usd), excluded


def resolve_quality(sc: Scenario, inputs: dict[str, Input]) -> tuple[Scenario, str]:
    """Whether the 135M model is good enough, from its measured correctness against the
    scenario's bar (unless the scenario says so itself), and the sentence that explains it."""
    q = inputs.get("small_model_quality")
    if sc.small_model_ok is not None:
        verdict = "allowed" if sc.small_model_ok else "not allowed"
        return sc, f"Quality: the scenario says the 135M model is {verdict} (set by hand)."
    if q is None or q.value is None:
        return replace(sc, small_model_ok=False), (
            "Quality: the 135M model's correctness is not measured, so its options are not allowed."
        )
    ok = q.value >= sc.min_answer_correctness
    return replace(sc, small_model_ok=ok), (
        f"Quality: the 135M model answered {q.value:.0%} of the course's questions with every "
        f"key fact ({q.detail}); this product needs {sc.min_answer_correctness:.0%} "
        f"(assumed), so its options are {'allowed' if ok else 'not allowed'}. The 8B-class "
        "models are assumed to reach the bar: their quality is not measured offline."
    )


def label(sc: Scenario, best: costs.Bill) -> Recommendation:
    """The name follows the chosen bill: a managed API or serverless CPU is traditional cloud;
    a GPU on another provider while the app stays on the app's cloud is hybrid."""
    if not _is_gpu(best):
        return "traditional cloud"
    return "hybrid" if best.provider != APP_CLOUD and sc.app_on_cloud else "AI infrastructure"


def _generation_budget(
    sc: Scenario, w: costs.Workload, inputs: dict[str, Input]
) -> tuple[costs.Workload, list[str]]:
    """In a RAG product, retrieval eats into the latency budget before the model starts."""
    rag = inputs.get("rag")
    if not (sc.rag and rag and rag.value):
        return w, []
    retrieval_s = rag.value / 1000.0
    budget = max(w.latency_target_s - retrieval_s, 1e-3)
    reason = (
        f"Retrieval takes {retrieval_s * 1000:,.0f} ms ({rag.origin}: "
        f"{rag.source}, {rag.detail}), leaving "
        f"{budget:.2f} s of the {w.latency_target_s:g} s target for generation."
    )
    return replace(w, latency_target_s=budget), [reason]


def _exclusion_reasons(bills: list[costs.Bill], excluded: dict[str, list[str]]) -> list[str]:
    """One line per option the constraints rule out, so the memo says why each is gone."""
    return [
        f"Not allowed: {b.option} ({_money(b.monthly_usd)}/month): "
        + "; ".join(excluded[b.option])
        + "."
        for b in bills
        if excluded[b.option]
    ]


def _choice_reason(
    sc: Scenario, rec: Recommendation, best: costs.Bill, allowed: list[costs.Bill]
) -> str:
    """Why the chosen option wins, worded for its label (hybrid must be earned by the bill)."""
    if rec == "AI infrastructure":
        return f"Cheapest allowed option: {best.option} at {_money(best.monthly_usd)}/month."
    if rec != "hybrid":
        return (
            f"Cheapest allowed option: {best.option} at {_money(best.monthly_usd)}/month; it runs "
            "on ordinary cloud services (a managed API or serverless CPU)."
        )
    # the traditional-cloud side alone: everything on the app's cloud, or it plus a managed API
    same_cloud = [
        b
        for b in allowed
        if b is not best and (b.kind in ("api", "serverless_cpu") or b.provider == APP_CLOUD)
    ]
    alone = (f"the cheapest allowed traditional-cloud option ({APP_CLOUD} alone or with a managed API) costs "
             f"{_money(min(b.monthly_usd for b in same_cloud))}" if same_cloud
             else "no traditional-cloud option is allowed")  # fmt: skip
    return (
        f"Hybrid, earned by the split bill: {best.option} at {_money(best.monthly_usd)}/month "
        f"including egress and people, while {alone}; the app tier ({', '.join(sc.app_on_cloud)}) "
        f"stays on {APP_CLOUD} (moving it to {best.provider} is not priced: no app-hosting price in the data)."
    )


def decide(
    sc: Scenario,
    inputs: dict[str, Input] | None = None,
    pricer: Pricer = price_options,
    *,
    explain: bool = True,
) -> Decision:
    """Price every option for one scenario, keep those its constraints allow, pick the cheapest.

    ``explain=False`` skips the flip conditions and the costs beside the LLM (the sensitivity
    scan needs only the choice)."""
    if not isinstance(sc, Scenario):
        raise DecisionError("decide() needs a Scenario (e.g. decision.scenario('legal')).")
    inputs = gather_inputs() if inputs is None else inputs
    given = sc
    sc, quality_reason = resolve_quality(sc, inputs)
    w, retrieval_reasons = _generation_budget(sc, sc.workload, inputs)
    options, notes = pricer(w, inputs)
    bills = [with_plan_costs(sc, w, b) for b in costs.compare(options, w)]
    bills.sort(key=lambda b: (not math.isfinite(b.monthly_usd), b.monthly_usd))
    best, excluded = pick(sc, bills)
    allowed = [b for b in bills if not excluded[b.option]]
    reasons = [quality_reason, *retrieval_reasons, *_exclusion_reasons(bills, excluded)]
    people, how = people_usd(sc)
    reasons.append(f"People: self-hosted GPU options carry {_money(people)}/month: {how}.")
    if not allowed:
        allowed = [b for b in bills if math.isfinite(b.monthly_usd)]
        reasons.append("No option meets every constraint; the cheapest finite one is shown, and "
                       "the memo's flip conditions say what to change.")  # fmt: skip
    rec = label(sc, best)
    reasons.append(_choice_reason(sc, rec, best, allowed))
    return Decision(
        scenario=sc,
        recommendation=rec,
        inference_on=best.option,
        bills=bills,
        inputs=inputs,
        reasons=reasons,
        extra_costs=_extra_costs(sc, inputs) if explain else {},
        flips=_flips(sc, w, best, bills, allowed, options, []) if explain else [],
        notes=notes,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        pricer=pricer,
        allowed=not excluded[best.option],
        given=given,
    )


def choose(
    sc: Scenario, inputs: dict[str, Input], pricer: Pricer = price_options
) -> tuple[str, str]:
    """(chosen option, recommendation) alone: what the sensitivity scan compares."""
    return choice(decide(sc, inputs, pricer, explain=False))


def _money(x: float) -> str:
    return f"${x:,.0f}" if math.isfinite(x) else "cannot serve"


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
    if best.latency_s is not None and best.latency_s > 0.8 * w.latency_target_s:
        flips.append(
            f"Latency: {best.option} takes {best.latency_s:.2f} s of a {w.latency_target_s:.2f} s "
            "budget; a tighter target rules it out."
        )
    if sc.sensitive_data:
        flips.append(
            "Data residency: if prompts may go to a model provider, the APIs come back into the comparison."
        )
    if not sc.small_model_ok:
        flips.append(
            f"Quality: if the 135M model reached {sc.min_answer_correctness:.0%} correct answers "
            "(lesson 09 measures it), its CPU options would be allowed."
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
