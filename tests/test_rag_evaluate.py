"""Stage percentiles, placement costs, the layout benchmark, charts and lab 06 checks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from infralab.economics.costs import placement
from infralab.engines.models.standin import HashEmbedder
from infralab.engines.rag import evaluate as ev
from infralab.engines.rag import measure as rag_measure
from infralab.engines.rag.chunking import chunk_documents
from infralab.engines.rag.cloud_app import create_app, parse_keys
from infralab.engines.rag.corpus import load_documents, load_questions
from infralab.engines.rag.hybrid import RagIndex
from infralab.engines.rag.vector_store import make_client
from infralab.presentation.charts import rag_pipeline as rag_charts
from infralab.tooling.checks import CheckFailed, lab06

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def docs():
    return load_documents(DATA / "rag_corpus")


@pytest.fixture(scope="module")
def index(docs):
    return RagIndex.build(docs, HashEmbedder(), size=20, overlap=5)


def test_stage_percentiles():
    t = [
        {"embed_query": 1.0, "search": 2.0, "generate": 10.0, "total": 13.0},
        {"embed_query": 3.0, "search": 2.0, "total": 5.0},
    ]
    table = ev.stage_percentiles(t)
    assert table.loc["embed_query", "p50_ms"] == 2.0 and table.loc["generate", "n"] == 1
    assert "network" not in table.index
    with pytest.raises(ValueError, match="no timings"):
        ev.stage_percentiles([])


def test_serverless_price_by_hand():
    # AWS Lambda: 0.00001667 USD per GB-s and 0.20 USD per 1M requests (datasets/pricing)
    usd = placement.serverless_usd_per_1k(100.0, memory_gb=2.0)
    assert usd == pytest.approx(1000 * 0.1 * 2 * 0.00001667 + 0.2 / 1000)
    assert placement.serverless_usd_per_1k(99.2) == placement.serverless_usd_per_1k(
        100.0
    )  # whole ms billed
    with pytest.raises(ValueError):
        placement.serverless_usd_per_1k(-1)


def test_placement_costs_and_break_even():
    stage_ms = {"embed_query": 5.0, "search": 2.0, "generate": 2000.0}
    costs = placement.placement_costs(stage_ms, gpu="T4", utilization=0.5)
    price = costs.attrs["gpu_usd_per_hour"]
    gen = costs.loc["generate"]
    assert gen["gpu_usd_per_1k"] == pytest.approx(price / (0.5 * 3600 / 2.0) * 1000)
    # at the break-even speed-up the GPU costs what serverless CPU costs
    faster = placement.placement_costs(
        stage_ms,
        gpu="T4",
        utilization=0.5,
        gpu_ms={"generate": 2000.0 / gen["gpu_speedup_to_break_even"]},
    )
    assert faster.loc["generate", "gpu_usd_per_1k"] == pytest.approx(
        gen["serverless_cpu_usd_per_1k"]
    )
    assert faster.loc["generate", "gpu_time"] == "measured"
    plan = placement.placements(stage_ms, faster, network_ms=30.0)
    assert plan.loc["all on cloud CPU (serverless)", "network_hops"] == 0
    assert plan.loc["all on GPU infra", "latency_ms"] == pytest.approx(
        5 + 2 + faster.loc["generate", "gpu_ms"] + 30
    )
    with pytest.raises(ValueError, match="utilization"):
        placement.placement_costs(stage_ms, utilization=0)


def test_measure_layouts_small():
    table = rag_measure.measure_layouts(sizes=(30, 60), queries=2)
    assert set(table["layout"]) == {"shared", "per_tenant"} and len(table) == 4
    assert (table["p50_ms"] > 0).all()


def test_charts_build(index, docs):
    per_q = ev.run_retrieval(index, load_questions(DATA / "rag_questions.csv", docs))
    summary = ev.summarize(per_q)
    for chart in (
        rag_charts.retrieval_quality(summary),
        rag_charts.abstention_scores(per_q, 0.2),
        rag_charts.stage_latency(
            ev.stage_percentiles([{"embed_query": 1, "search": 2, "total": 3}])
        ),
        rag_charts.layout_search_time(rag_measure.measure_layouts(sizes=(30,), queries=1)),
    ):
        spec = chart.to_dict()
        assert "title" in spec


@pytest.mark.slow
def test_lab06_checks_pass_and_fail(index, docs):
    from infralab.engines.rag import tenancy

    def good(idx, tenant, q, flt):
        flt = {"must": [{"key": "tenant", "match": {"value": tenant}}, *([flt] if flt else [])]}
        return tenancy.search_all_tenants(idx, q, idx.embed_query(q), k=5, query_filter=flt)

    def leaky(idx, tenant, q, flt):  # trusts the caller: searches every tenant
        return tenancy.search_all_tenants(idx, q, idx.embed_query(q), k=5, query_filter=flt)

    assert lab06.check_scoped_search(good)
    with pytest.raises(CheckFailed, match="another tenant"):
        lab06.check_scoped_search(leaky)
    assert lab06.check_recall_at_k(lambda r, g, k: len(set(g) & set(r[:k])) / len(set(g)))
    with pytest.raises(CheckFailed, match="Divide by how many gold documents"):
        lab06.check_recall_at_k(lambda r, g, k: len(set(g) & set(r[:k])) / k)
    plan = pd.DataFrame(
        {"latency_ms": [100.0, 50.0], "usd_per_1k_questions": [1.0, 2.0]}, index=["a", "b"]
    )
    assert lab06.check_placement("a", plan, 120)
    assert lab06.check_placement("b", plan, 60)
    assert lab06.check_placement(None, plan, 10)
    with pytest.raises(CheckFailed):
        lab06.check_placement("b", plan, 120)


def test_keys_from_env_spec_and_network_delay(index):
    assert parse_keys("a=saas, b=web3") == {"a": "saas", "b": "web3"}
    with pytest.raises(ValueError, match="key=tenant"):
        parse_keys("a")
    with pytest.raises(ValueError, match="no API keys"):
        create_app({}, index=index)

    reply = SimpleNamespace(
        choices=[SimpleNamespace(message=SimpleNamespace(content="Refunds within 14 days."))]
    )
    echo = SimpleNamespace(
        chat=SimpleNamespace(completions=SimpleNamespace(create=lambda **kw: reply))
    )

    from infralab.engines.rag.answer import Generator

    app = create_app(
        {"k": "saas"}, index=index, network_delay_ms=30, generator=Generator(echo, min_score=-1)
    )
    body = (
        TestClient(app)
        .post("/ask", headers={"X-API-Key": "k"}, json={"question": "refund?"})
        .json()
    )
    assert body["timings_ms"]["network"] >= 30.0  # the injected round trip is counted apart
    assert body["answer"] == "Refunds within 14 days."


def test_qdrant_url_selects_a_server(monkeypatch, tmp_path):
    import infralab.engines.rag.vector_store as store_mod

    seen: list[dict] = []
    monkeypatch.setattr(store_mod, "QdrantClient", lambda **kw: seen.append(kw) or kw)
    monkeypatch.setenv("QDRANT_URL", "http://qdrant.internal:6333")
    monkeypatch.setenv("QDRANT_API_KEY", "secret")
    make_client(tmp_path / "ignored")
    assert seen[-1] == {"url": "http://qdrant.internal:6333", "api_key": "secret"}
    monkeypatch.delenv("QDRANT_URL")
    make_client(None)
    assert seen[-1] == {"location": ":memory:"}
    make_client(tmp_path / "q")
    assert seen[-1] == {"path": str(tmp_path / "q")}


def test_chunk_ids_unique_on_fixture(docs):
    chunks = chunk_documents(docs, 20, 5)
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_gpu_generate_estimate_by_hand():
    record = {
        "ttft_vs_prompt": {
            "rows": [{"prompt_tokens": 100, "ttft_s": 0.01}, {"prompt_tokens": 300, "ttft_s": 0.03}]
        },
        "decode_tokens_per_s": 200.0,
        "machine": {"gpu": "NVIDIA X, driver"},
        "date": "2026-11-28T00:00:00",
    }
    ms, note = rag_measure.gpu_generate_ms(200, 20, record)
    assert ms == pytest.approx((0.02 + 20 / 200) * 1000)
    assert "NVIDIA X" in note and "2026-11-28" in note
    with pytest.raises(ValueError):
        rag_measure.gpu_generate_ms(-1, 3, record)
    answers = [
        {"usage": {"prompt_tokens": 100, "completion_tokens": 10}},
        {"usage": {"prompt_tokens": 300, "completion_tokens": 30}},
        {"usage": {}},
    ]
    assert rag_measure.mean_usage(answers) == {"prompt_tokens": 200.0, "completion_tokens": 20.0}
    assert rag_measure.gpu_estimate([{"usage": {}}]) == ({}, "no token counts in the answers")


def test_recorded_gpu_run_gives_an_estimate():
    ms, note = rag_measure.gpu_generate_ms(500, 22)  # the recorded run ships in datasets/benchmarks
    assert 0 < ms < 10_000 and "recorded" in note
