"""Unit costs where each measurement is made, and the four-workload comparison of lesson 05."""

from __future__ import annotations

import math

import pytest

from infralab.core import results
from infralab.economics.costs import billing, pricing, unit, unit_rules
from infralab.economics.costs import offer_comparison as wl
from infralab.economics.costs.pricing import CostError

SERVING = results.ServingResult(
    throughput_rps=800.0, mean_duration_s=0.0033, cpu_vcpus=2, rss_mb=170.0
)


def test_lambda_memory_follows_the_sourced_vcpu_rule() -> None:
    assert unit.lambda_memory_for(1) == 1769
    assert unit.lambda_memory_for(2) == 3538
    assert unit.lambda_memory_for(0.01) == 128  # Lambda's smallest size
    assert unit.lambda_vcpus_at(512) == pytest.approx(512 / 1769)
    assert unit.lambda_vcpus_at(10240) == pytest.approx(10240 / 1769)  # under the 6-vCPU top
    with pytest.raises(unit_rules.UnitCostError, match="10,240"):
        unit.lambda_memory_for(7)
    with pytest.raises(unit_rules.UnitCostError, match="128"):
        unit.lambda_vcpus_at(64)


def test_duration_scales_with_the_vcpu_share_but_not_beyond_the_measured_one() -> None:
    assert billing.scaled_duration(0.01, 2, 0.5) == pytest.approx(0.04)
    assert billing.scaled_duration(0.01, 2, 4) == pytest.approx(0.01)
    with pytest.raises(CostError):
        billing.scaled_duration(0.01, 0, 1)


def test_requests_costs_match_the_published_formulas() -> None:
    lam, mine, run, vm = unit.requests_costs(SERVING, memory_mb=512, vm_utilization=0.5)
    # at the memory that buys 2 vCPUs: 3.3 ms billed as 4 ms, 3,538 MB
    assert lam.usd == pytest.approx(1e6 * 0.004 * 3538 / 1024 * 0.00001667 + 0.20)
    # at 512 MB the function gets 0.289 vCPU, so the request takes 2 / 0.289 times longer
    slow = 0.0033 * 2 / (512 / 1769)
    billed = math.ceil(slow * 1000) / 1000
    assert mine.usd == pytest.approx(1e6 * billed * 0.5 * 0.00001667 + 0.20)
    assert "0.29 vCPU" in mine.option
    # Cloud Run: 100 ms steps, CPU + memory (0.5 GiB for 170 MB RSS) + the request fee
    assert run.usd == pytest.approx(1e6 * 0.1 * (2 * 0.000024 + 0.5 * 0.0000025) + 0.40)
    assert "100 ms" in run.note
    # a 2-vCPU VM at 50 %: its hourly price over the requests it serves
    assert vm.usd == pytest.approx(0.08925 / (800 * 3600 * 0.5) * 1e6)
    for c in (lam, mine, run, vm):
        origins = {f.origin for f in c.inputs}
        assert origins == {"measured", "default"}, c.option
        assert all(f.source for f in c.inputs)


def test_embedding_costs_use_cpu_and_gpu_throughput() -> None:
    cpu = results.EmbeddingResult(sentences_per_s=1000.0, cpu_vcpus=2, engine="cpu/int8")
    gpu = results.load_recorded("embedding", "embedding_gpu_h200")
    c, g = unit.embedding_costs(cpu, gpu, utilization=0.25)
    assert c.usd == pytest.approx(0.08925 / (1000 * 3600 * 0.25) * 1e6)
    price = pricing.gpu_hourly("H200").iloc[0]["usd_per_gpu_hour"]
    assert g.usd == pytest.approx(price / (gpu.sentences_per_s * 3600 * 0.25) * 1e6)
    assert any(f.origin == "recorded" and "embedding_gpu_h200" in f.source for f in g.inputs)
    with pytest.raises(unit_rules.UnitCostError, match="share"):
        unit.embedding_costs(cpu, gpu, utilization=1.5)


