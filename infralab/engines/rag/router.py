"""Model routing: send each question down the cheapest path that is likely to answer it.

Paths the kit can run offline:

* ``extractive``: no model at all. The answer is the retrieved sentence that shares the
  most content words with the question (the top chunks' sentences, best first). It costs
  the retrieval only, and it cannot invent a number: it can only pick the wrong sentence.
* ``local_llm``: the kit's chat server (SmolLM2-135M) writes a one-sentence answer from
  the top chunks, through :class:`~infralab.engines.rag.answer.Generator` and its output check.

And one the kit can only price: ``api_llm``, a hosted model at the sourced per-token price
(datasets/pricing/llm_api.csv). Its quality cannot be measured offline, so every table that
shows it says "not measured".

The rule (:func:`route`): abstain when retrieval is weak (no call at all); take the
extractive answer when its best sentence covers at least ``min_overlap`` of the question's
content words (a factoid whose wording is in the document); otherwise pay for the model.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infralab.engines.rag.answer import NOT_FOUND, SENTENCE_RE, content_words
from infralab.engines.rag.rag_errors import RagError
from infralab.engines.rag.vector_store import Hit

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "run_paths",
]


PATHS: tuple[str, ...] = ("extractive", "local_llm", "api_llm")
DEFAULT_MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class Extract:
    """The extractive path's answer: a sentence, where it came from, how well it matched."""

    text: str
    chunk_id: str
    overlap: float  # share of the question's content words found in the sentence

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "citations": [self.chunk_id] if self.chunk_id else [],
            "abstained": not self.chunk_id,
            "overlap": self.overlap,
        }


def sentences(text: str) -> list[str]:
    """Sentences (and list items / lines) of a chunk, stripped of Markdown markers."""
    out = []
    for s in SENTENCE_RE.split(text):
        s = re.sub(r"^[#>*\-\s|]+", "", s).strip()
        if len(s.split()) >= 3:
            out.append(s)
    return out


def extract(question: str, hits: Sequence[Hit], chunks: int = 3) -> Extract:
    """The sentence of the top ``chunks`` hits that covers most of the question's content
    words; ties go to the better-ranked chunk. Abstains (empty chunk id) without hits."""
    q = content_words(question)
    best = Extract(NOT_FOUND, "", 0.0)
    if not q:
        return best
    for rank, hit in enumerate(hits[:chunks]):
        for s in sentences(hit.text):
            share = len(q & content_words(s)) / len(q)
            # a small bonus for rank keeps ties on the better chunk, never flips a real gap
            if share - 0.01 * rank > best.overlap + 1e-9 or not best.chunk_id:
                best = Extract(s, hit.chunk_id, share)
    return best


