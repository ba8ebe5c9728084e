"""Drift and consistency: the same text through two embedders, and questions that move.

Three measurements, all on the kit's corpus and questions:

* *consistency*: fp32 and int8 builds of the same model give slightly different vectors;
  how different (cosine between the two vectors of one text), and whether that changes
  which documents a question retrieves (top-5 overlap, recall@5);
* *the rebuild rule*: an index holds vectors of one model; a query embedded by another
  model must not be searched against it. Mixing int8 and fp32 is nearly harmless (same
  model, rounding); a *different* model, here a stand-in with the same quality but its own
  coordinate system (the fp32 space under a fixed random rotation, which is what a
  retrained model looks like to the index), retrieves noise;
* *input drift*: users who do not know the company's vocabulary (questions with their
  product names and codes removed), and questions meant for another tenant; how recall and
  the best-similarity signal behind the abstention threshold move.

Search here is exact cosine in numpy over each tenant's chunks: the same ranking the
vector store computes, without building one store per combination.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infralab.engines.rag.rag_errors import RagError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "GPU_NOTE",
    "best_cosine_frame",
    "drift_report",
]


GPU_NOTE = (
    "CPU vs GPU: the recorded GPU run (datasets/benchmarks/embedding_gpu_h200.json) keeps "
    "throughput only, no vectors, so that pair is not measured here."
)


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between row i of ``a`` and row i of ``b`` (the same text, two embedders)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise RagError(
            f"shapes differ: {a.shape} vs {b.shape}; embed the same texts.",
            hint="Embed one list of texts with both embedders: row i of each must be the same text.",
        )
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.where(den == 0, 1.0, den)


def random_rotation(dim: int, seed: int = 0) -> np.ndarray:
    """An orthogonal ``dim`` x ``dim`` matrix: distances within the space are kept,
    coordinates are not (a stand-in for a retrained model of equal quality)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def search_docs(
    query_vecs: np.ndarray,
    tenants: Sequence[str],
    chunk_vecs: np.ndarray,
    chunk_tenants: np.ndarray,
    chunk_docs: np.ndarray,
    k: int = 10,
) -> tuple[list[list[str]], np.ndarray]:
    """Per query: document ranking (first chunk wins) inside its tenant, and best cosine."""
    rankings: list[list[str]] = []
    best = np.zeros(len(query_vecs))
    for i, (vec, tenant) in enumerate(zip(query_vecs, tenants, strict=True)):
        mask = chunk_tenants == tenant
        if not mask.any():
            raise RagError(
                f"no chunks for tenant {tenant!r}.",
                hint="Index that tenant's documents too, or leave its questions out.",
            )
        sims = chunk_vecs[mask] @ vec
        order = np.argsort(-sims, kind="stable")
        best[i] = float(sims[order[0]])
        docs = list(dict.fromkeys(chunk_docs[mask][order].tolist()))
        rankings.append(docs[:k])
    return rankings, best


def recall_at(rankings: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], k: int) -> float:
    """Mean recall@k over questions with gold documents."""
    vals = [len(set(r[:k]) & set(g)) / len(g) for r, g in zip(rankings, gold, strict=True) if g]
    if not vals:
        raise RagError(
            "no question with gold documents.",
            hint="recall needs answerable questions: pass questions whose gold list is not empty.",
        )
    return float(np.mean(vals))


def overlap_at(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]], k: int) -> float:
    """Mean share of top-k documents two rankings have in common (1.0: same set)."""
    return float(np.mean([len(set(x[:k]) & set(y[:k])) / k for x, y in zip(a, b, strict=True)]))


def _is_jargon(word: str, first: bool) -> bool:
    core = word.strip("?,.;:!()\"'`")
    if len(core) < 2:  # "I", "a": not jargon
        return False
    return any(ch.isdigit() for ch in core) or (core[0].isupper() and not first)


def strip_vocabulary(question: str) -> str:
    """The question without its product names, codes and numbers (capitalised words not
    at the start, words with digits): how a newcomer who lacks the jargon would ask."""
    words = question.split()
    kept = []
    for i, w in enumerate(words):
        if _is_jargon(w, i == 0):
            tail = w[len(w.rstrip("?,.;:!")) :]
            if tail and kept:
                kept[-1] += tail
        else:
            kept.append(w)
    return " ".join(kept) or question


def abstention_at(best_answerable: np.ndarray, best_other: np.ndarray, thr: float) -> dict:
    """At threshold ``thr``: share of answerable questions answered, of others abstained."""
    return {
        "answerable_answered": float(np.mean(best_answerable >= thr)),
        "others_abstained": float(np.mean(best_other < thr)) if len(best_other) else np.nan,
    }


