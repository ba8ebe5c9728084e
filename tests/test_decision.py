"""Capstone decisions: the article's scenarios, labelled inputs, and the memo's honesty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infralab.core import results
from infralab.core.results import recorded_runs
from infralab.economics import decision as D
from infralab.economics.costs import model as costs
from infralab.presentation import ui


@pytest.fixture
def no_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No student measurements and no recorded benchmarks: only the kit's defaults."""
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "mine"))
    monkeypatch.setattr(recorded_runs, "RECORDED_DIR", tmp_path / "recorded")
    return tmp_path


@pytest.fixture
def measured(no_results: Path) -> Path:
    """The student ran lessons 02, 03, 04 and 06 on this machine."""
    results.save(results.GenerationResult(decode_tokens_per_s=40.0))
    results.save(results.EmbeddingResult(sentences_per_s=300.0))
    results.save(results.ServingResult(throughput_rps=20.0, mean_duration_s=0.05, cpu_vcpus=2))
    results.save(results.RagResult(retrieval_ms=30.0, embed_query_ms=20.0, search_ms=10.0))
    return no_results


def test_defaults_are_labelled(no_results: Path) -> None:
    inputs = D.gather_inputs()
    assert inputs["generation"].origin == "default"
    assert inputs["rag"].origin == "missing" and inputs["rag"].value is None
    assert inputs["serving"].origin == "missing"
    memo = D.decide(D.scenario("legal"), inputs).to_markdown()
    assert "inputs measured on this machine: none" in memo
    assert "**default**" in memo and "**measured**" not in memo
    assert "not priced (no measurement)" in memo


@pytest.mark.slow
def test_measured_inputs_are_labelled(measured: Path) -> None:
    inputs = D.gather_inputs()
    assert {k: i.origin for k, i in inputs.items()} == {
        "generation": "measured",
        "embedding": "measured",
        "serving": "measured",
        "serving_vcpus": "measured",
        "rag": "measured",
        "gpu_anchor": "default",  # the published run the H100 estimate is anchored on
        "small_model_quality": "missing",  # no recorded quality run in this folder
    }
    assert inputs["generation"].value == 40.0
    assert inputs["rag"].value == 30.0
    memo = D.decide(D.scenario("legal"), inputs).to_markdown()
    assert "**measured**" in memo and memo.count("**default**") == 1  # the published GPU anchor
    assert (
        "not measured here: H100 8B decode anchor (published) (default), "
        "135M model's answer correctness (lesson 09) (missing)." in memo
    )
    assert "Retrieval takes 30 ms (measured: " in memo
    assert str(results.results_dir() / "rag.json") in memo  # the file it came from
    # the app tier is priced on Lambda at the memory that buys the measured 2 vCPUs
    assert "3,538 MB" in memo


def test_recorded_benchmark_is_labelled_recorded(no_results: Path) -> None:
    rec = no_results / "recorded"
    rec.mkdir()
    record = results.RagResult(retrieval_ms=55.0, embed_query_ms=50.0, search_ms=5.0)
    (rec / "rag.json").write_text(json.dumps({"record": record.to_dict()}))
    got = D.gather_inputs()["rag"]
    assert got.origin == "recorded" and got.value == 55.0
    # a hand-edited student file is not trusted: a clear note, and the recorded run is used
    results.results_dir().mkdir(parents=True)
    (results.results_dir() / "rag.json").write_text('{"retrieval_ms": "fast"}')
    assert D.gather_inputs()["rag"].origin == "recorded"


@pytest.mark.parametrize(
    ("key", "expected"),
    [("saas", "traditional cloud"), ("legal", "hybrid"), ("web3", "hybrid")],
)
def test_scenarios_reach_the_articles_choice_on_defaults(
    no_results: Path, key: str, expected: str
) -> None:
    d = D.decide(D.scenario(key))
    assert d.recommendation == expected
    assert d.flips, "every memo says what would flip it"