def route(
    question: str,
    hits: Sequence[Hit],
    relevance: float,
    *,
    min_score: float,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> tuple[str, Extract | None]:
    """Which path answers ``question``: ``"abstain"``, ``"extractive"`` or ``"local_llm"``;
    returns the extract too when one was computed (so the caller need not redo it)."""
    if not 0 <= min_overlap <= 1:
        raise RagError(
            f"min_overlap is a share in [0, 1], got {min_overlap}.",
            hint="min_overlap is a share between 0 and 1: write 50 % as 0.5.",
        )
    if not hits or relevance < min_score:
        return "abstain", None
    ex = extract(question, hits)
    if ex.chunk_id and ex.overlap >= min_overlap:
        return "extractive", ex
    return "local_llm", ex


def abstained_answer(relevance: float, min_score: float) -> dict[str, Any]:
    """The body a routed abstention returns (same shape as ``/ask``'s)."""
    return {
        "answer": NOT_FOUND,
        "citations": [],
        "abstained": True,
        "reasons": [f"best similarity {relevance:.2f} is below {min_score:.2f}"],
    }


# --- running the paths over a question set ----------------------------------------------


def _retrieve(index: Any, q: Any, *, k: int, mode: str) -> tuple[list[Hit], float, float]:
    """Embed the question and search once: (hits, best relevance, retrieval time in ms, measured now)."""
    import numpy as np

    t0 = time.perf_counter()
    vec = np.asarray(index.embedder.embed([q.question]), dtype=np.float32)[0]
    hits = index.search(q.tenant, q.question, vec, mode=mode, k=k)
    relevance = index.relevance(q.tenant, vec)
    return hits, relevance, (time.perf_counter() - t0) * 1e3


def _extractive_answer(
    question: str, hits: list[Hit], relevance: float, min_score: float
) -> tuple[str, Extract | None, dict[str, Any], float]:
    """Route the question, then answer it extractively (or abstain): (route, extract, body, ms)."""
    t1 = time.perf_counter()
    decision, ex = route(question, hits, relevance, min_score=min_score)
    if decision == "abstain":
        body = abstained_answer(relevance, min_score)
    else:
        body = (ex or extract(question, hits)).to_dict()
    return decision, ex, body, (time.perf_counter() - t1) * 1e3


def _llm_row(
    generator: Any, question: str, hits: list[Hit], relevance: float, retrieval_ms: float
) -> dict[str, Any]:
    """The local LLM's answer on the same hits, timed now, with the tokens it used."""
    t2 = time.perf_counter()
    ans = generator.answer(question, hits, relevance)
    return {
        "path": "local_llm",
        "body": ans.to_dict(),
        "retrieval_ms": retrieval_ms,
        "answer_ms": (time.perf_counter() - t2) * 1e3,
        "prompt_tokens": ans.usage.get("prompt_tokens", 0),
        "completion_tokens": ans.usage.get("completion_tokens", 0),
    }


def run_paths(
    index: Any,
    questions: Sequence[Any],
    *,
    min_score: float,
    k: int = 3,
    generator: Any = None,
    llm_qids: set[str] | None = None,
    mode: str = "hybrid",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Answer every question by the extractive path, and the ``llm_qids`` ones (all when
    None) by the local LLM too when a ``generator`` is given. One row per (question, path)
    with the answer body, its retrieval and answer time (measured now, ms), and tokens.

    Retrieval is done once per question and shared by both paths, as a router would."""
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    for q in tqdm(list(questions), desc="answering", leave=False, disable=not progress):
        hits, relevance, retrieval_ms = _retrieve(index, q, k=k, mode=mode)
        decision, ex, ext_body, extract_ms = _extractive_answer(
            q.question, hits, relevance, min_score
        )
        base = {
            "qid": q.qid,
            "tenant": q.tenant,
            "relevance": relevance,
            "route": decision,
            "overlap": ex.overlap if ex is not None else 0.0,
        }
        rows.append(
            base
            | {
                "path": "extractive",
                "body": ext_body,
                "retrieval_ms": retrieval_ms,
                "answer_ms": extract_ms,
                "prompt_tokens": 0,
                "completion_tokens": 0,
            }
        )
        if generator is not None and (llm_qids is None or q.qid in llm_qids):
            rows.append(base | _llm_row(generator, q.question, hits, relevance, retrieval_ms))
    return rows


def routed(scored: Any, min_overlap: float = DEFAULT_MIN_OVERLAP) -> Any:
    """The routed mix on questions that both paths answered: per question the row of the
    path :func:`route`'s rule picks (abstentions cost only the extractive path's retrieval).
    ``min_overlap`` re-decides the route from the stored overlap, to sweep the rule."""
    import pandas as pd

    both = scored.pivot_table(index="qid", columns="path", values="latency_ms", aggfunc="size")
    qids = set(both.dropna().index) if "local_llm" in both else set()
    ext = scored[(scored.path == "extractive") & scored.qid.isin(qids)].set_index("qid")
    llm = scored[(scored.path == "local_llm") & scored.qid.isin(qids)].set_index("qid")
    rows = []
    for qid, e in ext.iterrows():
        if e["route"] == "abstain":
            pick = e
        else:
            pick = e if e["overlap"] >= min_overlap else llm.loc[qid]
        rows.append(pick.to_dict() | {"qid": qid, "chosen": pick["path"], "path": "routed"})
    return pd.DataFrame(rows)


def path_summary(scored: Any) -> Any:
    """Quality, latency and cost per path (means over the questions each path answered)."""
    if scored.empty:
        raise RagError(
            "nothing scored.", hint="Pass the table score_rows returns (after run_paths)."
        )
    g = scored.groupby("path", sort=False)
    table = g.agg(
        questions=("qid", "size"),
        correct=("correct", "mean"),
        p50_latency_ms=("latency_ms", "median"),
        p95_latency_ms=("latency_ms", lambda s: s.quantile(0.95)),
        usd_per_1k_questions=("usd_per_1k", "mean"),
        prompt_tokens=("prompt_tokens", "mean"),
        completion_tokens=("completion_tokens", "mean"),
    )
    return table
