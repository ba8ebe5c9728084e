"""What one question costs: on a hosted API at its list price, and on the kit's own path.

Why here and not in the engines: retrieval and generation measure (``infralab.engines.rag``);
economics prices what they measured, every price with its source (datasets/pricing). Lesson 09
prices each answered question; ``python -m infralab.tooling.bench.quality`` records the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from infralab.economics.costs.placement import serverless_usd_per_1k
from infralab.economics.costs.pricing import CostError, load_prices
from infralab.engines.rag.answer_quality import score_answer

__all__ = ["api_usd_per_question", "model_ladder", "score_rows"]


def score_rows(rows: Sequence[dict[str, Any]], questions: Sequence[Any]) -> Any:
    """:func:`infralab.engines.rag.router.run_paths` rows with their grade (answer_quality.score_answer) and their cost.

    Cost per question, each with its origin in ``cost_origin``: the measured CPU time of the
    path (retrieval + answer) priced at the published AWS Lambda GB-second and request
    prices (datasets/pricing/serverless_cpu.csv, 2 GB). For ``local_llm`` the generation
    ran on the kit's chat server on the same CPU, so the same price applies to it."""
    by_qid = {q.qid: q for q in questions}
    out = []
    for r in rows:
        q = by_qid[r["qid"]]
        s = score_answer(r["body"], q.key_facts, q.answerable)
        ms = r["retrieval_ms"] + r["answer_ms"]
        out.append(
            {k: v for k, v in r.items() if k != "body"}
            | {
                "answer": r["body"].get("answer", ""),
                "answerable": q.answerable,
                "correct": s.correct,
                "abstained": s.abstained,
                "facts_found": s.facts_found,
                "facts_total": s.facts_total,
                "outcome": s.outcome,
                "latency_ms": ms,
                "usd_per_1k": serverless_usd_per_1k(ms),
                "cost_origin": "measured CPU time x AWS Lambda list price (2 GB)",
            }
        )
    return pd.DataFrame(out)


# --- cost per question, every price with its source -------------------------------------


def api_usd_per_question(
    prompt_tokens: float, completion_tokens: float, model: str
) -> tuple[float, str]:
    """What one question costs on a hosted API ``model`` at the kit's sourced per-token
    prices (datasets/pricing/llm_api.csv); returns (usd, 'provider model, source, date')."""
    prices = load_prices("llm_api")
    row = prices[prices.model == model]
    if row.empty:
        raise CostError(
            f"no price for model {model!r}; known: {', '.join(prices.model.astype(str))}.",
            hint="Use a model from that list; datasets/pricing/llm_api.csv holds the prices.",
        )
    r = row.iloc[0]
    usd = (
        prompt_tokens * float(r.usd_per_1m_input_tokens)
        + completion_tokens * float(r.usd_per_1m_output_tokens)
    ) / 1e6
    return usd, f"{r.provider} {r.model} list price ({r.source}, {r.as_of})"


def model_ladder(prompt_tokens: float, completion_tokens: float) -> pd.DataFrame:
    """Per-question price of the same prompt on every hosted model in the price data,
    cheapest first: the bill of a bigger model, with its source."""
    rows = []
    for model in load_prices("llm_api").model.astype(str):
        usd, source = api_usd_per_question(prompt_tokens, completion_tokens, model)
        rows.append({"model": model, "usd_per_1k_questions": usd * 1000, "source": source})
    return pd.DataFrame(rows).sort_values("usd_per_1k_questions").reset_index(drop=True)