def test_saas_team_without_ml_engineers_pays_a_whole_hire_not_a_veto(no_results: Path) -> None:
    d = D.decide(D.scenario("saas"))
    assert d.chosen.kind == "api"
    people, how = D.people_usd(D.scenario("saas"))
    # no ML engineer: one full-time month (2,080 h / 12) at the sourced 63.91 USD/h (BLS, May 2022)
    assert people == pytest.approx(2080 / 12 * 63.91) and "full-time hire" in how
    gpus = [b for b in d.bills if b.kind in ("dedicated_gpu", "per_second_gpu")]
    assert gpus and all(b.breakdown["people"] == pytest.approx(people) for b in gpus)


def test_legal_self_hosted_bills_include_prefill_from_the_measured_ttft(
    no_results: Path,
) -> None:
    # lesson 04 measured TTFT 1.5 s for a 1,024-token prompt and 100 tokens/s decode
    results.save(results.GenerationResult(decode_tokens_per_s=100.0, prefill_tokens_per_s=1024 / 1.5,
                                          prefill_ttft_s=1.5, prefill_prompt_tokens=1024))  # fmt: skip
    sc = D.scenario("legal")
    options, notes = D.price_options(sc.workload, D.gather_inputs())
    cpu = next(o for o in options if o.name.startswith("Serverless CPU"))
    # 8,000 prompt tokens at 1,024 per 1.5 s = 11.72 s, + 500 answer tokens at 100/s = 5 s
    assert cpu.duration_s == pytest.approx(8000 * 1.5 / 1024 + 500 / 100)
    assert any("prefill" in n and "11.72 s" in n for n in notes)


def test_data_residency_excludes_the_apis_and_hybrid_is_a_cheaper_split(no_results: Path) -> None:
    d = D.decide(D.scenario("legal"))
    apis = [b for b in d.bills if b.kind == "api"]
    assert apis and all(any("residency" in r and b.option in r for r in d.reasons) for b in apis)
    if d.recommendation == "hybrid":
        assert d.chosen.provider != "aws" and "egress" in d.chosen.breakdown
    from dataclasses import replace

    open_data = D.decide(replace(D.scenario("legal"), sensitive_data=False))
    assert open_data.chosen.monthly_usd <= d.chosen.monthly_usd


@pytest.mark.slow
def test_cheap_cpu_model_is_shown_but_not_chosen_unless_allowed(no_results: Path) -> None:
    sc = D.scenario("saas")
    d = D.decide(sc)
    assert any(b.kind == "serverless_cpu" for b in d.bills)
    assert d.chosen.kind != "serverless_cpu"
    from dataclasses import replace

    ok = D.decide(replace(sc, small_model_ok=True))
    assert ok.chosen.kind == "serverless_cpu"


def test_memo_exports_to_a_markdown_file(no_results: Path, tmp_path: Path) -> None:
    d = D.decide(D.scenario("web3"))
    path = d.write(tmp_path / "memos" / "web3.md")
    text = path.read_text()
    assert text.startswith("# Decision memo: Web3 analytics with AI agents")
    for heading in (
        "## Inputs and where they came from",
        "## The numbers",
        "## What would flip it",
    ):
        assert heading in text
    assert "Recommendation: hybrid" in text
    with pytest.raises(D.DecisionError, match=r"\.md"):
        d.write(tmp_path / "memo.pdf")


def test_pricer_is_swappable(no_results: Path) -> None:
    def only_api(w: costs.Workload, inputs: dict) -> tuple[list, list[str]]:
        return [costs.ManagedAPI("API test", 1.0, 1.0)], ["test price"]

    d = D.decide(D.scenario("legal"), pricer=only_api)
    assert d.inference_on == "API test" and d.recommendation == "traditional cloud"


def test_bad_scenario_input_is_explained() -> None:
    with pytest.raises(D.DecisionError, match="choose one of"):
        D.scenario("fintech")
    with pytest.raises(D.DecisionError, match="demand"):
        D.Scenario(
            "x",
            "x",
            "x",
            costs.Workload(10),
            demand="sometimes",  # type: ignore[arg-type]
            ml_engineers=0,
            sensitive_data=False,
            app_on_cloud=(),
        )
    with pytest.raises(D.DecisionError, match="ml_engineers"):
        D.Scenario(
            "x",
            "x",
            "x",
            costs.Workload(10),
            demand="stable",
            ml_engineers=-1,
            sensitive_data=False,
            app_on_cloud=(),
        )
    with pytest.raises(D.DecisionError, match="Scenario"):
        D.decide("legal")  # type: ignore[arg-type]