def test_token_costs_flag_the_api_as_another_product() -> None:
    gen = results.GenerationResult(decode_tokens_per_s=50.0, cpu_vcpus=2)
    costs = unit.token_costs(gen, utilization=1.0)
    vm, lam, api = costs
    assert vm.usd == pytest.approx(0.08925 / (50 * 3600) * 1e6)
    # 1,000 tokens take 20 s at 3,538 MB; 1M tokens are 1,000 such calls
    assert lam.usd == pytest.approx((20 * 3538 / 1024 * 0.00001667 + 0.20 / 1e6) * 1000)
    assert api.usd == 0.60 and "not the same product" in api.note


RAG = results.RagResult(
    retrieval_ms=3.0,
    embed_query_ms=2.0,
    search_ms=1.0,
    generate_ms=800.0,
    prompt_tokens=500,
    completion_tokens=20,
    machine={"cpus": 2},
)


def test_rag_costs_are_per_stage_per_thousand_questions() -> None:
    costs = unit.rag_costs(RAG, utilization=1.0)
    stages = {(c.stage, c.option.split(",")[0].split(" ")[0]) for c in costs}
    assert ("embed_query", "VM") in stages and ("generate", "API") in stages
    vm_gen = next(c for c in costs if c.stage == "generate" and c.option.startswith("VM"))
    assert vm_gen.usd == pytest.approx(1000 * 0.8 * 2 * 0.08925 / 2 / 3600)
    api = next(c for c in costs if c.option.startswith("API"))
    assert api.usd == pytest.approx(1000 * (500 * 0.15 + 20 * 0.60) / 1e6)


def _thread() -> unit.Thread:
    return unit.Thread(
        SERVING,
        results.EmbeddingResult(sentences_per_s=1000.0, cpu_vcpus=2),
        results.load_recorded("embedding", "embedding_gpu_h200"),  # type: ignore[arg-type]
        results.GenerationResult(decode_tokens_per_s=50.0, cpu_vcpus=2),
        results.load_recorded("generation", "generation_gpu_h200"),  # type: ignore[arg-type]
        RAG,
    )


@pytest.mark.parametrize("kind", list(wl.WORKLOADS))
def test_people_cost_moves_the_break_even(kind: str) -> None:
    t = _thread()
    opts = wl.offers(kind, t)
    pay = next(o for o in opts if o.billing == "per_unit")
    own = next(o for o in opts if o.billing == "per_hour" and o.name.startswith("VM"))
    free = wl.break_even(pay, own)
    costly = wl.break_even(pay, own, wl.PeopleCost(10, 100))
    assert free is not None and costly is not None and costly > free
    # at the break-even the two bills agree
    people = wl.PeopleCost(10, 100)
    assert pay.monthly_usd(costly, people) == pytest.approx(
        own.monthly_usd(costly, people), rel=1e-4
    )


def test_people_cost_defaults_to_zero_and_says_so() -> None:
    rows, notes = wl.comparison("requests", _thread(), 1e6)
    assert "0 USD/month (the default" in notes[0]
    assert all(not r["people_cost_included"] for r in rows)
    with pytest.raises(wl.WorkloadError):
        wl.PeopleCost(-1, 10)
    with pytest.raises(wl.WorkloadError, match="workload"):
        wl.offers("pixels", _thread())


def test_quality_differences_are_named() -> None:
    t = _thread()
    _, notes = wl.comparison("tokens", t, 1e6)
    assert any(n.startswith("Not the same product") and "gpt-4o-mini" in n for n in notes)
    _, notes = wl.comparison("requests", t, 1e6)
    assert not any("Not the same product" in n for n in notes)


def test_lambda_volume_tiers_per_architecture() -> None:
    assert billing.lambda_compute_tiered(1e9) == pytest.approx(1e9 * 0.0000166667)
    x86 = billing.lambda_compute_tiered(20e9)
    assert x86 == pytest.approx(6e9 * 0.0000166667 + 9e9 * 0.000015 + 5e9 * 0.0000133334)
    arm = billing.lambda_compute_tiered(20e9, "arm64")
    assert arm == pytest.approx(
        7.5e9 * 0.0000133334 + 11.25e9 * 0.0000120001 + 1.25e9 * 0.0000106667
    )
    assert arm < x86
    with pytest.raises(CostError):
        billing.lambda_compute_tiered(-1)
