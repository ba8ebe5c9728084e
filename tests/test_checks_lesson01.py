"""Lesson 01's self-checks: synonyms accepted, hints that never list the answers, no fixed peak."""

from __future__ import annotations

import pytest

from infralab.tooling.checks import CheckFailed
from infralab.tooling.checks import lesson01 as q
from infralab.tooling.checks.references import lesson01 as key


@pytest.mark.parametrize("answer", ["b", " B ", "b)", "(b)", "how busy the GPUs you pay for are (utilization)"])  # fmt: skip
def test_a_letter_in_any_reasonable_form(answer):
    assert "Right" in q.check_answer("cost_driver", answer)


def test_a_wrong_answer_hint_does_not_give_the_letter():
    with pytest.raises(CheckFailed) as err:
        q.check_answer("cost_driver", "a")
    assert "b)" not in err.value.hint and "'b'" not in err.value.hint


@pytest.mark.parametrize(
    "phrases",
    [
        ["model drift", "retrieval quality", "token latency"],
        ["data drift", "hallucinations", "time to first token"],
        ["Concept drift over time", "RAG quality", "context length limits"],
    ],
)
def test_reliability_accepts_synonyms(phrases):
    assert "Right" in q.check_reliability(phrases)


def test_reliability_hint_never_lists_the_accepted_answers():
    with pytest.raises(CheckFailed) as err:
        q.check_reliability(["cost", "speed"])
    text = err.value.problem + err.value.hint
    for accepted in key.RELIABILITY_EXTRAS:
        assert accepted not in text


def test_reliability_refuses_classic_concerns_and_repeats():
    with pytest.raises(CheckFailed, match="classic cloud"):
        q.check_reliability(["backups", "model drift", "hallucination"])
    with pytest.raises(CheckFailed, match="three"):  # one concept named three times
        q.check_reliability(["drift", "data drift", "model drift"])


def test_share_of_peak_uses_the_cores_of_this_machine(monkeypatch):
    import os

    per_core = q.this_machine_peak_gflops() / len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert q.this_machine_peak_gflops() == pytest.approx(per_core * 16)
    measured = 300.0  # a 16-core laptop beats a 2-core peak: no failure for that
    assert "share of peak" in q.check_share_of_peak(measured / (per_core * 16), measured)
    with pytest.raises(CheckFailed, match="percentage"):
        q.check_share_of_peak(100 * measured / (per_core * 16), measured)
    assert "share of peak" in q.check_share_of_peak(0.5, 100.0, peak_gflops=200.0)
