"""Serverless prices and capacities: the published Lambda and Cloud Run rates by name.

The bills themselves are :func:`infralab.economics.costs.billing.lambda_function` and
:func:`infralab.economics.costs.billing.cloud_run` (the one copy of each formula); this module names
the prices they read, so an option or a lesson can show or override one, and holds the two
capacity helpers lessons 02 and the lab use.

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

from infralab.economics.costs import pricing
from infralab.economics.costs.constants import HOURS_PER_MONTH

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "cloud_run_always_on_hourly",
    "vm_capacity_requests",
]


SOURCE_LAMBDA = (
    "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/aws-lambda.html"
)
SOURCE_CLOUD_RUN = (
    "https://cloud.google.com/run/pricing (CPU); memory and request fees: "
    "https://github.com/firebase/firebase-tools/blob/master/src/deploy/functions/pricing.ts"
)

# Every price, free allowance and billing step below is read from
# datasets/pricing/serverless_cpu.csv through infralab.economics.costs.pricing (the one reader of price
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
        raise pricing.CostTypeError(
            f"{name} must be a number, got {type(value).__name__} ({value!r})",
            hint=f"Pass {name} as an int or float (a slider's .value, not the slider).",
        )
    value = float(value)
    if not math.isfinite(value):
        raise pricing.CostError(
            f"{name} must be a finite number, got {value}",
            hint=f"{name} is NaN or infinite: check the measurement or arithmetic that made it.",
        )
    if value < low or (not allow_zero and value == 0):
        bound = f"> {low:g}" if not allow_zero else f">= {low:g}"
        raise pricing.CostError(
            f"{name} must be {bound}, got {value:g}", hint=f"Use a {name} {bound}."
        )
    return value


def vm_capacity_requests(
    throughput_rps: float, hours: float = HOURS_PER_MONTH, *, utilization: float = 1.0
) -> float:
    """Requests one always-on server can serve in ``hours`` at ``utilization`` of its measured throughput."""
    rps = _number("throughput_rps", throughput_rps)
    util = _number("utilization", utilization)
    if util > 1:
        raise pricing.CostError(
            f"utilization is a fraction between 0 and 1, got {util:g}",
            hint="Write utilization as a share: 0.6 for 60 %, at most 1.",
        )
    return rps * util * _number("hours", hours) * 3600


def cloud_run_always_on_hourly(vcpu: float = 2.0) -> float:
    """USD per hour to keep a Cloud Run instance of ``vcpu`` warm all the time (instance-based
    billing, CPU part only). For a plain VM use ``infralab.economics.costs.pricing.cpu_vm()``.
    """
    return _number("vcpu", vcpu, allow_zero=False) * CLOUD_RUN_INSTANCE_PRICE_PER_VCPU_S * 3600
