"""Lab 06's references: the key -> tenant map, recall@k, reciprocal rank fusion, the placement
choice, the summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from infralab.engines.rag import evaluate as ev
from infralab.engines.rag import tenancy

RRF_K0 = 60

tenant_for_key = tenancy.tenant_for_key


def recall_at_k(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    wanted = set(gold)
    return len(wanted & set(ranked[:k])) / len(wanted)


def rrf(rankings: Sequence[Sequence[str]], k0: int = RRF_K0) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k0 + rank)
    return [item for item, _ in sorted(scores.items(), key=lambda kv: -kv[1])]


def choose_placement(plan: pd.DataFrame, budget_ms: float) -> Any:
    fits = plan[plan["latency_ms"] <= budget_ms]
    return None if fits.empty else fits["usd_per_1k_questions"].idxmin()


def summary(per_question: pd.DataFrame) -> pd.DataFrame:
    """The per-mode table the student's must match (the kit's own summary)."""
    return ev.summarize(per_question)
