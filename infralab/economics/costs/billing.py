"""Each billing model as one short function that returns one :class:`Bill` for a month.

The one copy of every billing formula in the kit: the options of lesson 05, the unit costs
of lessons 02-06, lab checks and the capstone call these. Each bill's ``basis`` says how it
was computed (in numbers) and ``inputs`` lists every price it used as a
:class:`~infralab.core.results.Figure` with its source and date (datasets/pricing/*.csv).

Prices default to the kit's price rows (read through ``infralab.economics.costs.pricing``); pass your
own to any function. A price the data does not hold is never guessed: the function raises
a :class:`CostError` that says which price to pass.
"""

from __future__ import annotations

import math

from infralab.core.results import Figure
from infralab.economics.costs import pricing
from infralab.economics.costs.constants import HOURS_PER_MONTH
from infralab.economics.costs.pricing import CostError, check_nonneg
from infralab.economics.costs.workload import Bill

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "cloud_run",
    "hourly",
    "lambda_function",
    "managed_api",
    "unit_cost",
]


def price(row, column: str = "usd_per_unit", unit: str = "USD", what: str = "") -> Figure:  # type: ignore[no-untyped-def]
    """One price row's value as a Figure labelled 'default' with its source and date."""
    return Figure(
        float(row[column]), unit, "default", str(row["source"]), f"{row['as_of']} {what}".strip()
    )


def steps(duration_s: float, step_s: float) -> float:
    """``duration_s`` rounded up to whole billing steps (never below one step)."""
    d = check_nonneg("duration_s", duration_s)
    return max(1, math.ceil(round(d / step_s, 9))) * step_s


def _rate(name: str, given: float | None, row) -> float:  # type: ignore[no-untyped-def]
    """The price you pass, else the kit's price row."""
    return float(row["usd_per_unit"]) if given is None else check_nonneg(name, given)


def scaled_duration(duration_s: float, measured_vcpus: float, vcpus: float) -> float:
    """A CPU-bound request measured at ``duration_s`` on ``measured_vcpus``, run on ``vcpus``:
    a smaller share slows it in proportion; more than it was measured with does not help."""
    d, v, s = (check_nonneg(n, x) for n, x in (("duration_s", duration_s),
               ("measured_vcpus", measured_vcpus), ("vcpus", vcpus)))  # fmt: skip
    if v == 0 or s == 0:
        raise CostError("measured_vcpus and vcpus must be > 0")
    return d * v / min(s, v)


def _bill(name: str, kind: str, usd: float, requests: float, basis: str, inputs: tuple,  # type: ignore[type-arg]
          breakdown: dict[str, float], provider: str = "") -> Bill:  # fmt: skip
    return Bill(name, kind, usd, requests, 0.0, breakdown=breakdown, basis=basis,
                inputs=tuple(inputs), provider=provider)  # fmt: skip


def managed_api(
    requests: float,
    tokens_in: float,
    tokens_out: float,
    *,
    usd_per_1m_input: float,
    usd_per_1m_output: float,
    cached_tokens_in: float = 0.0,
    usd_per_1m_cached_input: float | None = None,
    name: str = "managed API",
    inputs: tuple[Figure, ...] = (),
) -> Bill:
    """Per token: input, cached input and output tokens, each at its own price per 1M."""
    n, tin, tout = (check_nonneg(k, v) for k, v in
                    (("requests", requests), ("tokens_in", tokens_in), ("tokens_out", tokens_out)))  # fmt: skip
    cached = check_nonneg("cached_tokens_in", cached_tokens_in)
    if cached > tin:
        raise CostError(f"cached_tokens_in ({cached:g}) cannot exceed tokens_in ({tin:g})")
    if cached and usd_per_1m_cached_input is None:
        raise CostError(
            "cached input tokens need usd_per_1m_cached_input (no such price in the kit's data)"
        )
    p_in, p_out = (
        check_nonneg("usd_per_1m_input", usd_per_1m_input),
        check_nonneg("usd_per_1m_output", usd_per_1m_output),
    )
    p_cached = check_nonneg("usd_per_1m_cached_input", usd_per_1m_cached_input or 0.0)
    usd_in = n * (tin - cached) * p_in / 1e6
    usd_cached = n * cached * p_cached / 1e6
    usd_out = n * tout * p_out / 1e6
    basis = (f"{n:,.0f} requests x ({tin - cached:,.0f} input x {p_in:g} + {cached:,.0f} cached x "
             f"{p_cached:g} + {tout:,.0f} output x {p_out:g}) USD per 1M tokens")  # fmt: skip
    bd = {"input_tokens": usd_in, "cached_input_tokens": usd_cached, "output_tokens": usd_out}
    return _bill(name, "api", usd_in + usd_cached + usd_out, n, basis, inputs, bd)