@dataclass
class _DriftData:
    """The questions and chunks of one drift run, embedded by both builds (fp32 and int8)."""

    questions: list[Any]
    chunks: list[Any]
    c_ten: np.ndarray
    c_doc: np.ndarray
    q_ten: list[str]
    emb: dict[str, Any]
    cv: dict[str, np.ndarray]
    qv: dict[str, np.ndarray]
    ans: np.ndarray
    a_idx: np.ndarray
    g_ans: list[list[str]]

    def search(self, qvec: np.ndarray, tenants: Sequence[str], cvec: np.ndarray) -> tuple:
        """Rank each question's tenant documents by its vectors (:func:`search_docs`)."""
        return search_docs(qvec, tenants, cvec, self.c_ten, self.c_doc)

    def recall(self, rankings: list[list[str]]) -> float:
        """Recall@5 over the answerable questions only (the others have no gold document)."""
        return recall_at([rankings[i] for i in self.a_idx], self.g_ans, 5)


def _chosen_questions(
    questions: Sequence[Any] | None, tenants: Sequence[str] | None
) -> tuple[list[Any], list[Any]]:
    """The questions and documents to measure on (default all), cut to ``tenants``."""
    from infralab.engines.rag.corpus import load_documents, load_questions

    docs = load_documents()
    if questions is None:
        questions = load_questions(documents=docs)
    if tenants is not None:
        questions = [q for q in questions if q.tenant in set(tenants)]
        docs = [d for d in docs if d.tenant in set(tenants)]
    if not questions:
        raise RagError(
            "no questions to measure drift on.",
            hint="Check the tenants you passed: they must be tenants the questions belong to.",
        )
    return list(questions), docs


def _embedded(
    questions: list[Any], docs: list[Any], vectors: dict[str, tuple[Any, np.ndarray]] | None
) -> _DriftData:
    """Chunk the documents and embed chunks and questions with both builds (cached or given)."""
    from infralab.core.assets import cache_dir
    from infralab.engines.models.encoder import Embedder
    from infralab.engines.rag.chunking import chunk_documents
    from infralab.engines.rag.vector_store import embed_chunks

    chunks = chunk_documents(docs)
    q_text = [q.question for q in questions]
    gold = [list(q.gold_doc_ids) for q in questions]
    emb: dict[str, Any] = {}
    cv: dict[str, np.ndarray] = {}
    qv: dict[str, np.ndarray] = {}
    for variant in ("fp32", "int8"):
        emb[variant] = Embedder(variant=variant, provider="cpu", batch_size=32)
        if vectors and variant in vectors:
            cv[variant] = np.asarray(vectors[variant][1], np.float32)
        else:
            cv[variant] = embed_chunks(chunks, emb[variant], cache_dir() / "rag", variant)
        qv[variant] = np.asarray(emb[variant].embed(q_text), np.float32)
    ans = np.array([q.answerable for q in questions])
    a_idx = np.flatnonzero(ans)
    return _DriftData(
        questions, chunks, np.array([c.tenant for c in chunks]),
        np.array([c.doc_id for c in chunks]), [q.tenant for q in questions],
        emb, cv, qv, ans, a_idx, [gold[i] for i in a_idx],
    )  # fmt: skip


def _consistency(m: _DriftData, rank: dict[str, list[list[str]]]) -> dict[str, Any]:
    """Same text, two builds: how close the vectors are and how much the rankings agree."""
    chunk_cos = row_cosine(m.cv["fp32"], m.cv["int8"])
    query_cos = row_cosine(m.qv["fp32"], m.qv["int8"])
    return {
        "chunk_cosine_mean": float(chunk_cos.mean()),
        "chunk_cosine_min": float(chunk_cos.min()),
        "query_cosine_mean": float(query_cos.mean()),
        "query_cosine_min": float(query_cos.min()),
        "top5_overlap": overlap_at(rank["fp32"], rank["int8"], 5),
        "top1_same": float(
            np.mean([a[:1] == b[:1] for a, b in zip(rank["fp32"], rank["int8"], strict=True)])
        ),
        "recall_at_5_fp32": m.recall(rank["fp32"]),
        "recall_at_5_int8": m.recall(rank["int8"]),
        "gpu_note": GPU_NOTE,
    }


def _mixing(m: _DriftData) -> list[dict[str, Any]]:
    """The rebuild rule: recall for each query model x index model, a rotated 'new model' too."""
    qv, cv = m.qv, m.cv
    rot = random_rotation(cv["fp32"].shape[1]).astype(np.float32)
    new_q, new_c = qv["fp32"] @ rot, cv["fp32"] @ rot
    combos = [
        ("fp32", "fp32", qv["fp32"], cv["fp32"]),
        ("int8", "int8", qv["int8"], cv["int8"]),
        ("int8", "fp32", qv["int8"], cv["fp32"]),
        ("fp32", "int8", qv["fp32"], cv["int8"]),
        ("new model", "new model", new_q, new_c),
        ("new model", "fp32", new_q, cv["fp32"]),
    ]
    mixing = []
    for qm, im, qvec, cvec in combos:
        r, _ = m.search(qvec, m.q_ten, cvec)
        mixing.append({"query_model": qm, "index_model": im, "recall_at_5": m.recall(r)})
    return mixing


