"""Serverless bills from measured durations: AWS Lambda style, Cloud Run style, and an always-on VM.

A function is billed for the time it runs (rounded up) times the memory it reserves, plus a
fee per request; a VM is billed for every hour it exists, busy or not. Which is cheaper
depends on traffic: these functions turn a measured mean duration into a monthly bill so
the lesson can find the crossing point.

Prices (defaults) are the rows of datasets/pricing/serverless_cpu.csv, each with its source:
- AWS Lambda (https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/aws-lambda.html):
  0.20 USD per 1M requests, 0.00001667 USD per GB-second (x86, first tier); free tier 1M
  requests and 400,000 GB-s per month. Durations are billed in 1 ms steps.
- Google Cloud Run, request-based (https://cloud.google.com/run/pricing): 0.000024 USD per
  vCPU-second, billed in 100 ms steps; free tier 180,000 vCPU-s, 360,000 GiB-s and 2M
  requests per month. Memory 0.0000025 USD per GiB-second and 0.40 USD per million
  requests, as listed in firebase/firebase-tools (2022-10-01: an old figure, re-check).
Check a price before quoting it as current; pass your own to any function.
"""

from __future__ import annotations

import math
from typing import Any

from infralab.costs import billing, pricing
from infralab.costs.constants import HOURS_PER_MONTH

SOURCE_LAMBDA = (
    "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/aws-lambda.html"
)
SOURCE_CLOUD_RUN = (
    "https://cloud.google.com/run/pricing (CPU); memory and request fees: "
    "https://github.com/firebase/firebase-tools/blob/master/src/deploy/functions/pricing.ts"
)

# Every price, free allowance and billing step below is read from
# datasets/pricing/serverless_cpu.csv through infralab.costs.pricing (the one reader of price
# data); the names stay so callers can show or override them.
_LAMBDA = pricing.serverless_cpu_row("aws", "lambda", "compute")
_LAMBDA_REQ = pricing.serverless_cpu_row("aws", "lambda", "requests")
_RUN = "cloud_run_request_based"
_RUN_CPU = pricing.serverless_cpu_row("gcp", _RUN, "cpu")
_RUN_MEM = pricing.serverless_cpu_row("gcp", _RUN, "memory")
_RUN_REQ = pricing.serverless_cpu_row("gcp", _RUN, "requests")

LAMBDA_PRICE_PER_GB_S = float(_LAMBDA["usd_per_unit"])
LAMBDA_PRICE_PER_MILLION_REQUESTS = float(_LAMBDA_REQ["usd_per_unit"])
LAMBDA_FREE_REQUESTS = float(_LAMBDA_REQ["free_units_per_month"]) * 1e6  # file unit: 1M requests
LAMBDA_FREE_GB_S = float(_LAMBDA["free_units_per_month"])
LAMBDA_STEP_S = float(_LAMBDA["billing_increment_s"])
LAMBDA_MEMORY_GB_RANGE = (0.125, 10.24)  # 128 MB to 10,240 MB

CLOUD_RUN_PRICE_PER_VCPU_S = float(_RUN_CPU["usd_per_unit"])  # request-based billing
CLOUD_RUN_PRICE_PER_GIB_S = float(_RUN_MEM["usd_per_unit"])  # request-based (2022-10 figure)
CLOUD_RUN_PRICE_PER_MILLION_REQUESTS = float(_RUN_REQ["usd_per_unit"])
CLOUD_RUN_INSTANCE_PRICE_PER_VCPU_S = pricing.serverless_cpu_price(
    "gcp", "cloud_run_instance_based", "cpu"
)[0]  # instance-based billing
CLOUD_RUN_FREE_VCPU_S = float(_RUN_CPU["free_units_per_month"])
CLOUD_RUN_FREE_GIB_S = float(_RUN_MEM["free_units_per_month"])
CLOUD_RUN_FREE_REQUESTS = float(_RUN_REQ["free_units_per_month"]) * 1e6
CLOUD_RUN_STEP_S = float(_RUN_CPU["billing_increment_s"])


