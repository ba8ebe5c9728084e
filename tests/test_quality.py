"""The key-fact scorer on hand-made cases: numbers, units, currencies, paraphrases."""

import pytest

from infralab.economics.costs.per_question import api_usd_per_question, model_ladder
from infralab.engines.rag.answer_quality import (
    fact_present,
    score_answer,
    score_table,
    summarize_quality,
    tokens,
)
from infralab.engines.rag.corpus import load_questions


def test_tokens_normalise_numbers_and_units():
    assert tokens("3,100 tickets") == ["3100", "ticket"]
    assert tokens("a 30-day grace period") == ["a", "30", "day", "grace", "period"]
    assert tokens("25 per cent") == ["25", "%"]
    assert tokens("USD 9") == ["$", "9"]
    assert tokens("seven days") == ["7", "day"]
    assert tokens("2026-11-30") == ["2026-11-30"]


@pytest.mark.parametrize(
    ("fact", "answer"),
    [
        ("7 days", "Raw audio is deleted after 7 days."),
        ("7 days", "after seven days"),
        ("3,100 tickets", "About 3100 tickets were misrouted"),
        ("30-day grace period", "They get a grace period of 30 days."),
        ("25%", "a credit of 25 percent"),
        ("$8 per seat per month", "It costs 8 dollars per seat each month."),
        ("USD 9 per GB per month", "$9 per GB per month"),
        ("0.72", "a confidence of at least 0.72"),
        ("15 minutes", "it fires after 15 mins"),
        ("corvane-synth-v4", "use corvane-synth-v4."),
        ("Kestrel Labs", "the fallback is kestrel labs"),
        ("2026-11-30", "removed on 2026-11-30"),
    ],
)
def test_fact_accepted(fact, answer):
    assert fact_present(fact, answer)


@pytest.mark.parametrize(
    ("fact", "answer"),
    [
        ("7 days", "Raw audio is deleted after 8 days."),  # a paraphrase that changes the number
        ("7 days", "after one week"),  # same meaning to a reader, but not the stated fact
        ("7 days", "after 7 hours"),  # right number, wrong unit
        ("25%", "a credit of $25,000"),  # the digits appear, the value does not
        ("25%", "a credit of 2.5%"),
        ("$8 per seat per month", "8 seats per month"),  # the currency is lost
        ("3,100 tickets", "31,000 tickets"),
        ("Kestrel Labs", "the fallback is Kestrel"),  # a word is missing
        ("not charged", "they are charged"),  # negation is content
        ("2026-11-30", "removed on 2026-11-03"),
    ],
)
def test_fact_rejected(fact, answer):
    assert not fact_present(fact, answer)


def test_score_answer_needs_every_fact_and_grades_abstention():
    facts = ["3,100 tickets", "214 workspaces"]
    assert score_answer("3100 tickets in 214 workspaces", facts, True).correct
    half = score_answer("3100 tickets", facts, True)
    assert (half.facts_found, half.correct, half.outcome) == (1, False, "missing or wrong fact")
    wrong_abstain = score_answer(
        {"answer": "not in your documents", "abstained": True}, facts, True
    )
    assert wrong_abstain.outcome == "abstained wrongly"
    assert score_answer({"answer": "x", "abstained": True}, [], False).correct
    assert score_answer("The limit is 5.", [], False).outcome == "answered the unanswerable"
    with pytest.raises(ValueError, match="key fact"):
        score_answer("anything", [], True)


def test_every_corpus_fact_matches_itself():
    """The scorer accepts each question's facts stated verbatim (no fact is unmatchable)."""
    for q in load_questions():
        for fact in q.key_facts:
            assert fact_present(fact, f"The answer: {fact}."), (q.qid, fact)


def test_score_table_and_summary():
    qs = [q for q in load_questions() if q.tenant == "saas"][:2]
    answers = [" ".join(qs[0].key_facts), "not in your documents"]
    table = score_table(answers, qs, path="hand")
    assert table.correct.tolist() == [True, False]
    s = summarize_quality(table)
    assert s.loc[0, "correct"] == 0.5
    with pytest.raises(ValueError, match="answers"):
        score_table(answers[:1], qs)


def test_api_prices_come_from_the_price_file():
    usd, source = api_usd_per_question(1_000_000, 0, "gpt-4o-mini")
    assert usd == pytest.approx(0.15)
    assert "2026" in source or "2025" in source
    ladder = model_ladder(300, 30)
    assert ladder.usd_per_1k_questions.is_monotonic_increasing
    with pytest.raises(ValueError, match="no price"):
        api_usd_per_question(1, 1, "no-such-model")
