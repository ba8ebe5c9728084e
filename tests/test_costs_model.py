"""The cost model: published figures reproduced, clear answers at the edges, sane properties."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infralab.economics.costs import billing
from infralab.economics.costs import model as m

W = m.Workload(requests_per_day=100_000, tokens_in=500, tokens_out=200, latency_target_s=10)


def gpu(price: float = 2.0, rps: float = 50.0, **kw) -> m.DedicatedGPU:
    return m.DedicatedGPU("gpu", price, rps, 1.0, **kw)


# --- published figures ----------------------------------------------------------------------


def test_silybench_cost_per_1m_tokens() -> None:
    # 16,542 output tokens/s on one H100 at 2.69 USD/h is 0.045 USD per 1M tokens
    assert billing.unit_cost(2.69, 16542, 1.0) == pytest.approx(0.045, abs=0.0005)


@pytest.mark.parametrize(("util", "expected"), [(1.0, 0.17), (0.5, 0.34), (0.3, 0.57)])
def test_idle_gpu_trap_figures(util: float, expected: float) -> None:
    # 3 USD/h and 5,000 tokens/s: the published per-1M-token cost at three utilizations
    assert billing.unit_cost(3.0, 5000, util) == pytest.approx(expected, abs=0.015)


def test_api_bill_is_tokens_times_price() -> None:
    api = m.ManagedAPI("api", 0.15, 0.60)
    bill = api.bill(W)
    per_request = (500 * 0.15 + 200 * 0.60) / 1e6
    assert bill.monthly_usd == pytest.approx(W.requests_per_month * per_request)
    assert bill.usd_per_1k_requests == pytest.approx(per_request * 1000)
    assert bill.usd_per_1m_tokens == pytest.approx(per_request / 700 * 1e6)


def test_dedicated_gpu_is_paid_all_month() -> None:
    bill = gpu(2.0, 50.0).bill(W)
    assert bill.instances == 1
    assert bill.monthly_usd == pytest.approx(2.0 * 730)
    assert bill.utilization == pytest.approx(W.requests_per_month / m.SECONDS_PER_MONTH / 50.0)


def test_more_traffic_needs_more_instances() -> None:
    small = gpu(rps=10).bill(W.at(100_000))
    big = gpu(rps=10).bill(W.at(10_000_000))
    assert big.instances > small.instances
    assert big.usd_per_1k_requests < small.usd_per_1k_requests


def test_spot_interruptions_cost_capacity() -> None:
    calm = gpu(rps=10, pricing="spot").bill(W.at(5_000_000))
    stormy = gpu(rps=10, pricing="spot", interruptions_per_hour=6, recovery_s=300).bill(
        W.at(5_000_000)
    )
    assert stormy.instances > calm.instances


def test_serverless_cpu_uses_lambda_formula() -> None:
    fn = m.ServerlessCPU("fn", duration_s=0.1, memory_gb=1.0)
    bill = fn.bill(m.Workload(1_000_000 / m.DAYS_PER_MONTH))
    # 1M requests x 0.1 s x 1 GB = 100,000 GB-s
    assert bill.monthly_usd == pytest.approx(100_000 * 0.00001667 + 0.20, rel=1e-3)


def test_per_second_gpu_bills_cold_starts_for_sparse_traffic() -> None:
    opt = m.PerSecondGPU("ps", 3.6, throughput_rps=10, latency_s=0.5, cold_start_s=60)
    sparse = opt.bill(m.Workload(100, latency_target_s=5))
    assert sparse.breakdown["cold_start_s"] > sparse.breakdown["busy_s"]
    assert not sparse.meets_latency and "cold" in sparse.note
    busy = opt.bill(m.Workload(500_000, latency_target_s=5))
    assert busy.meets_latency
    assert busy.usd_per_1k_requests < sparse.usd_per_1k_requests


# --- edges: clear answers, no division errors ------------------------------------------------


def test_zero_traffic_says_no_requests_served() -> None:
    zero = m.Workload(0)
    for opt in (
        m.ManagedAPI("api", 1, 1),
        gpu(),
        m.ServerlessCPU("fn", 0.1),
        m.PerSecondGPU("p", 3, 1, 1),
    ):
        bill = opt.bill(zero)
        assert bill.usd_per_1k_requests is None
        assert bill.usd_per_1m_tokens is None
        assert m.NO_REQUESTS in bill.note
        assert m.NO_REQUESTS in bill.summary()
    assert gpu().bill(zero).monthly_usd == pytest.approx(2.0 * 730)  # the idle GPU still bills


def test_zero_utilization_says_no_requests_served() -> None:
    assert billing.unit_cost(2.0, 100, 0.0, per=1000.0) is None
    bill = gpu(max_utilization=0.0).bill(W)
    assert m.NO_REQUESTS in bill.note and math.isinf(bill.monthly_usd)
    assert bill.usd_per_1k_requests == math.inf
    assert (
        m.compare([bill_opt := gpu(max_utilization=0.0), m.ManagedAPI("a", 1, 1)], W)[-1].option
        == bill_opt.name
    )


def test_impossible_latency_target_is_flagged() -> None:
    bill = m.DedicatedGPU("slow", 2.0, 50, latency_s=3.0).bill(m.Workload(1000, latency_target_s=1))
    assert not bill.meets_latency
    assert "target" in bill.note and "MISSES" in bill.summary()


@pytest.mark.parametrize(
    "bad",
    [
        lambda: m.Workload(-1),
        lambda: m.Workload(10, traffic="weekends"),
        lambda: m.Workload(10, latency_target_s=0),
        lambda: m.Workload("lots"),  # type: ignore[arg-type]
        lambda: m.DedicatedGPU("g", -1, 1, 1),
        lambda: m.DedicatedGPU("g", 1, 1, 1, max_utilization=70),
        lambda: m.batched_throughput(10, 0),
        lambda: billing.unit_cost(1, 1, 1.5, per=1000.0),
        lambda: m.break_even(gpu(), gpu(), W, low=10, high=1),
    ],
)
def test_bad_input_gets_a_clear_error(bad) -> None:
    with pytest.raises(m.CostError):
        bad()


# --- break-even --------------------------------------------------------------------------------


def test_break_even_api_vs_gpu() -> None:
    api = m.ManagedAPI("api", 0.15, 0.60)
    be = m.break_even(api, gpu(2.0, 1000.0), W)
    per_request = (500 * 0.15 + 200 * 0.60) / 1e6
    expected = 2.0 * 730 / per_request / m.DAYS_PER_MONTH
    assert be.requests_per_day == pytest.approx(expected, rel=1e-3)
    assert be.cheaper_below == "api" and be.cheaper_above == "gpu"
    assert "break-even" in be.verdict


def test_break_even_never() -> None:
    cheap, dear = m.ManagedAPI("cheap", 0.1, 0.1), m.ManagedAPI("dear", 1, 1)
    be = m.break_even(cheap, dear, W)
    assert be.requests_per_day is None and be.verdict.startswith("never")
    assert be.cheaper_below == "cheap"
    same = m.break_even(cheap, m.ManagedAPI("twin", 0.1, 0.1), W)
    assert "same" in same.verdict


@settings(max_examples=25, deadline=None)
@given(
    price=st.floats(0.1, 20),
    per_1m=st.floats(0.05, 20),
)
def test_break_even_is_symmetric(price: float, per_1m: float) -> None:
    a, b = m.ManagedAPI("api", per_1m, per_1m), gpu(price, 200.0)
    ab, ba = m.break_even(a, b, W, points=60), m.break_even(b, a, W, points=60)
    assert ab.crossings == pytest.approx(ba.crossings, rel=1e-6)
    assert ab.cheaper_below == ba.cheaper_below


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    price=st.floats(0.01, 100),
    bump=st.floats(0.01, 10),
    rpd=st.floats(0, 1e8),
    rps=st.floats(0.1, 1e4),
)
def test_cost_rises_with_price(price: float, bump: float, rpd: float, rps: float) -> None:
    w = W.at(rpd)
    for cheap, dear in [
        (gpu(price, rps), gpu(price + bump, rps)),
        (m.ManagedAPI("a", price, price), m.ManagedAPI("a", price + bump, price)),
        (m.PerSecondGPU("p", price, rps, 1), m.PerSecondGPU("p", price + bump, rps, 1)),
    ]:
        assert cheap.bill(w).monthly_usd <= dear.bill(w).monthly_usd


@settings(max_examples=50, deadline=None)
@given(
    price=st.floats(0.01, 100),
    rps=st.floats(0.01, 1e4),
    u1=st.floats(0.01, 1),
    u2=st.floats(0.01, 1),
)
def test_unit_cost_falls_with_utilization(price: float, rps: float, u1: float, u2: float) -> None:
    lo, hi = sorted((u1, u2))
    assert billing.unit_cost(price, rps, hi, per=1000.0) <= billing.unit_cost(
        price, rps, lo, per=1000.0
    ) * (1 + 1e-12)


@settings(max_examples=50, deadline=None)
@given(r1=st.floats(1, 1e8), r2=st.floats(1, 1e8), shape=st.sampled_from(sorted(m.TRAFFIC_SHAPES)))
def test_bills_never_fall_with_traffic_and_unit_costs_are_finite(
    r1: float, r2: float, shape: str
) -> None:
    lo, hi = sorted((r1, r2))
    w = m.Workload(lo, traffic=shape)
    for opt in (
        gpu(),
        m.ManagedAPI("a", 1, 2),
        m.PerSecondGPU("p", 3, 20, 1),
        m.ServerlessCPU("f", 0.2),
    ):
        a, b = opt.bill(w), opt.bill(w.at(hi))
        assert a.monthly_usd <= b.monthly_usd * (1 + 1e-9) + 1e-9
        assert math.isfinite(a.usd_per_1k_requests)
        assert a.utilization is None or 0 <= a.utilization <= 1


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 1024))
def test_batching_trades_latency_for_throughput(batch: int) -> None:
    p, q = m.decode_operating_point(batch), m.decode_operating_point(batch + 1)
    assert q.tokens_per_s >= p.tokens_per_s and q.step_s >= p.step_s
    assert m.batched_throughput(10, batch + 1) >= m.batched_throughput(10, batch)


def test_decode_model_hits_its_anchor() -> None:
    assert m.decode_operating_point(512).tokens_per_s == pytest.approx(16542)


# --- the LLM option set and measured throughput -------------------------------------------------


def test_llm_options_are_priced_from_the_data() -> None:
    opts, notes = m.llm_options(W)
    names = [o.name for o in opts]
    assert any(n.startswith("API gpt-4o-mini") for n in names)
    assert "H100 on-demand" in names and "H100 spot" in names
    assert any("reserved: no price" in n for n in notes)  # missing stays missing
    bills = m.compare(opts, W)
    assert bills == sorted(bills, key=lambda b: b.monthly_usd)
    slider, _ = m.llm_options(W, gpu_usd_per_hour=1.0, option_set="API vs dedicated GPU")
    od = next(o for o in slider if o.name == "H100 on-demand")
    assert od.usd_per_hour == 1.0
    with pytest.raises(m.CostError, match="option_set"):
        m.llm_options(W, option_set="everything")


def test_measured_throughput_prefers_the_students_file(tmp_path, monkeypatch) -> None:
    from infralab.core import results

    monkeypatch.setenv("INFRALAB_RESULTS", str(tmp_path))
    results.save(results.GenerationResult(decode_tokens_per_s=42.5, cpu_vcpus=2))
    got = m.measured_throughput("generation")
    assert got.value == 42.5 and got.origin == "measured"
    assert got.source == str(tmp_path / "generation.json")
    # a file in the first, free-form format is not guessed at: the recorded run is used
    record = {
        "name": "generation",
        "measured_at": "2026-11-28T01:00:00+00:00",
        "data": {"cpu": {"q4": {"decode_tokens_per_s": 42.5}}},
    }
    (tmp_path / "generation.json").write_text(json.dumps(record))
    fallback = m.measured_throughput("generation")
    assert fallback.origin == "recorded"
    assert fallback.source == "datasets/benchmarks/generation.json"
    assert "older kit" in results.load("generation").note
    with pytest.raises(m.CostError):
        m.measured_throughput("training")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(
    p1=st.floats(0.1, 20),
    p2=st.floats(0.1, 20),
    r1=st.floats(0.1, 1e3),
    r2=st.floats(0.1, 1e3),
    idle=st.floats(0, 600),
    shape=st.sampled_from(sorted(m.TRAFFIC_SHAPES)),
)
def test_break_even_symmetric_between_gpu_kinds(
    p1: float, p2: float, r1: float, r2: float, idle: float, shape: str
) -> None:
    w = m.Workload(1000, traffic=shape)
    a = m.PerSecondGPU("per-second", p1, r1, 0.5, idle_timeout_s=idle)
    b = m.DedicatedGPU("dedicated", p2, r2, 0.5)
    ab, ba = m.break_even(a, b, w, points=50), m.break_even(b, a, w, points=50)
    assert ab.crossings == pytest.approx(ba.crossings, rel=1e-5)


def test_tiny_capacity_cannot_serve_instead_of_overflowing() -> None:
    w = m.Workload(1e6)
    for opt in (gpu(rps=1e-300), m.PerSecondGPU("p", 3, 1e-300, 1)):
        bill = opt.bill(w)
        assert math.isinf(bill.monthly_usd) and m.NO_REQUESTS in bill.note


def test_cloud_run_bill_has_cpu_memory_and_request_fees() -> None:
    opts, _ = m.llm_options(W, option_set="serverless CPU: Lambda vs Cloud Run")
    run = next(o for o in opts if isinstance(o, m.CloudRunCPU))
    bill = run.bill(W)
    # 100 ms steps, 1 vCPU at 0.000024 USD/vCPU-s, 2 GiB at 0.0000025 USD/GiB-s, 0.40 USD/1M
    n = round(W.requests_per_month)
    steps = math.ceil(run.duration_s / 0.1 - 1e-9) * 0.1
    expected = n * steps * (0.000024 + 2 * 0.0000025) + n / 1e6 * 0.40
    assert bill.monthly_usd == pytest.approx(expected, rel=1e-6)
    assert "lower bound" not in bill.note
    unpriced = replace(run, usd_per_gib_s=None).bill(W)
    assert "lower bound" in unpriced.note and "lower bound" in unpriced.summary()


def test_zero_cpu_speed_leaves_serverless_out() -> None:
    opts, notes = m.llm_options(W, cpu_tokens_per_s=0, option_set="serverless CPU vs GPU")
    assert not any(isinstance(o, m.ServerlessCPU) for o in opts)
    assert any(m.NO_REQUESTS in n for n in notes)