def _number(name: str, value: Any, *, low: float = 0.0, allow_zero: bool = True) -> float:
    """A finite number >= ``low``; a clear message otherwise (sliders and students pass odd things)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if value < low or (not allow_zero and value == 0):
        bound = f"> {low:g}" if not allow_zero else f">= {low:g}"
        raise ValueError(f"{name} must be {bound}, got {value:g}")
    return value


def billed_duration(duration_s: float, step_s: float) -> float:
    """``duration_s`` rounded up to a whole number of billing steps (:func:`billing.steps`)."""
    return billing.steps(_number("duration_s", duration_s), step_s)


def lambda_bill(
    requests: int,
    mean_duration_s: float,
    memory_gb: float,
    *,
    price_per_gb_s: float = LAMBDA_PRICE_PER_GB_S,
    price_per_million_requests: float = LAMBDA_PRICE_PER_MILLION_REQUESTS,
    free_tier: bool = False,
) -> dict[str, Any]:
    """A month of AWS Lambda as a dict (the lab 02 form of :func:`billing.lambda_function`).

    Every request is taken to last ``mean_duration_s``: with a spread of durations, the
    rounding adds on average about half a step per request more than shown here.
    """
    n = _number("requests", requests)
    if n != int(n):
        raise ValueError(f"requests must be a whole number, got {requests}")
    duration = _number("mean_duration_s", mean_duration_s)
    memory = _number("memory_gb", memory_gb, allow_zero=False)
    lo, hi = LAMBDA_MEMORY_GB_RANGE
    if not lo <= memory <= hi:
        raise ValueError(
            f"memory_gb must be between {lo} and {hi} (Lambda offers 128 MB to 10,240 MB), "
            f"got {memory:g}. Did you pass MB instead of GB?"
        )
    b = billing.lambda_function(
        n,
        duration,
        memory * 1024.0,
        usd_per_gb_s=_number("price_per_gb_s", price_per_gb_s),
        usd_per_1m_requests=_number("price_per_million_requests", price_per_million_requests),
        free_tier=free_tier,
    )
    return {
        "total_usd": b.monthly_usd,
        "compute_usd": b.breakdown["compute"],
        "requests_usd": b.breakdown["requests"],
        "gb_seconds": b.breakdown["gb_seconds"],
        "billed_duration_s": b.breakdown["billed_duration_s"],
        "requests": int(n),
        "memory_gb": memory,
        "free_tier": bool(free_tier),
        "source": SOURCE_LAMBDA,
    }


def cloud_run_bill(
    requests: int,
    mean_duration_s: float,
    vcpu: float,
    memory_gib: float,
    *,
    concurrency: float = 1,
    free_tier: bool = False,
    price_per_vcpu_s: float = CLOUD_RUN_PRICE_PER_VCPU_S,
    price_per_gib_s: float | None = CLOUD_RUN_PRICE_PER_GIB_S,
    price_per_million_requests: float | None = CLOUD_RUN_PRICE_PER_MILLION_REQUESTS,
) -> dict[str, Any]:
    """A month of Cloud Run request-based billing as a dict (:func:`billing.cloud_run`).

    ``concurrency`` is how many requests share an instance's billed time on average. Pass
    ``None`` as a memory or request price to leave it unpriced (listed in ``unpriced``).
    """
    n = _number("requests", requests)
    if n != int(n):
        raise ValueError(f"requests must be a whole number, got {requests}")
    _number("concurrency", concurrency, low=1)
    unpriced = []
    if price_per_gib_s is None:
        unpriced.append("memory GiB-seconds (no price given)")
    if price_per_million_requests is None:
        unpriced.append("per-request fee (no price given)")
    b = billing.cloud_run(
        n,
        _number("mean_duration_s", mean_duration_s),
        _number("vcpu", vcpu, allow_zero=False),
        _number("memory_gib", memory_gib, allow_zero=False),
        concurrency=concurrency,
        free_tier=free_tier,
        usd_per_vcpu_s=_number("price_per_vcpu_s", price_per_vcpu_s),
        usd_per_gib_s=0.0
        if price_per_gib_s is None
        else _number("price_per_gib_s", price_per_gib_s),
        usd_per_1m_requests=0.0
        if price_per_million_requests is None
        else _number("price_per_million_requests", price_per_million_requests),
    )
    bd = b.breakdown
    return {
        "total_usd": b.monthly_usd,
        "compute_usd": bd["cpu"] + bd["memory"],
        "cpu_usd": bd["cpu"],
        "memory_usd": bd["memory"],
        "requests_usd": bd["requests"],
        "vcpu_seconds": bd["vcpu_seconds"],
        "gib_seconds": bd["gib_seconds"],
        "instance_seconds": bd["instance_seconds"],
        "billed_duration_s": bd["billed_duration_s"],
        "requests": int(n),
        "free_tier": bool(free_tier),
        "unpriced": unpriced,
        "source": SOURCE_CLOUD_RUN,
    }


def always_on_bill(hourly_usd: float, hours: float = HOURS_PER_MONTH) -> dict[str, Any]:
    """A VM (or kept-warm instance) billed for every hour, whether it serves or idles."""
    rate = _number("hourly_usd", hourly_usd)
    hours = _number("hours", hours)
    return {"total_usd": rate * hours, "hourly_usd": rate, "hours": hours}


def break_even_requests(
    hourly_usd: float,
    mean_duration_s: float,
    memory_gb: float,
    *,
    hours: float = HOURS_PER_MONTH,
    price_per_gb_s: float = LAMBDA_PRICE_PER_GB_S,
    price_per_million_requests: float = LAMBDA_PRICE_PER_MILLION_REQUESTS,
) -> float:
    """Requests per month above which the always-on VM is cheaper than Lambda (no free tier).

    Lambda's bill grows linearly with requests, the VM's is flat: they cross where the VM's
    monthly price equals the per-request Lambda cost times requests. Whether the VM can
    actually serve that many requests is a separate question (its throughput).
    """
    per_request = lambda_bill(
        1,
        mean_duration_s,
        memory_gb,
        price_per_gb_s=price_per_gb_s,
        price_per_million_requests=price_per_million_requests,
    )["total_usd"]
    if per_request <= 0:
        return math.inf
    return always_on_bill(hourly_usd, hours)["total_usd"] / per_request


def vm_capacity_requests(
    throughput_rps: float, hours: float = HOURS_PER_MONTH, *, utilization: float = 1.0
) -> float:
    """Requests one always-on server can serve in ``hours`` at ``utilization`` of its measured throughput."""
    rps = _number("throughput_rps", throughput_rps)
    util = _number("utilization", utilization)
    if util > 1:
        raise ValueError(f"utilization is a fraction between 0 and 1, got {util:g}")
    return rps * util * _number("hours", hours) * 3600


def cloud_run_always_on_hourly(vcpu: float = 2.0) -> float:
    """USD per hour to keep a Cloud Run instance of ``vcpu`` warm all the time (instance-based
    billing, CPU part only). For a plain VM use ``infralab.costs.pricing.cpu_vm()``.
    """
    return _number("vcpu", vcpu, allow_zero=False) * CLOUD_RUN_INSTANCE_PRICE_PER_VCPU_S * 3600
