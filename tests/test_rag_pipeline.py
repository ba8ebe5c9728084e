"""Corpus loading, chunking, fusion, metrics and retrieval of infralab.engines.rag (no model needed)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from infralab.engines.models.standin import HashEmbedder
from infralab.engines.rag.chunking import chunk_documents, split_words
from infralab.engines.rag.corpus import (
    CorpusError,
    load_documents,
    load_questions,
    parse_front_matter,
)
from infralab.engines.rag.evaluate import (
    calibrate_threshold,
    doc_ranking,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    run_retrieval,
    summarize,
)
from infralab.engines.rag.hybrid import RagIndex, reciprocal_rank_fusion
from infralab.engines.rag.lexical import LexicalIndex
from infralab.engines.rag.vector_store import Hit, TenantScopeError, TenantVectorStore

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "rag_corpus"
QUESTIONS = DATA / "rag_questions.csv"


@pytest.fixture(scope="module")
def docs():
    return load_documents(CORPUS)


@pytest.fixture(scope="module")
def index(docs):
    return RagIndex.build(docs, HashEmbedder(), size=20, overlap=5)


def test_fixture_corpus_loads(docs):
    assert {d.tenant for d in docs} == {"saas", "lawfirm", "web3"}
    assert [d.doc_id for d in docs if d.injection] == ["law-003"]
    qs = load_questions(QUESTIONS, docs)
    assert len(qs) == 10 and sum(not q.answerable for q in qs) == 2
    assert qs[2].key_facts == ("full disk", "WAL")


def test_front_matter_quotes_and_errors():
    meta, body = parse_front_matter('---\ntitle: "A: b"\ntenant: saas\n---\nHello')
    assert meta == {"title": "A: b", "tenant": "saas"} and body == "Hello"
    with pytest.raises(CorpusError, match="no front matter"):
        parse_front_matter("Hello")
    with pytest.raises(CorpusError, match="never closed"):
        parse_front_matter("---\ntitle: x\n")


def test_misfiled_document_is_an_error(tmp_path):
    (tmp_path / "saas").mkdir()
    (tmp_path / "saas" / "x.md").write_text("---\ntenant: web3\ndoc_id: x\ntitle: t\n---\nbody\n")
    with pytest.raises(CorpusError, match="leak across tenants"):
        load_documents(tmp_path)


def test_gold_doc_of_another_tenant_is_an_error(tmp_path, docs):
    bad = tmp_path / "q.csv"
    bad.write_text(
        "qid,tenant,question,gold_doc_ids,key_facts,answerable\nq,saas,Why?,law-001,x,true\n"
    )
    with pytest.raises(CorpusError, match="belongs to 'lawfirm'"):
        load_questions(bad, docs)


def test_split_words_windows_and_overlap():
    text = " ".join(str(i) for i in range(10))
    assert split_words(text, 4, 1) == ["0 1 2 3", "3 4 5 6", "6 7 8 9"]
    assert split_words(text, 20, 5) == [text]
    assert split_words("", 4, 1) == []
    with pytest.raises(ValueError, match="overlap"):
        split_words(text, 4, 4)
    with pytest.raises(ValueError, match="size"):
        split_words(text, 0, 0)


def test_chunks_cover_every_word_and_keep_tenant(docs):
    chunks = chunk_documents(docs, size=7, overlap=2)
    for doc in docs:
        mine = [c for c in chunks if c.doc_id == doc.doc_id]
        assert all(c.tenant == doc.tenant for c in mine)
        covered = set()
        for c in mine:
            covered.update(c.text.split())
        assert covered == set(doc.text.split())
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_rrf_by_hand():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k0=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert [i for i, _ in reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]])][:1] == ["a"]


def test_metrics_by_hand():
    ranked = ["d3", "d1", "d7", "d2"]
    assert recall_at_k(ranked, ["d1", "d2"], 2) == 0.5
    assert recall_at_k(ranked, ["d1", "d2"], 4) == 1.0
    assert reciprocal_rank(ranked, ["d7"]) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, ["zz"]) == 0.0
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, ["d1", "d2"]) == pytest.approx(expected)
    assert ndcg_at_k(["d1"], ["d1"]) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(ranked, [], 5)
    hits = [
        Hit("a#0", "a", "t", "", "", 1),
        Hit("a#1", "a", "t", "", "", 1),
        Hit("b#0", "b", "t", "", "", 1),
    ]
    assert doc_ranking(hits) == ["a", "b"]


def test_calibrate_threshold_separates():
    out = calibrate_threshold([0.6, 0.7, 0.8], [0.1, 0.2, 0.65])
    assert out["threshold"] == pytest.approx(0.6)
    assert out["answerable_answered"] == 1.0
    assert out["unanswerable_abstained"] == pytest.approx(2 / 3)


def test_lexical_finds_exact_words_per_tenant(docs):
    lex = LexicalIndex(chunk_documents(docs, 30, 5))
    hits = lex.search("web3", "Frankfurt backup node", k=3)
    assert hits[0].doc_id == "web3-002"
    assert lex.search("saas", "Frankfurt", k=3) == []  # the word is only in web3's corpus
    with pytest.raises(TenantScopeError):
        lex.search("acme", "anything")


def test_store_layouts_agree(docs):
    chunks = chunk_documents(docs, 20, 5)
    emb = HashEmbedder()
    vecs = emb.embed([c.embed_text for c in chunks])
    shared = TenantVectorStore(layout="shared")
    per = TenantVectorStore(layout="per_tenant")
    shared.add(chunks, vecs)
    per.add(chunks, vecs)
    q = emb.embed(["refund"])[0]
    for tenant in ("saas", "lawfirm", "web3"):
        a = [h.chunk_id for h in shared.search(tenant, q, k=4)]
        b = [h.chunk_id for h in per.search(tenant, q, k=4)]
        assert a == b
    assert shared.count() == per.count() == len(chunks)
    with pytest.raises(ValueError, match="layout"):
        TenantVectorStore(layout="flat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        shared.add(chunks, vecs[:1])


def test_store_folder_persists(tmp_path, docs):
    chunks = chunk_documents(docs, 20, 5)
    vecs = HashEmbedder().embed([c.embed_text for c in chunks])
    store = TenantVectorStore(tmp_path / "qdrant")
    store.add(chunks, vecs)
    store.close()
    assert any((tmp_path / "qdrant").iterdir())


def test_bad_filter_and_k_get_clear_errors(index):
    vec = index.embed_query("x")
    with pytest.raises(ValueError, match="valid Qdrant filter"):
        index.search("saas", "x", vec, mode="dense", query_filter={"must": "everything"})
    with pytest.raises(ValueError, match="JSON object"):
        index.search("saas", "x", vec, mode="dense", query_filter=["tenant"])
    with pytest.raises(ValueError, match="k must"):
        index.store.search("saas", vec, k=0)
    with pytest.raises(ValueError, match="mode"):
        index.search("saas", "x", vec, mode="magic")
    with pytest.raises(ValueError, match="empty"):
        index.retrieve("saas", "  ")


def test_caller_filter_narrows_lexical_too(index):
    flt = {"must": [{"key": "doc_id", "match": {"value": "saas-001"}}]}
    hits = index.search(
        "saas", "refund password", index.embed_query("refund"), mode="hybrid", query_filter=flt
    )
    assert hits and {h.doc_id for h in hits} == {"saas-001"}


def test_run_retrieval_scores_modes(index, docs):
    qs = load_questions(QUESTIONS, docs)
    table = run_retrieval(index, qs)
    assert set(table["mode"]) == {"dense", "lexical", "hybrid"}
    summary = summarize(table)
    assert list(summary.index) == ["dense", "lexical", "hybrid"]
    # BM25 on this tiny corpus finds most gold documents: the words match exactly
    assert summary.loc["lexical", "recall@5"] >= 0.75
    assert (
        (
            (summary[["recall@5", "mrr", "ndcg@10"]] >= 0)
            & (summary[["recall@5", "mrr", "ndcg@10"]] <= 1)
        )
        .all()
        .all()
    )
    assert summary["questions"].eq(8).all()
    assert np.isfinite(table["best_cosine"]).all()