def lambda_function(
    requests: float,
    duration_s: float,
    memory_mb: float,
    *,
    measured_vcpus: float | None = None,
    architecture: str = "x86_64",
    usd_per_gb_s: float | None = None,
    usd_per_1m_requests: float | None = None,
    free_tier: bool = False,
    name: str = "AWS Lambda",
) -> Bill:
    """AWS Lambda: GB-seconds (each call rounded up to 1 ms) plus a fee per request.

    Lambda's CPU is proportional to memory (one vCPU at 1,769 MB): a request measured at
    ``duration_s`` on ``measured_vcpus`` runs ``duration_s * measured / min(share, measured)``
    on the function's share. Without ``measured_vcpus`` the duration is taken as given.
    """
    n = check_nonneg("requests", requests)
    gb_row = pricing.serverless_cpu_row("aws", "lambda", "compute", architecture)
    req_row = pricing.serverless_cpu_row("aws", "lambda", "requests", architecture)
    lo, _, _ = pricing.serverless_fact("aws", "lambda", "min_memory_mb")
    hi, _, _ = pricing.serverless_fact("aws", "lambda", "max_memory_mb")
    mb = check_nonneg("memory_mb", memory_mb)
    if not lo <= mb <= hi:
        raise CostError(f"Lambda memory must be {lo:.0f} to {hi:,.0f} MB, not {memory_mb:g} "
                        "(did you pass GB instead of MB?)")  # fmt: skip
    duration = check_nonneg("duration_s", duration_s)
    inputs = [price(gb_row, unit="USD/GB-s", what=f"Lambda {architecture}"),
              price(req_row, unit="USD/1M requests", what="Lambda")]  # fmt: skip
    shown = f"{duration * 1000:,.2f} ms"
    if measured_vcpus is not None:
        per_vcpu, src, as_of = pricing.serverless_fact("aws", "lambda", "memory_mb_per_vcpu")
        top, _, _ = pricing.serverless_fact("aws", "lambda", "max_vcpu")
        share = min(mb / per_vcpu, top)
        v = check_nonneg("measured_vcpus", measured_vcpus)
        duration = scaled_duration(duration, v, share)
        shown += f" on {v:g} vCPU -> {duration * 1000:,.2f} ms on {share:.2f} vCPU"
        inputs.append(Figure(per_vcpu, "MB per vCPU", "default", src, as_of))
    p_gb = _rate("usd_per_gb_s", usd_per_gb_s, gb_row)
    p_req = _rate("usd_per_1m_requests", usd_per_1m_requests, req_row)
    billed = steps(duration, float(gb_row["billing_increment_s"])) if n else 0.0
    gb_s = n * billed * mb / 1024.0
    free_gb_s = float(gb_row["free_units_per_month"]) if free_tier else 0.0
    free_req = float(req_row["free_units_per_month"]) * 1e6 if free_tier else 0.0
    compute = max(gb_s - free_gb_s, 0.0) * p_gb
    fees = max(n - free_req, 0.0) / 1e6 * p_req
    basis = (f"{n:,.0f} x {shown}, billed {billed * 1000:,.0f} ms (1 ms steps) x "
             f"{mb / 1024:.3f} GB x {p_gb:.10g} USD/GB-s + {p_req:g} USD per 1M requests"
             + (" (free tier deducted)" if free_tier else ""))  # fmt: skip
    bd = {"compute": compute, "requests": fees, "gb_seconds": gb_s, "billed_duration_s": billed}
    return _bill(name, "serverless_cpu", compute + fees, n, basis, tuple(inputs), bd, "aws")


def cloud_run(
    requests: float,
    duration_s: float,
    vcpu: float,
    memory_gib: float,
    *,
    concurrency: float = 1.0,
    free_tier: bool = False,
    usd_per_vcpu_s: float | None = None,
    usd_per_gib_s: float | None = None,
    usd_per_1m_requests: float | None = None,
    name: str = "Cloud Run",
) -> Bill:
    """Cloud Run request-based: vCPU-seconds and GiB-seconds while serving (100 ms steps,
    shared by ``concurrency`` requests) plus a fee per request."""
    run = "cloud_run_request_based"
    cpu = pricing.serverless_cpu_row("gcp", run, "cpu")
    mem = pricing.serverless_cpu_row("gcp", run, "memory")
    req = pricing.serverless_cpu_row("gcp", run, "requests")
    n = check_nonneg("requests", requests)
    v, g = check_nonneg("vcpu", vcpu), check_nonneg("memory_gib", memory_gib)
    if v == 0 or g == 0:
        raise CostError("vcpu and memory_gib must be > 0")
    if check_nonneg("concurrency", concurrency) < 1:
        raise CostError("concurrency must be >= 1 (requests sharing one instance)")
    p_cpu = _rate("usd_per_vcpu_s", usd_per_vcpu_s, cpu)
    p_mem = _rate("usd_per_gib_s", usd_per_gib_s, mem)
    p_req = _rate("usd_per_1m_requests", usd_per_1m_requests, req)
    billed = steps(duration_s, float(cpu["billing_increment_s"])) if n else 0.0
    instance_s = n * billed / concurrency
    vcpu_s, gib_s = instance_s * v, instance_s * g
    free = lambda row: float(row["free_units_per_month"]) if free_tier else 0.0  # noqa: E731
    cpu_usd = max(vcpu_s - free(cpu), 0.0) * p_cpu
    mem_usd = max(gib_s - free(mem), 0.0) * p_mem
    req_usd = max(n - free(req) * 1e6, 0.0) / 1e6 * p_req
    basis = (f"{n:,.0f} x {billed * 1000:,.0f} ms (100 ms steps) / {concurrency:g} per instance x "
             f"({v:g} vCPU x {p_cpu:g} + {g:g} GiB x {p_mem:g} USD/s) + {p_req:g} USD per 1M requests")  # fmt: skip
    inputs = (price(cpu, unit="USD/vCPU-s", what="Cloud Run"), price(mem, unit="USD/GiB-s", what="Cloud Run"),
              price(req, unit="USD/1M requests", what="Cloud Run"))  # fmt: skip
    bd = {"cpu": cpu_usd, "memory": mem_usd, "requests": req_usd, "vcpu_seconds": vcpu_s,
          "gib_seconds": gib_s, "instance_seconds": instance_s, "billed_duration_s": billed}  # fmt: skip
    return _bill(name, "serverless_cpu", cpu_usd + mem_usd + req_usd, n, basis, inputs, bd, "gcp")


