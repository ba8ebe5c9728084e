"""Drift measurements on synthetic vectors: consistency, the rebuild rule, input drift."""

import numpy as np
import pytest

from infralab.engines.rag.drift import (
    abstention_at,
    overlap_at,
    random_rotation,
    recall_at,
    row_cosine,
    search_docs,
    strip_vocabulary,
)


def _space(n_docs=30, dim=32, seed=1):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n_docs, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    q = c + 0.2 * rng.standard_normal(c.shape).astype(np.float32)  # a question near its doc
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ten = np.array(["a"] * n_docs)
    docs = np.array([f"d{i}" for i in range(n_docs)])
    gold = [[f"d{i}"] for i in range(n_docs)]
    return q, c, ten, docs, gold


def test_row_cosine():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [2.0, 0.0]])
    assert row_cosine(a, b).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="shapes"):
        row_cosine(a, b[:1])


def test_rotation_keeps_the_space_but_breaks_mixing():
    q, c, ten, docs, gold = _space()
    rot = random_rotation(c.shape[1])
    assert np.allclose(rot @ rot.T, np.eye(c.shape[1]), atol=1e-5)
    same, _ = search_docs(q, ["a"] * len(q), c, ten, docs)
    new, _ = search_docs(q @ rot, ["a"] * len(q), c @ rot, ten, docs)
    mixed, _ = search_docs(q @ rot, ["a"] * len(q), c, ten, docs)
    assert recall_at(same, gold, 1) == recall_at(new, gold, 1) > 0.9  # a rebuilt index works
    assert recall_at(mixed, gold, 5) < 0.5  # a new model's queries on the old index: noise
    assert overlap_at(same, new, 5) == 1.0


def test_small_perturbation_keeps_rankings():
    q, c, ten, docs, gold = _space()
    noisy = c + 0.01 * np.random.default_rng(2).standard_normal(c.shape).astype(np.float32)
    a, _ = search_docs(q, ["a"] * len(q), c, ten, docs)
    b, _ = search_docs(q, ["a"] * len(q), noisy, ten, docs)
    assert overlap_at(a, b, 1) > 0.9
    assert row_cosine(c, noisy).min() > 0.99


def test_search_stays_in_tenant_and_reports_best_cosine():
    q, c, _, docs, _ = _space(n_docs=4)
    ten = np.array(["a", "a", "b", "b"])
    ranking, best = search_docs(q[2:3], ["b"], c, ten, docs)
    assert set(ranking[0]) <= {"d2", "d3"}
    assert best[0] == pytest.approx(float(np.max(c[2:] @ q[2])))
    with pytest.raises(ValueError, match="tenant"):
        search_docs(q[:1], ["zz"], c, ten, docs)


def test_strip_vocabulary_removes_names_and_codes():
    assert strip_vocabulary("Which vendor is the fallback for Meridian?") == (
        "Which vendor is the fallback for?"
    )
    assert strip_vocabulary("What dataset replaces corvane-synth-v4 in v2?") == (
        "What dataset replaces in?"
    )
    assert strip_vocabulary("Who may put a hold?") == "Who may put a hold?"


def test_abstention_at_threshold():
    r = abstention_at(np.array([0.5, 0.6, 0.2]), np.array([0.1, 0.4]), 0.3)
    assert r == {"answerable_answered": pytest.approx(2 / 3), "others_abstained": 0.5}


@pytest.mark.slow
def test_one_tenant_has_no_other_tenant_to_ask():
    """With one tenant the "asked to another tenant" row would ask the same tenant again."""
    from infralab.engines.rag import drift
    from infralab.engines.rag.corpus import load_questions

    tenant = sorted({q.tenant for q in load_questions()})[0]
    report = drift.drift_report(tenants=[tenant])
    rows = [row["questions"] for row in report["input_drift"]]
    assert rows == ["as written", "names and codes removed"]
    assert report["best_cosine"]["other_tenant"] == []
    assert set(drift.best_cosine_frame(report)["questions"]) <= {
        "answerable", "unanswerable", "names removed"}  # fmt: skip
