"""Serverless bills: rounding steps, free tiers, unpriced parts named, bad input explained."""

from __future__ import annotations

import math

import pytest

from infralab.costs import serverless as sl


def test_lambda_bill_by_hand():
    # 1M requests of 120.3 ms at 1 GB: 121 ms billed each -> 121,000 GB-s.
    bill = sl.lambda_bill(1_000_000, 0.1203, 1.0)
    assert bill["billed_duration_s"] == pytest.approx(0.121)
    assert bill["gb_seconds"] == pytest.approx(121_000)
    assert bill["compute_usd"] == pytest.approx(121_000 * 0.00001667)
    assert bill["requests_usd"] == pytest.approx(0.20)
    assert bill["total_usd"] == pytest.approx(bill["compute_usd"] + 0.20)


def test_lambda_rounds_up_to_whole_milliseconds_and_at_least_one():
    assert sl.lambda_bill(1, 0.0001, 0.128)["billed_duration_s"] == pytest.approx(0.001)
    assert sl.lambda_bill(1, 0.005, 0.128)["billed_duration_s"] == pytest.approx(0.005)
    assert sl.lambda_bill(1, 0.0050001, 0.128)["billed_duration_s"] == pytest.approx(0.006)


def test_lambda_free_tier_covers_small_workloads():
    bill = sl.lambda_bill(500_000, 0.05, 1.0, free_tier=True)
    assert bill["total_usd"] == 0.0
    big = sl.lambda_bill(3_000_000, 0.2, 1.0, free_tier=True)
    assert big["requests_usd"] == pytest.approx(2 * 0.20)
    assert big["compute_usd"] == pytest.approx((600_000 - 400_000) * 0.00001667)


def test_zero_requests_cost_nothing():
    assert sl.lambda_bill(0, 0.05, 1.0)["total_usd"] == 0.0
    assert sl.cloud_run_bill(0, 0.05, 1, 1)["total_usd"] == 0.0


def test_cloud_run_bills_100ms_steps_and_names_what_is_unpriced():
    bill = sl.cloud_run_bill(
        1_000_000, 0.12, vcpu=2, memory_gib=1, price_per_gib_s=None, price_per_million_requests=None
    )
    assert bill["billed_duration_s"] == pytest.approx(0.2)
    assert bill["vcpu_seconds"] == pytest.approx(400_000)
    assert bill["cpu_usd"] == pytest.approx(400_000 * 0.000024)
    assert bill["memory_usd"] == 0.0 and len(bill["unpriced"]) == 2
    priced = sl.cloud_run_bill(
        1_000_000, 0.12, 2, 1, price_per_gib_s=0.000002, price_per_million_requests=0.5
    )
    assert priced["unpriced"] == []
    assert priced["total_usd"] == pytest.approx(9.6 + 200_000 * 0.000002 + 0.5)
    sourced = sl.cloud_run_bill(1_000_000, 0.12, 2, 1)  # the sourced memory and request fees
    assert sourced["unpriced"] == []
    assert sourced["total_usd"] == pytest.approx(9.6 + 200_000 * 0.0000025 + 0.40)


def test_cloud_run_concurrency_shares_instance_time_and_free_tier_applies():
    alone = sl.cloud_run_bill(1_000_000, 0.1, 1, 1)
    shared = sl.cloud_run_bill(1_000_000, 0.1, 1, 1, concurrency=4)
    assert shared["vcpu_seconds"] == pytest.approx(alone["vcpu_seconds"] / 4)
    assert sl.cloud_run_bill(1_000_000, 0.1, 1, 1, free_tier=True)["cpu_usd"] == 0.0


def test_always_on_and_break_even():
    assert sl.always_on_bill(0.1)["total_usd"] == pytest.approx(73.0)
    n = sl.break_even_requests(0.1, 0.05, 1.0)
    at = sl.lambda_bill(round(n), 0.05, 1.0)["total_usd"]
    assert at == pytest.approx(73.0, rel=1e-3)
    assert sl.cloud_run_always_on_hourly(2) == pytest.approx(2 * 0.000018 * 3600)
    assert sl.vm_capacity_requests(100, hours=1) == 360_000


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: sl.lambda_bill(-1, 0.1, 1), "requests"),
        (lambda: sl.lambda_bill(1.5, 0.1, 1), "whole number"),
        (lambda: sl.lambda_bill(10, 0.1, 512), "MB instead of GB"),
        (lambda: sl.lambda_bill(10, math.nan, 1), "finite"),
        (lambda: sl.lambda_bill(10, "0.1", 1), "must be a number"),
        (lambda: sl.cloud_run_bill(10, 0.1, 0, 1), "vcpu"),
        (lambda: sl.cloud_run_bill(10, 0.1, 1, 1, concurrency=0.5), "concurrency"),
        (lambda: sl.always_on_bill(-1), "hourly_usd"),
        (lambda: sl.vm_capacity_requests(10, utilization=80), "fraction"),
    ],
)
def test_bad_input_gets_a_clear_message(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_defaults_match_the_kit_price_table():
    from infralab.costs import pricing

    assert pricing.serverless_cpu_price("aws", "lambda", "compute")[0] == sl.LAMBDA_PRICE_PER_GB_S
    assert (
        pricing.serverless_cpu_price("aws", "lambda", "requests")[0]
        == sl.LAMBDA_PRICE_PER_MILLION_REQUESTS
    )
    run = "cloud_run_request_based"
    assert pricing.serverless_cpu_price("gcp", run, "cpu")[0] == sl.CLOUD_RUN_PRICE_PER_VCPU_S
    assert pricing.serverless_cpu_price("gcp", run, "memory")[0] == sl.CLOUD_RUN_PRICE_PER_GIB_S
    assert (
        pricing.serverless_cpu_price("gcp", run, "requests")[0]
        == sl.CLOUD_RUN_PRICE_PER_MILLION_REQUESTS
    )