def test_pure_inference_product_is_ai_infrastructure(no_results: Path) -> None:
    from dataclasses import replace

    sc = replace(D.scenario("web3"), app_on_cloud=())
    assert D.decide(sc).recommendation == "AI infrastructure"


def test_sweep_shows_where_it_flips(no_results: Path) -> None:
    # web3 (no residency constraint): the API at low volume, a split bill at its own volume
    rows = D.recommendation_sweep(D.scenario("web3"), [1_000, 200_000])
    assert rows[0]["recommendation"] == "traditional cloud"
    assert rows[1]["recommendation"] == "hybrid"


def test_lab07_checks(no_results: Path, tmp_path: Path) -> None:
    from infralab.tooling.checks import CheckFailed, lab07

    sc = D.scenario("legal")
    assert "Scenario" in lab07.check_scenario(sc)
    with pytest.raises(CheckFailed, match="decision.Scenario"):
        lab07.check_scenario({"requests_per_day": 5})
    lab07.check_cost_per_customer(lambda usd, n: None if n <= 0 else usd / n)
    with pytest.raises(CheckFailed, match="dividing|returned|raised"):
        lab07.check_cost_per_customer(lambda usd, n: usd / n)
    with pytest.raises(CheckFailed, match="kit's own"):
        lab07.check_constraint_filter(lambda s, b: not D.constraints(s, b))
    with pytest.raises(CheckFailed, match="not right|whatever"):
        lab07.check_cheapest(lambda s, bills: bills[0] if bills else None)
    # The memo check compares the memo's figures with the results: tests/test_checks_labs.py.


def test_explorer_redraws_the_decision(no_results: Path) -> None:
    box = ui.decision_explorer("legal")
    assert box.decision.recommendation == "hybrid"
    volume = box.children[0].children[0]
    volume.value = 1_000  # residency still excludes the APIs: the split bill stays
    assert box.decision.recommendation == "hybrid"
    box.children[1].children[1].value = False  # confidential data off: the API is allowed
    assert box.decision.recommendation == "traditional cloud"
    demand = box.children[0].children[1]
    volume.value = 100_000
    demand.value = "volatile"
    assert box.decision.chosen.kind != "dedicated_gpu"


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No student measurements: the kit's recorded runs (the lessons' fallback)."""
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "mine"))
    return tmp_path


@pytest.mark.slow
def test_a_measurement_flips_the_choice_where_it_prices_the_winner(recorded: Path) -> None:
    """Where the 135M model is good enough, the CPU's measured decode speed decides: slow it
    down and the serverless CPU misses the latency target."""
    from dataclasses import replace

    sc = replace(D.scenario("saas"), small_model_ok=True)
    d = D.decide(sc)
    assert d.chosen.kind == "serverless_cpu"
    cpu = next(f for f in d.sensitivity if f.key == "generation")
    assert cpu.is_measured and cpu.low is not None and cpu.low > 0.25
    assert cpu.low_to != d.inference_on
    assert f"below {cpu.value * cpu.low:.3g} tokens/s (x{cpu.low:.2f})" in cpu.sentence()
    memo = d.to_markdown()
    deciding = memo[memo.index("**Measurements that decide**") :].split("\n\n")[0]
    assert f"- {cpu.sentence()}" in deciding


@pytest.mark.slow
def test_tornado_chart_has_titled_axes(recorded: Path) -> None:
    from infralab.presentation.charts import costs as charts

    d = D.decide(D.scenario("web3"))
    spec = charts.tornado_chart([f.row() for f in d.sensitivity]).to_dict()
    text = json.dumps(spec)
    assert "factor on the input" in text and "log scale" in text and "input (origin)" in text
    bars = spec["layer"][0]["encoding"]
    scale, rows = bars["x"]["scale"], [f.row() for f in d.sensitivity]
    assert scale["nice"] is False
    assert scale["domain"][0] <= min(r["low_factor"] or 0.25 for r in rows)
    assert scale["domain"][1] >= max(r["high_factor"] or 4.0 for r in rows)
    y_axis = bars["y"]["axis"]
    assert y_axis["titleAngle"] == 0 and y_axis["titleX"] < -y_axis["labelLimit"]