def hourly(
    usd_per_hour: float,
    instances: int = 1,
    hours: float = HOURS_PER_MONTH,
    *,
    kind: str = "cpu_vm",
    name: str = "always-on machine",
    inputs: tuple[Figure, ...] = (),
    provider: str = "",
) -> Bill:
    """A CPU VM or a dedicated GPU (on-demand, spot or reserved: the price says which):
    every instance billed for every hour, busy or idle."""
    rate, h = check_nonneg("usd_per_hour", usd_per_hour), check_nonneg("hours", hours)
    if int(instances) != instances or instances < 0:
        raise CostError(f"instances must be a whole number >= 0, not {instances!r}")
    usd = instances * rate * h
    basis = f"{instances} x {rate:g} USD/h x {h:,.0f} h"
    return _bill(name, kind, usd, 0.0, basis, inputs, {"instance_hours": instances * h}, provider)


def per_second_gpu(
    billed_s: float, usd_per_hour: float, *, name: str = "per-second GPU",
    inputs: tuple[Figure, ...] = (), provider: str = "",
) -> Bill:  # fmt: skip
    """A GPU billed per second it runs (busy, idle timeout and cold starts all count)."""
    s, rate = check_nonneg("billed_s", billed_s), check_nonneg("usd_per_hour", usd_per_hour)
    basis = f"{s:,.0f} s x {rate:g} USD/h / 3,600"
    return _bill(
        name, "per_second_gpu", s * rate / 3600.0, 0.0, basis, inputs, {"billed_s": s}, provider
    )


def egress(gb: float, *, provider: str = "aws", usd_per_gb: float | None = None) -> Bill:
    """Data sent out of ``provider`` to another provider or the internet, per GB."""
    row = pricing.egress_row(provider)
    rate = (
        float(row["usd_per_gb"]) if usd_per_gb is None else check_nonneg("usd_per_gb", usd_per_gb)
    )
    g = check_nonneg("gb", gb)
    return _bill(f"egress from {provider}", "egress", g * rate, 0.0, f"{g:,.2f} GB x {rate:g} USD/GB",
                 (price(row, "usd_per_gb", "USD/GB", f"{provider} egress"),), {"gb": g}, provider)  # fmt: skip


def unit_cost(
    usd_per_hour: float, units_per_s: float, utilization: float, per: float = 1e6
) -> float | None:
    """What ``per`` units cost on an hourly machine busy ``utilization`` of the time.

    The idle-GPU trap in one line: halve the utilization, double the unit cost. None (no
    units served) at zero utilization or zero throughput, never a division error.
    """
    rate, ups = check_nonneg("usd_per_hour", usd_per_hour), check_nonneg("units_per_s", units_per_s)
    util = check_nonneg("utilization", utilization)
    if util > 1:
        raise CostError(f"utilization is a share between 0 and 1, not {utilization}")
    served_per_hour = ups * 3600.0 * util
    return None if served_per_hour <= 0 else rate / served_per_hour * per


def lambda_compute_tiered(gb_seconds: float, architecture: str = "x86_64") -> float:
    """A month's Lambda compute charge under the published volume tiers (no free tier)."""
    gb_s = check_nonneg("gb_seconds", gb_seconds)
    tiers = pricing.lambda_tiers(architecture)
    usd = 0.0
    for k, (start, rate) in enumerate(tiers):
        end = tiers[k + 1][0] if k + 1 < len(tiers) else math.inf
        if gb_s > start:
            usd += (min(gb_s, end) - start) * rate
    return usd
