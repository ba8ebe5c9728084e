"""The course's thread: what lessons 02, 03, 04 and 06 save reaches the lesson 05 dashboard
and the capstone memo unchanged, each number with its origin (measured) and its file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infralab.core import results
from infralab.core.paths import REPO_ROOT
from infralab.economics import decision

REPO = REPO_ROOT
LESSONS = ("02_serverless_api", "03_onnx_gpu_vs_cpu", "04_llm_tokens", "06_hybrid_rag")
# (record kind, dashboard workload, the field the dashboard shows)
THREAD = [
    ("serving", "requests", "mean_duration_s"),
    ("embedding", "embeddings", "sentences_per_s"),
    ("generation", "tokens", "decode_tokens_per_s"),
    ("rag", "rag questions", "embed_query_ms"),
]


def _walk_the_thread(folder: Path) -> None:
    """Assert that every saved figure reaches the dashboard and the memo, labelled."""
    from infralab.presentation.widgets import WorkloadDashboard

    saved = {k: json.loads((folder / f"{k}.json").read_text()) for k, _, _ in THREAD}
    for data in saved.values():
        assert data["schema"] == results.SCHEMA_VERSION and data["machine"] and data["date"]

    dash = WorkloadDashboard(interactive=False)
    for kind, workload, name in THREAD:
        dash.controls["workload"].value = workload
        shown = " ".join(str(r["inputs (origin: file)"]) for r in dash.rows)
        fig = results.load(kind).figure(name)
        assert fig.value == saved[kind][name]  # unchanged
        assert fig.origin == "measured" and fig.source == str(folder / f"{kind}.json")
        assert fig.label() in shown, (workload, fig.label())

    inputs = decision.gather_inputs()
    expect = {
        "generation": saved["generation"]["decode_tokens_per_s"],
        "embedding": saved["embedding"]["sentences_per_s"],
        "serving": saved["serving"]["mean_duration_s"],
        "rag": saved["rag"]["retrieval_ms"],
    }
    memo = decision.decide(decision.scenario("legal"), inputs).to_markdown()
    for key, value in expect.items():
        got = inputs[key]
        assert got.value == value and got.origin == "measured", key
        kind = key
        assert got.source == str(folder / f"{kind}.json")
        assert f"| {got.name} | {got.shown()} | **measured** | {got.source}, {got.detail} |" in memo
    retrieval = f"Retrieval takes {expect['rag']:,.0f} ms (measured: {folder / 'rag.json'}"
    assert retrieval in memo
    # what this CPU run cannot measure stays labelled: the GPU run (recorded unless lesson 04 ran
    # on a GPU), the published anchor of the H100 estimate, and the 135M model's answer
    # correctness (the kit's recorded quality run, which lesson 09 shows; not in 02-06)
    header = next(x for x in memo.splitlines() if "not measured here:" in x)
    left = header.split("not measured here: ")[1]
    assert "H100 8B decode anchor (published) (default)" in left
    assert "135M model's answer correctness (lesson 09) (recorded)" in left
    rest = left.replace("(lesson 04) (recorded)", "").replace("(lesson 09) (recorded)", "")
    assert "lesson 0" not in rest


@pytest.fixture
def results_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv(results.RESULTS_ENV, str(folder))
    return folder


@pytest.mark.slow
def test_saved_records_reach_dashboard_and_memo(results_folder: Path) -> None:
    """The records the lessons save (same classes, same save function), with odd values so
    that nothing recorded or default could match them by chance."""
    results.save(results.ServingResult(throughput_rps=321.5, mean_duration_s=0.00731, cpu_vcpus=2))
    results.save(results.EmbeddingResult(sentences_per_s=777.25, cpu_vcpus=2, engine="cpu/int8"))
    results.save(results.GenerationResult(decode_tokens_per_s=61.75, cpu_vcpus=2))
    results.save(
        results.RagResult(
            retrieval_ms=37.5,
            embed_query_ms=30.25,
            search_ms=7.25,
            generate_ms=900.0,
            prompt_tokens=480.0,
            completion_tokens=21.0,
        )
    )
    _walk_the_thread(results_folder)


def _from_executed_copies(results_folder: Path) -> bool:
    """Put what lessons 02, 03, 04 and 06 saved in the notebook tests' run (``make notebooks``
    keeps each executed lesson with the results it wrote) into ``results_folder``; False, with
    the reason printed, when a copy is missing or stale (then the lessons are run here)."""
    from infralab.tooling import executed

    kit = executed.kit_sha256()
    found = [executed.lookup(REPO / "course" / f"{name}.ipynb", REPO, kit=kit) for name in LESSONS]
    stale = [f"{f.source.name}: {f.reason}" for f in found if not f.fresh]
    if stale:
        print("running the lessons here:", "; ".join(stale))
        return False
    for f in found:
        executed.write_results(f.nb, results_folder)
    print("results from the executed copies:", ", ".join(str(f.copy_path) for f in found))
    return True


@pytest.mark.slow
def test_lessons_executed_on_cpu_feed_dashboard_and_memo(results_folder: Path) -> None:
    """Lessons 02, 03, 04 and 06 as run on this CPU, then the thread walked on what they saved.

    Within ``make test`` the notebook tests ran them (their executed copies carry the results
    each lesson saved); alone, or with a stale copy, this executes them (several minutes)."""
    import nbformat

    from infralab.tooling.notebooks import client_class

    if _from_executed_copies(results_folder):
        assert {p.name for p in results_folder.iterdir()} >= {f"{k}.json" for k, _, _ in THREAD}
        _walk_the_thread(results_folder)
        return
    for name in LESSONS:
        nb = nbformat.read(REPO / "course" / f"{name}.ipynb", as_version=4)
        client = client_class()(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(REPO / "course")}},
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        client.execute(env=env)
    _walk_the_thread(results_folder)