def _other_tenant_best(m: _DriftData, a_qs: list[Any]) -> np.ndarray:
    """Best cosine when each answerable question is asked to the next tenant in name order."""
    all_ten = sorted(set(m.c_ten.tolist()))
    if len(all_ten) <= 1:  # one tenant: there is no other tenant to ask, so that row is left out
        return np.zeros(0)
    other = [all_ten[(all_ten.index(q.tenant) + 1) % len(all_ten)] for q in a_qs]
    return m.search(m.qv["int8"][m.a_idx], other, m.cv["int8"])[1]


def _drift_rows(
    m: _DriftData,
    rank_int8: list[list[str]],
    best_int8: np.ndarray,
    stripped: tuple[list[list[str]], np.ndarray],
    o_best: np.ndarray,
    thr: float,
) -> list[dict[str, Any]]:
    """Recall and abstention at ``thr`` for questions as written, stripped, and misrouted."""
    s_rank, s_best = stripped
    una_best = best_int8[~m.ans]
    drift = [
        {
            "questions": "as written",
            "recall_at_5": m.recall(rank_int8),
            "median_best_cosine": float(np.median(best_int8[m.ans])),
            **abstention_at(best_int8[m.ans], una_best, thr),
        },
        {
            "questions": "names and codes removed",
            "recall_at_5": recall_at(s_rank, m.g_ans, 5),
            "median_best_cosine": float(np.median(s_best)),
            **abstention_at(s_best, una_best, thr),
        },
    ]
    if len(o_best):
        drift.append(
            {
                "questions": "asked to another tenant",
                "recall_at_5": None,  # its gold documents are in another tenant: not defined
                "median_best_cosine": float(np.median(o_best)),
                "answerable_answered": None,
                "others_abstained": float(np.mean(o_best < thr)),
            }
        )
    return drift


def drift_report(
    questions: Sequence[Any] | None = None,
    *,
    tenants: Sequence[str] | None = None,
    vectors: dict[str, tuple[Any, np.ndarray]] | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """All three measurements on ``questions`` (default: the whole set) restricted to
    ``tenants``; ``vectors`` may pass prebuilt ``{variant: (chunks, chunk_vectors)}``.
    ``threshold``: the abstention threshold to hold the drifted questions to; by default
    it is calibrated on these questions (few unanswerable ones make that unstable).
    Returns plain data (tables as lists of records) for the benchmark and the lesson."""
    from infralab.engines.rag.evaluate import calibrate_threshold

    m = _embedded(*_chosen_questions(questions, tenants), vectors)
    rank, best = {}, {}
    for v in ("fp32", "int8"):
        rank[v], best[v] = m.search(m.qv[v], m.q_ten, m.cv[v])
    consistency = _consistency(m, rank)
    mixing = _mixing(m)
    # input drift
    ans = m.ans
    if threshold is None:
        threshold = calibrate_threshold(best["int8"][ans], best["int8"][~ans])["threshold"]
    thr = float(threshold)
    a_qs = [m.questions[i] for i in m.a_idx]
    stripped = [strip_vocabulary(q.question) for q in a_qs]
    s_vec = np.asarray(m.emb["int8"].embed(stripped), np.float32)
    s_rank, s_best = m.search(s_vec, [q.tenant for q in a_qs], m.cv["int8"])
    o_best = _other_tenant_best(m, a_qs)
    drift = _drift_rows(m, rank["int8"], best["int8"], (s_rank, s_best), o_best, thr)
    examples = [{"before": q.question, "after": s}
                for q, s in zip(a_qs, stripped, strict=True) if s != q.question][:4]  # fmt: skip
    return {
        "questions": len(m.questions),
        "chunks": len(m.chunks),
        "threshold": thr,
        "consistency": consistency,
        "mixing": mixing,
        "input_drift": drift,
        "drift_examples": examples,
        "best_cosine": {
            "answerable": best["int8"][ans].round(4).tolist(),
            "unanswerable": best["int8"][~ans].round(4).tolist(),
            "names_removed": s_best.round(4).tolist(),
            "other_tenant": o_best.round(4).tolist(),
        },
    }


def best_cosine_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The report's best-cosine lists as one long table (for a chart)."""
    rows = [
        {"questions": name.replace("_", " "), "best_cosine": v}
        for name, vals in report["best_cosine"].items()
        for v in vals
    ]
    return pd.DataFrame(rows)
