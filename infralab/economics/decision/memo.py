"""The one-page Markdown memo of a decision: recommendation, inputs with their origins,
the bills, and what would flip it."""

from __future__ import annotations

import math

from infralab.economics.decision.sensitivity import HIGH, LOW, _num, why_still

# ``d`` below is a :class:`infralab.economics.decision.rules.Decision`; rules imports this module to
# render its memo, so this one reads the decision's fields and never imports rules.

# ----------------------------------------------------------------------------- memo


def money(x: float | None) -> str:
    if x is None:
        return "not priced"
    if not math.isfinite(x):
        return "cannot serve"
    return f"${x:,.0f}" if x >= 100 else f"${x:,.2f}"


def _egress(d) -> float:  # type: ignore[no-untyped-def]
    return float(d.chosen.breakdown.get("egress", 0.0))


def _heading_lines(d) -> list[str]:  # type: ignore[no-untyped-def]
    """Title, where the inputs came from, and the recommendation: what a reader sees first."""
    sc = d.scenario
    measured = ", ".join(d.sources()["measured"]) or "none"
    fallback = [f"{i.name} ({i.origin})" for i in d.inputs.values() if i.origin != "measured"]
    return [
        f"# Decision memo: {sc.title}",
        "",
        f"*{d.generated} · infralab capstone · inputs measured on this machine: {measured}; "
        f"not measured here: {', '.join(fallback) or 'none'}.*",
        "",
        f"**Recommendation: {d.recommendation}.** LLM inference on **{d.inference_on}** "
        f"({money(d.chosen.monthly_usd)}/month)"
        + (f"; {', '.join(sc.app_on_cloud)} on traditional cloud." if sc.app_on_cloud else "."),
        "",
        f"{sc.story}",
        "",
    ]


def _workload_lines(d) -> list[str]:  # type: ignore[no-untyped-def]
    """The scenario's assumptions as one table row, so the reader can check what was priced."""
    sc, w = d.scenario, d.scenario.workload
    return [
        "## The workload (scenario assumptions)",
        "",
        "| requests/day | tokens in / out | traffic | latency target | answers correct | demand | ML engineers | confidential data |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {w.requests_per_day:,.0f} | {w.tokens_in:,.0f} / {w.tokens_out:,.0f} | {w.traffic} | "
        f"{w.latency_target_s:g} s | >= {sc.min_answer_correctness:.0%} | {sc.demand} | "
        f"{sc.ml_engineers} | {'yes' if sc.sensitive_data else 'no'} |",
        "",
    ]


def _input_lines(d) -> list[str]:  # type: ignore[no-untyped-def]
    """Every input with its origin (measured, recorded, default, missing) and source."""
    lines = [
        "## Inputs and where they came from",
        "",
        "| input | value | source | detail |",
        "| --- | --- | --- | --- |",
    ]
    for i in d.inputs.values():
        where = f"{i.source}, {i.detail}" if i.detail else i.source
        lines.append(f"| {i.name} | {i.shown()} | **{i.origin}** | {where} |")
    return lines + [
        "",
        "*measured*: your run of the lesson on this machine (your results folder); *recorded*: "
        "the kit's own benchmark (the datasets/benchmarks file named); *default*: a sourced "
        "figure; *missing*: not measured, so not priced.",
        "",
    ]


def _bill_lines(d) -> list[str]:  # type: ignore[no-untyped-def]
    """The monthly bill of every LLM option (the chosen one marked), then the costs beside it."""
    lines = [
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
            f"| {b.option}{mark} | {money(b.monthly_usd)} | "
            f"{'—' if per1k is None or not math.isfinite(per1k) else f'${per1k:,.3f}'} | {util} | "
            f"{lat} | {'yes' if b.meets_latency else 'no'} |"
        )
    if d.extra_costs:
        parts = [
            f"{k}: {money(v)}/month" if v is not None else f"{k}: not priced (no measurement)"
            for k, v in d.extra_costs.items()
        ]
        lines += ["", "Beside the LLM: " + "; ".join(parts) + "."]
    return lines


def _scope_lines(d) -> list[str]:  # type: ignore[no-untyped-def]
    """What the numbers include and leave out, so nobody reads the bill as the whole cost."""
    return [
        "",
        "## In these numbers, and not",
        "",
        "- In: people for every self-hosted GPU option (the *people* line above: ops hours a "
        "month at the engineer rate, a whole hire when the team has none), and egress when "
        f"prompts leave the app's cloud for another provider's GPU or API ({money(_egress(d))}/month "
        "for the chosen option).",
        "- Not in: people for the app tier and for the managed options (integration, prompt work); "
        "the latency of crossing clouds on every request (lesson 06 simulates it, it is not "
        "measured here); volume discounts and committed-use rates (list prices only).",
        "- Not in: governance: access control on the model and the vector store, prompt and "
        "inference-log retention, audit.",
        "",
        "Prices: " + "; ".join(d.notes),
    ]


def render_memo(d) -> str:  # type: ignore[no-untyped-def]
    """The one-page Markdown memo."""
    lines = _heading_lines(d) + _workload_lines(d) + _input_lines(d) + _bill_lines(d)
    lines += ["", "## Why", ""] + [f"- {r}" for r in d.reasons]
    lines += ["", "## What would flip it", ""] + [f"- {f}" for f in d.flips]
    lines += ["", *sensitivity_lines(d)]
    lines += _scope_lines(d)
    if d.scenario.article_choice:
        lines += [
            "",
            f"*The source article's choice for this scenario: {d.scenario.article_choice}.*",
        ]
    return "\n".join(lines) + "\n"


def sensitivity_lines(d) -> list[str]:  # type: ignore[no-untyped-def]
    """The memo's sensitivity section: measurements first (which decide, which cannot and
    why), then the assumptions that flip the choice, with their flip values."""
    flips = d.sensitivity
    rng = f"x{LOW:g}..x{HIGH:g}"
    measured = [f for f in flips if f.is_measured]
    assumed = [f for f in flips if not f.is_measured]
    out = [
        "## How far each input must move",
        "",
        f"Each input, measured or assumed, multiplied by x{LOW:g} to x{HIGH:g} (a scan, then a "
        f"bisection to the flip value); the choice now is {d.inference_on}.",
        "",
    ]
    deciding = [f for f in measured if f.flips]
    if deciding:
        out.append("**Measurements that decide** (re-measure them before you commit):")
        out += [f"- {f.sentence()}" for f in deciding]
    elif measured:
        out.append(f"**No measurement changes this choice within {rng}.**")
    still = [f for f in measured if not f.flips]
    if still:
        out += ["", f"Measurements that cannot change it within {rng}, and why:"]
        out += [f"- {f.name} ({f.origin}, {_num(f.value)} {f.unit}): {why_still(d, f)}."
                for f in still]  # fmt: skip
    moving = [f for f in assumed if f.flips]
    out += ["", "**Assumptions and published figures that flip it:**" if moving
            else f"No assumption changes the choice within {rng}."]  # fmt: skip
    out += [f"- {f.sentence()}" for f in moving]
    fixed = [f.name for f in assumed if not f.flips]
    if fixed:
        out += ["", f"Cannot change it within {rng}: " + ", ".join(fixed) + "."]
    return out
