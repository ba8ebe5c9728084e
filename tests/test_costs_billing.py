"""Each billing function against a month worked by hand from the provider's published rate.

Rates (datasets/pricing/, sources in docs and PRICING_SOURCES): gpt-4o-mini 0.15 / 0.60 USD
per 1M input / output tokens (LiteLLM, 2026-07-24); Lambda x86 0.00001667 USD per GB-s and
0.20 USD per 1M requests, 1 ms steps, one vCPU at 1,769 MB (AWS); Cloud Run 0.000024 USD per
vCPU-s, 0.0000025 per GiB-s, 0.40 per 1M requests, 100 ms steps; c7i.large 0.08925 USD/h;
RunPod H200 3.59 USD per GPU-hour; Modal H100 3.9492 USD/h per second; AWS egress 0.09 USD/GB.
"""

from __future__ import annotations

import pytest

from infralab.economics.costs import billing, pricing
from infralab.economics.costs.pricing import CostError


def test_managed_api_prices_input_cached_and_output_tokens() -> None:
    b = billing.managed_api(1_000, 2_000, 250, usd_per_1m_input=0.15, usd_per_1m_output=0.60)
    # 1,000 x 2,000 x 0.15 / 1e6 = 0.30; 1,000 x 250 x 0.60 / 1e6 = 0.15
    assert b.monthly_usd == pytest.approx(0.45)
    assert b.breakdown["input_tokens"] == pytest.approx(0.30)
    cached = billing.managed_api(1_000, 2_000, 250, usd_per_1m_input=0.15, usd_per_1m_output=0.60,
                                 cached_tokens_in=500, usd_per_1m_cached_input=0.075)  # fmt: skip
    # 1,500 fresh x 0.15 + 500 cached x 0.075 + 250 x 0.60, per 1M, x 1,000 requests
    assert cached.monthly_usd == pytest.approx(0.225 + 0.0375 + 0.15)
    with pytest.raises(CostError, match="cached"):
        billing.managed_api(1, 10, 1, usd_per_1m_input=1, usd_per_1m_output=1, cached_tokens_in=5)


def test_lambda_bills_gb_seconds_in_1ms_steps_and_the_cpu_share() -> None:
    b = billing.lambda_function(1_000_000, 0.1204, 512)
    # 120.4 ms -> 121 ms; 1e6 x 0.121 s x 0.5 GB = 60,500 GB-s x 0.00001667 + 0.20
    assert b.breakdown["gb_seconds"] == pytest.approx(60_500)
    assert b.monthly_usd == pytest.approx(60_500 * 0.00001667 + 0.20)
    assert b.inputs and all(f.source and f.origin == "default" for f in b.inputs)
    # measured 50 ms on 1 vCPU; 1,024 MB buys 1024/1769 = 0.5789 vCPU -> 86.38 ms -> 87 ms
    share = billing.lambda_function(1_000_000, 0.050, 1024, measured_vcpus=1)
    assert share.breakdown["billed_duration_s"] == pytest.approx(0.087)
    assert share.monthly_usd == pytest.approx(1e6 * 0.087 * 1.0 * 0.00001667 + 0.20)
    # the free tier (400,000 GB-s, 1M requests) covers 1M x 100 ms x 1 GB
    assert billing.lambda_function(1_000_000, 0.1, 1024, free_tier=True).monthly_usd == 0.0
    with pytest.raises(CostError, match="MB"):
        billing.lambda_function(1, 0.1, 2.0)  # GB passed as MB


def test_cloud_run_bills_vcpu_and_gib_seconds_in_100ms_steps_and_requests() -> None:
    b = billing.cloud_run(1_000_000, 0.25, 1, 0.5)
    # 250 ms -> 300 ms; 300,000 instance-s: 1 vCPU x 0.000024 + 0.5 GiB x 0.0000025, + 0.40
    assert b.breakdown["instance_seconds"] == pytest.approx(300_000)
    assert b.monthly_usd == pytest.approx(7.2 + 0.375 + 0.40)
    shared = billing.cloud_run(1_000_000, 0.25, 1, 0.5, concurrency=4)
    assert shared.breakdown["cpu"] == pytest.approx(7.2 / 4)


def test_hourly_bills_vms_and_dedicated_gpus_every_hour() -> None:
    vm = pricing.cpu_vm("c7i.large").iloc[0]
    assert billing.hourly(float(vm["usd_per_hour"])).monthly_usd == pytest.approx(0.08925 * 730)
    h200 = pricing.gpu_hour("H200", "on_demand")  # RunPod community cloud, 3.59 USD/GPU-h
    gpu = billing.hourly(float(h200["usd_per_gpu_hour"]), 2, kind="dedicated_gpu")
    assert gpu.monthly_usd == pytest.approx(2 * 3.59 * 730)
    spot = pricing.gpu_hour("H100", "spot")  # GCP a3-highgpu-1g spot 6.571, CoreWeave 19.71/8
    assert float(spot["usd_per_gpu_hour"]) == pytest.approx(19.71 / 8)


def test_per_second_gpu_and_egress() -> None:
    assert billing.per_second_gpu(3_600, 3.9492).monthly_usd == pytest.approx(3.9492)
    e = billing.egress(100)
    assert e.monthly_usd == pytest.approx(9.0)  # 100 GB x 0.09 USD/GB
    assert e.inputs[0].source.startswith("https://")


def test_unit_cost_is_the_idle_gpu_formula_and_never_divides_by_zero() -> None:
    # 3 USD/h, 5,000 tokens/s, 50 % busy: 3 / (5,000 x 3,600 x 0.5) x 1e6 = 0.333 per 1M
    assert billing.unit_cost(3.0, 5_000, 0.5) == pytest.approx(3 / 9_000_000 * 1e6)
    assert billing.unit_cost(3.0, 5_000, 0.0) is None
    assert billing.unit_cost(3.0, 25, 0.0, per=1000.0) is None
    with pytest.raises(CostError):
        billing.unit_cost(3.0, 5_000, 1.5)
