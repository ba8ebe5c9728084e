"""Serverless bills (:mod:`infralab.economics.costs.billing`, the one formula of each): rounding steps,
free tiers, a price left out, the always-on crossing, the capacity helpers, bad input."""

from __future__ import annotations

import math

import pytest

from infralab.economics.costs import billing, pricing
from infralab.economics.costs import model as m
from infralab.economics.costs import serverless as sl
from infralab.economics.costs.pricing import CostError


def test_lambda_bill_by_hand():
    # 1M requests of 120.3 ms at 1 GB: 121 ms billed each -> 121,000 GB-s.
    bill = billing.lambda_function(1_000_000, 0.1203, 1024)
    assert bill.breakdown["billed_duration_s"] == pytest.approx(0.121)
    assert bill.breakdown["gb_seconds"] == pytest.approx(121_000)
    assert bill.breakdown["compute"] == pytest.approx(121_000 * 0.00001667)
    assert bill.breakdown["requests"] == pytest.approx(0.20)
    assert bill.monthly_usd == pytest.approx(bill.breakdown["compute"] + 0.20)


@pytest.mark.parametrize(("duration_s", "billed_s"), [(0.0001, 0.001), (0.005, 0.005),
                                                      (0.0050001, 0.006)])  # fmt: skip
def test_lambda_rounds_up_to_whole_milliseconds_and_at_least_one(duration_s, billed_s):
    bill = billing.lambda_function(1, duration_s, 128)
    assert bill.breakdown["billed_duration_s"] == pytest.approx(billed_s)
    assert billing.steps(duration_s, 0.001) == pytest.approx(billed_s)


def test_lambda_free_tier_covers_small_workloads():
    assert billing.lambda_function(500_000, 0.05, 1024, free_tier=True).monthly_usd == 0.0
    big = billing.lambda_function(3_000_000, 0.2, 1024, free_tier=True)
    assert big.breakdown["requests"] == pytest.approx(2 * 0.20)
    assert big.breakdown["compute"] == pytest.approx((600_000 - 400_000) * 0.00001667)


def test_zero_requests_cost_nothing():
    assert billing.lambda_function(0, 0.05, 1024).monthly_usd == 0.0
    assert billing.cloud_run(0, 0.05, 1, 1).monthly_usd == 0.0


def test_cloud_run_bills_100ms_steps_and_an_option_names_what_is_unpriced():
    bill = billing.cloud_run(1_000_000, 0.12, 2, 1, usd_per_gib_s=0.0, usd_per_1m_requests=0.0)
    assert bill.breakdown["billed_duration_s"] == pytest.approx(0.2)
    assert bill.breakdown["vcpu_seconds"] == pytest.approx(400_000)
    assert bill.monthly_usd == pytest.approx(400_000 * 0.000024)
    priced = billing.cloud_run(1_000_000, 0.12, 2, 1, usd_per_gib_s=0.000002,
                               usd_per_1m_requests=0.5)  # fmt: skip
    assert priced.monthly_usd == pytest.approx(9.6 + 200_000 * 0.000002 + 0.5)
    sourced = billing.cloud_run(1_000_000, 0.12, 2, 1)  # the sourced memory and request fees
    assert sourced.monthly_usd == pytest.approx(9.6 + 200_000 * 0.0000025 + 0.40)
    work = m.Workload(requests_per_day=1_000_000 / m.DAYS_PER_MONTH)
    option = m.CloudRunCPU("run", 0.12, vcpu=2, memory_gib=1, usd_per_gib_s=None,
                           usd_per_1m_requests=None)  # fmt: skip
    b = option.bill(work)
    assert b.monthly_usd == pytest.approx(400_000 * 0.000024)
    assert "lower bound" in b.note and "memory" in b.note and "per-request" in b.note


def test_cloud_run_concurrency_shares_instance_time_and_free_tier_applies():
    alone = billing.cloud_run(1_000_000, 0.1, 1, 1)
    shared = billing.cloud_run(1_000_000, 0.1, 1, 1, concurrency=4)
    assert shared.breakdown["vcpu_seconds"] == pytest.approx(alone.breakdown["vcpu_seconds"] / 4)
    assert billing.cloud_run(1_000_000, 0.1, 1, 1, free_tier=True).breakdown["cpu"] == 0.0


def test_always_on_and_where_lambda_crosses_it():
    assert billing.hourly(0.1).monthly_usd == pytest.approx(73.0)
    per_request = billing.lambda_function(1, 0.05, 1024).monthly_usd
    n = billing.hourly(0.1).monthly_usd / per_request  # Lambda is linear, the VM flat
    assert billing.lambda_function(round(n), 0.05, 1024).monthly_usd == pytest.approx(
        73.0, rel=1e-3
    )
    assert sl.cloud_run_always_on_hourly(2) == pytest.approx(2 * 0.000018 * 3600)
    assert sl.vm_capacity_requests(100, hours=1) == 360_000


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: billing.lambda_function(-1, 0.1, 1024), "requests"),
        (lambda: billing.lambda_function(10, 0.1, 0.5), "GB instead of MB"),
        (lambda: billing.lambda_function(10, math.nan, 1024), "finite"),
        (lambda: billing.lambda_function(10, "0.1", 1024), "must be a number"),
        (lambda: billing.cloud_run(10, 0.1, 0, 1), "vcpu"),
        (lambda: billing.cloud_run(10, 0.1, 1, 1, concurrency=0.5), "concurrency"),
        (lambda: billing.hourly(-1), "usd_per_hour"),
        (lambda: sl.vm_capacity_requests(10, utilization=80), "fraction"),
    ],
)
def test_bad_input_gets_a_clear_message(call, match):
    with pytest.raises((CostError, ValueError, TypeError), match=match):
        call()


def test_defaults_match_the_kit_price_table():
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
