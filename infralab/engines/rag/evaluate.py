"""Retrieval quality per mode (dense, lexical, hybrid) and the abstention threshold.

Metrics are computed on documents, not chunks: a question is answered by a document, and
two chunks of the same document should not count twice. Chunk rankings are collapsed to
document rankings in order of first appearance.

* recall@k: share of the gold documents found in the top k;
* MRR: 1 / rank of the first gold document (0 when none in the top 10);
* nDCG@10: rank-discounted gain with binary relevance, 1.0 when all gold documents lead.

Unanswerable questions have no gold documents; for them the question is whether the
system abstains, which the best dense similarity decides (see :func:`calibrate_threshold`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from infralab.engines.rag.corpus import Question
from infralab.engines.rag.hybrid import MODES, RagIndex, fuse_hits
from infralab.engines.rag.rag_errors import RagError
from infralab.engines.rag.vector_store import Hit

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "calibrate_threshold",
    "run_retrieval",
    "stage_percentiles",
    "summarize",
]


def doc_ranking(hits: Iterable[Hit]) -> list[str]:
    """Document ids in order of their first chunk."""
    return list(dict.fromkeys(h.doc_id for h in hits))


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    gold_set = set(gold)
    if not gold_set:
        raise RagError(
            "recall is undefined for a question without gold documents.",
            hint="Score recall on answerable questions only (those with gold documents).",
        )
    return len(gold_set & set(ranked[:k])) / len(gold_set)


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    gold_set = set(gold)
    for i, doc in enumerate(ranked[:k], start=1):
        if doc in gold_set:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    gold_set = set(gold)
    if not gold_set:
        raise RagError(
            "nDCG is undefined for a question without gold documents.",
            hint="Score nDCG on answerable questions only (those with gold documents).",
        )
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in gold_set)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold_set), k) + 1))
    return dcg / ideal


def run_retrieval(
    index: RagIndex,
    questions: Sequence[Question],
    modes: Sequence[str] = MODES,
    depth: int = 20,
    batch_size: int = 64,
) -> pd.DataFrame:
    """One row per (question, mode): ranked doc ids, metrics, best dense similarity."""
    for mode in modes:
        if mode not in MODES:
            raise RagError(
                f"mode must be among {MODES}, got {mode!r}.",
                hint="Use 'dense', 'lexical' or 'hybrid' (infralab.engines.rag.hybrid.MODES).",
            )
    texts = [q.question for q in questions]
    vectors = (
        np.concatenate(
            [
                np.asarray(index.embedder.embed(texts[i : i + batch_size]), dtype=np.float32)
                for i in range(0, len(texts), batch_size)
            ]
        )
        if texts
        else np.zeros((0, 384), np.float32)
    )
    rows: list[dict[str, Any]] = []
    for q, vec in tqdm(list(zip(questions, vectors, strict=True)), desc="retrieval", leave=False):
        # one dense and one lexical search per question; the hybrid fuses those same lists
        dense = index.store.search(q.tenant, vec, k=depth)
        lexical = index.lexical.search(q.tenant, q.question, k=depth)
        by_mode = {"dense": dense, "lexical": lexical, "hybrid": fuse_hits(dense, lexical, k=depth)}
        best = dense[0].score if dense else 0.0
        for mode in modes:
            ranked = doc_ranking(by_mode[mode])
            row: dict[str, Any] = {
                "qid": q.qid,
                "tenant": q.tenant,
                "mode": mode,
                "answerable": q.answerable,
                "best_cosine": best,
                "ranked": ranked[:10],
            }
            if q.answerable:
                for k in (1, 3, 5, 10):
                    row[f"recall@{k}"] = recall_at_k(ranked, q.gold_doc_ids, k)
                row["mrr"] = reciprocal_rank(ranked, q.gold_doc_ids)
                row["ndcg@10"] = ndcg_at_k(ranked, q.gold_doc_ids)
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(per_question: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics per mode over answerable questions (one row per mode)."""
    cols = ["recall@1", "recall@3", "recall@5", "recall@10", "mrr", "ndcg@10"]
    ans = per_question[per_question["answerable"]]
    if ans.empty:
        raise RagError(
            "no answerable questions to score.",
            hint="The question set needs some answerable questions (with gold documents).",
        )
    table = ans.groupby("mode", sort=False)[cols].mean()
    table["questions"] = ans.groupby("mode", sort=False).size()
    return table


def calibrate_threshold(
    answerable_scores: Sequence[float], unanswerable_scores: Sequence[float]
) -> dict[str, float]:
    """The best-cosine threshold that best separates answerable from unanswerable
    questions (balanced accuracy), and how often each side is then handled right."""
    a = np.asarray(answerable_scores, float)
    u = np.asarray(unanswerable_scores, float)
    if a.size == 0 or u.size == 0:
        raise RagError(
            "need both answerable and unanswerable questions to calibrate.",
            hint="Pass the scores of both kinds: a threshold separates one from the other.",
        )
    candidates = np.unique(np.concatenate([a, u]))
    best = (-1.0, 0.0, 0.0, 0.0)
    for t in candidates:
        answered = float(np.mean(a >= t))
        abstained = float(np.mean(u < t))
        score = (answered + abstained) / 2
        if score > best[0]:
            best = (score, float(t), answered, abstained)
    return {
        "threshold": best[1],
        "balanced_accuracy": best[0],
        "answerable_answered": best[2],
        "unanswerable_abstained": best[3],
    }


def abstention(per_question: pd.DataFrame, threshold: float) -> dict[str, float]:
    """At ``threshold``: share of answerable questions answered, unanswerable abstained."""
    first = per_question.drop_duplicates("qid")
    ans = first[first["answerable"]]["best_cosine"].to_numpy()
    una = first[~first["answerable"]]["best_cosine"].to_numpy()
    return {
        "threshold": float(threshold),
        "answerable_answered": float(np.mean(ans >= threshold)) if ans.size else float("nan"),
        "unanswerable_abstained": float(np.mean(una < threshold)) if una.size else float("nan"),
    }


# --- latency per stage ---------------------------------------
STAGES: tuple[str, ...] = ("embed_query", "search", "generate", "network")


def stage_percentiles(timings: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """p50 / p95 (ms) of each stage over many ``/ask`` responses' ``timings_ms``."""
    if not timings:
        raise RagError(
            "no timings: ask some questions first.",
            hint="Pass the timings_ms of /ask responses: ask the service a few questions first.",
        )
    rows = []
    for stage in (*STAGES, "total"):
        vals = [float(t[stage]) for t in timings if stage in t]
        if vals:
            rows.append(
                {
                    "stage": stage,
                    "p50_ms": float(np.percentile(vals, 50)),
                    "p95_ms": float(np.percentile(vals, 95)),
                    "n": len(vals),
                }
            )
    return pd.DataFrame(rows).set_index("stage")
