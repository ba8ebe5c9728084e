"""Typed results: save/load round trips, labelled fallbacks, converters for recorded runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infralab.core import results


@pytest.fixture
def mine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "mine"))
    return tmp_path / "mine"


def test_save_and_load_round_trip_with_origin_and_file(mine: Path) -> None:
    rec = results.ServingResult(throughput_rps=120.0, mean_duration_s=0.004, cpu_vcpus=2)
    path = results.save(rec)
    assert path == mine / "serving.json"
    saved = json.loads(path.read_text())
    assert saved["schema"] == results.SCHEMA_VERSION and saved["kind"] == "serving"
    assert saved["machine"]["cpus"] and saved["date"]
    got = results.load("serving")
    assert isinstance(got, results.ServingResult)
    assert got.throughput_rps == 120.0 and got.origin == "measured"
    assert got.source == str(path) and got.note == ""
    fig = got.figure("mean_duration_s")
    assert (fig.value, fig.unit, fig.origin) == (0.004, "s", "measured")
    assert str(path) in fig.label()


def test_load_test_result_keeps_its_levels(mine: Path) -> None:
    rec = results.LoadTestResult(
        throughput_rps=300.0,
        mean_duration_s=0.01,
        levels=[{"concurrency": 1, "throughput_rps": 90.0, "p50_ms": 10.0, "p95_ms": 12.0}],
        target="my app",
    )
    results.save(rec)
    got = results.load("loadtest")
    assert isinstance(got, results.LoadTestResult)
    assert got.levels[0].concurrency == 1 and got.levels[0].p95_ms == 12.0


def test_no_saved_result_falls_back_to_the_recorded_run(mine: Path) -> None:
    for kind in ("serving", "embedding", "generation", "rag"):
        got = results.load(kind)
        assert got.origin == "recorded"
        assert got.source == f"datasets/benchmarks/{kind}.json"
        assert "recorded run" in got.note
    # lab 02 has no recorded run of its own: lesson 02's recorded run stands in
    assert results.load("loadtest").kind == "serving"
    with pytest.raises(results.ResultError, match="No saved"):
        results.load("serving", fallback=False)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"name": "serving", "data": {"throughput_rps": 5}}', "older kit"),
        ('{"schema": 1, "kind": "serving"}', "schema 1"),
        (
            '{"schema": 2, "kind": "serving", "throughput_rps": -1, "mean_duration_s": 1}',
            "positive",
        ),
        ('{"schema": 2, "kind": "serving", "throughput_rps": "fast"}', "not a number"),
        ('{"schema": 2, "kind": "serving", "speed": 3}', "does not know"),
        ('{"schema": 2, "kind": "embedding", "sentences_per_s": 5}', "embedding record"),
        ("{not json", "Expecting"),
    ],
)
def test_older_or_hand_edited_file_gives_a_message_and_falls_back(
    mine: Path, content: str, why: str
) -> None:
    mine.mkdir(parents=True)
    (mine / "serving.json").write_text(content)
    got = results.load("serving")
    assert got.origin == "recorded"
    assert "was not used" in got.note and why in got.note
    with pytest.raises(results.ResultError, match="was not used"):
        results.load("serving", fallback=False)


def test_bad_records_are_refused_on_save(mine: Path) -> None:
    with pytest.raises(results.ResultError, match="positive"):
        results.save(results.EmbeddingResult(sentences_per_s=0.0))
    with pytest.raises(results.ResultError, match="record"):
        results.save({"sentences_per_s": 3})  # type: ignore[arg-type]
    with pytest.raises(results.ResultError, match="kind"):
        results.load("training")
    assert not mine.exists() or not list(mine.iterdir())


def test_recorded_records_agree_with_their_detail() -> None:
    """A recorded file's typed record and the tables in its detail describe one run."""
    rec = results.load_recorded("serving")
    bench = results.recorded("serving")["benchmark"]
    assert rec.cold_start_s == bench["naive"]["cold_start"]["total_s"]
    assert rec.throughput_rps == bench["batching"]["loaded"]["throughput_rps"]
    rag = results.recorded("rag")["data"]["stage_ms"]
    got = results.load_recorded("rag")
    assert got.retrieval_ms == pytest.approx(rag["embed_query"]["p50_ms"] + rag["search"]["p50_ms"])
    gpu = results.load_recorded("embedding", "embedding_gpu_h200")
    assert gpu.provider == "cuda" and "H200" in gpu.device
    gen = results.recorded("generation")
    longest = max(gen["ttft_vs_prompt"]["rows"], key=lambda r: r["prompt_tokens"])
    assert gen.record.prefill_tokens_per_s == longest["prefill_tok_s"]


def test_one_machine_description() -> None:
    from infralab.tooling.bench import embed, generate

    m = results.machine(threads=2)
    assert {"platform", "cpu_model", "cpus", "python"} <= set(m) and m["threads"] == 2
    # the bench modules build on it (and keep the keys their recorded files have had)
    assert embed.machine_info(2)["cpu_model"] == m["cpu_model"]
    assert generate.machine_info()["cpu_model"] == m["cpu_model"]


def test_first_api_still_works(mine: Path) -> None:
    path = results.save_result("notes", {"x": 1.0})
    record, source = results.load_result("notes")
    assert source == "measured" and record["data"] == {"x": 1.0} and path.is_file()
    # it does not disturb the typed results
    assert results.load("serving").origin == "recorded"
