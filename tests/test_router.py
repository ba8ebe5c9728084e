"""The router's decisions on fixed inputs, the extractive path, and the routed mix."""

import pandas as pd
import pytest

from infralab.engines.rag.answer import NOT_FOUND
from infralab.engines.rag.router import extract, route, routed, sentences
from infralab.engines.rag.vector_store import Hit

AUDIO = Hit(
    "saas-001#0",
    "saas-001",
    "saas",
    "Retention",
    "# Retention\nRaw audio of recorded meetings is deleted after 7 days. Transcripts stay.",
    0.8,
)
BILLING = Hit(
    "saas-007#0", "saas-007", "saas", "Pricing", "The AI add-on costs $8 per seat per month.", 0.5
)


def test_sentences_drop_markdown_and_fragments():
    assert sentences(AUDIO.text) == ["Raw audio of recorded meetings is deleted after 7 days."]


def test_extract_picks_the_sentence_that_covers_the_question():
    ex = extract("How long is raw audio of recorded meetings kept?", [BILLING, AUDIO])
    assert ex.chunk_id == "saas-001#0"
    assert "7 days" in ex.text
    # raw, audio, recorded, meetings of: long, raw, audio, recorded, meetings, kept
    assert ex.overlap == pytest.approx(4 / 6)
    assert extract("How long?", []).text == NOT_FOUND


def test_route_abstains_on_weak_retrieval():
    assert route("anything about audio", [AUDIO], 0.2, min_score=0.35) == ("abstain", None)
    assert route("anything", [], 0.9, min_score=0.35)[0] == "abstain"


def test_route_takes_extractive_when_the_wording_matches():
    path, ex = route(
        "How long is raw audio of recorded meetings kept?", [AUDIO], 0.8, min_score=0.35
    )
    assert path == "extractive" and ex is not None and ex.chunk_id == "saas-001#0"


def test_route_pays_for_the_model_when_the_wording_does_not_match():
    path, _ = route("Why would we purge conversations early?", [AUDIO], 0.8, min_score=0.35)
    assert path == "local_llm"
    # the same question with the bar at 0 stays extractive
    assert route("Why purge conversations?", [AUDIO], 0.8, min_score=0.35, min_overlap=0)[0] == (
        "extractive"
    )
    with pytest.raises(ValueError, match="min_overlap"):
        route("q", [AUDIO], 0.8, min_score=0.3, min_overlap=2)


def _scored():
    rows = []
    for qid, r, ov, ext_ok, llm_ok in (
        ("a", "extractive", 0.8, True, False),
        ("b", "local_llm", 0.2, False, True),
        ("c", "abstain", 0.0, False, False),
    ):
        base = {"qid": qid, "route": r, "overlap": ov, "prompt_tokens": 0, "completion_tokens": 0}
        rows.append(
            base | {"path": "extractive", "correct": ext_ok, "latency_ms": 10.0, "usd_per_1k": 1.0}
        )
        rows.append(
            base | {"path": "local_llm", "correct": llm_ok, "latency_ms": 900.0, "usd_per_1k": 9.0}
        )
    return pd.DataFrame(rows)


def test_routed_mix_takes_each_questions_chosen_path():
    mix = routed(_scored()).set_index("qid")
    assert mix.chosen.to_dict() == {"a": "extractive", "b": "local_llm", "c": "extractive"}
    assert mix.correct.tolist() == [True, True, False]
    assert mix.usd_per_1k.tolist() == [1.0, 9.0, 1.0]
    everything_to_llm = routed(_scored(), min_overlap=1.01).set_index("qid")
    assert everything_to_llm.chosen.to_dict() == {
        "a": "local_llm",
        "b": "local_llm",
        "c": "extractive",
    }
