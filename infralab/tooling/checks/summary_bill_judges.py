"""Lab 02's load-summary and Lambda-bill judgements: the random inputs a student's
``load_summary`` and ``lambda_bill_at_memory`` are tried on, and their public (reference-free)
property judgements. Used by ``lab02.check_load_summary`` and
``lab02.check_lambda_bill_at_memory``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from infralab.tooling.checks import (
    CheckPassed,
    call_number,
    expect,
    public_pass,
    public_rng,
    run_student_function,
    same_twice,
)


def _summary_inputs():
    from hypothesis import strategies as st

    latency = st.floats(min_value=1e-4, max_value=5.0, allow_nan=False)
    return st.tuples(
        st.lists(latency, min_size=1, max_size=300),
        st.floats(min_value=0.05, max_value=120.0, allow_nan=False),
    )


SUMMARY_HINT = (
    "Latencies arrive in seconds; percentiles go out in milliseconds (numpy's default, linear "
    "interpolation); throughput counts requests per second of wall time; no requests means no "
    "summary."
)


SUMMARY_KEYS = ("p50_ms", "p95_ms", "p99_ms", "throughput_rps")


def _summary_of(fn: Callable[..., Any], latencies: list[float], wall: float) -> dict[str, float]:
    got = run_student_function(fn, latencies, wall, name="load_summary")
    expect(
        isinstance(got, dict) and all(k in got for k in SUMMARY_KEYS),
        f"load_summary returned {str(got)[:60]}, not a dict with {', '.join(SUMMARY_KEYS)}.",
        "Return a dict with the four keys the lab names.",
    )
    out = {}
    for key in SUMMARY_KEYS:
        out[key] = call_number(lambda k=key: got[k], name=f"load_summary(...)[{key!r}]")
    return out


def _public_summary(fn: Callable[..., Any]) -> CheckPassed:
    """No requests, no summary; percentiles ordered, in ms, inside the data's range, scaling
    with the latencies; throughput counts requests per second of wall time."""
    got = run_student_function(fn, [], 1.0, name="load_summary")
    expect(got is None, f"load_summary([], 1.0) returned {str(got)[:60]}.", SUMMARY_HINT)
    rng = public_rng(4)
    for _ in range(25):
        lat = [rng.lognormvariate(-4, 1) for _ in range(rng.randint(1, 200))]
        wall = rng.uniform(0.5, 60)
        out = _summary_of(fn, lat, wall)
        lo, hi = 1e3 * min(lat), 1e3 * max(lat)
        p50, p95, p99 = out["p50_ms"], out["p95_ms"], out["p99_ms"]
        expect(
            p50 <= p95 * (1 + 1e-9) and p95 <= p99 * (1 + 1e-9),
            f"Your percentiles are out of order: p50 {p50:.4g}, p95 {p95:.4g}, p99 {p99:.4g}.",
            SUMMARY_HINT,
        )
        expect(
            lo * (1 - 1e-9) <= p50 and p99 <= hi * (1 + 1e-9),
            f"With latencies from {lo:.3g} to {hi:.3g} ms your p50/p99 are {p50:.4g}/{p99:.4g}: "
            "outside the data.",
            SUMMARY_HINT,
        )
        double = _summary_of(fn, [2 * x for x in lat], wall)
        expect(
            all(math.isclose(double[k], 2 * out[k], rel_tol=1e-6) for k in SUMMARY_KEYS[:3]),
            "Doubling every latency should double every percentile.",
            SUMMARY_HINT,
        )
        for variant, factor in (((lat, wall / 2), 2.0), ((lat + lat, wall), 2.0)):
            tp = _summary_of(fn, *variant)["throughput_rps"]
            expect(
                math.isclose(tp, factor * out["throughput_rps"], rel_tol=1e-6),
                "Throughput should double with twice the requests in the same time, and with "
                "the same requests in half the time.",
                SUMMARY_HINT,
            )
        same_twice(fn, (lat, wall), run_student_function(fn, lat, wall), name="load_summary")
    return public_pass("load_summary keeps percentiles ordered, in ms and in range; throughput "
                       "follows requests and wall time")  # fmt: skip


def _lambda_inputs():
    from hypothesis import strategies as st

    # durations of whole microseconds plus a half: never exactly on a millisecond boundary,
    # where float rounding (not the student's rule) would decide the billed millisecond
    return st.tuples(
        st.integers(min_value=0, max_value=50_000_000),
        st.integers(min_value=100, max_value=5_000_000).map(lambda us: (us + 0.5) / 1e6),
        st.integers(min_value=128, max_value=10_240),
    )


LAMBDA_HINT = (
    "Memory buys CPU in proportion (the share of one vCPU at 1,769 MB); a single thread cannot "
    "go faster than one vCPU; each request's duration is billed in whole milliseconds, rounded "
    "up; GB is MB / 1024; add the per-request fee."
)


LAMBDA_KEYS = ("vcpu_share", "billed_ms", "usd")


def _bill_of(fn: Callable[..., Any], *args: Any) -> dict[str, float]:
    got = run_student_function(fn, *args, name="lambda_bill_at_memory")
    expect(
        isinstance(got, dict) and all(k in got for k in LAMBDA_KEYS),
        f"lambda_bill_at_memory{args} returned {str(got)[:60]}, not a dict with "
        f"{', '.join(LAMBDA_KEYS)}.",
        "Return a dict with the three keys the lab names.",
    )
    return {
        k: call_number(lambda k=k: got[k], name=f"lambda_bill_at_memory(...)[{k!r}]")
        for k in LAMBDA_KEYS
    }


def _public_lambda(fn: Callable[..., Any]) -> CheckPassed:
    """Whole billed milliseconds; the vCPU share in proportion to memory; the bill in
    proportion to requests, zero without any; more CPU time never cheaper, more memory
    never slower."""
    rng = public_rng(7)
    for _ in range(30):
        requests = rng.randint(1, 5_000_000)
        cpu = (rng.randint(100, 2_000_000) + 0.5) / 1e6
        mb = rng.randint(128, 5000)
        out = _bill_of(fn, requests, cpu, mb)
        billed = out["billed_ms"]
        expect(
            billed >= 1 and billed == int(billed),
            f"billed_ms = {billed:g} for {cpu:g} s of CPU at {mb} MB: not a whole millisecond.",
            LAMBDA_HINT,
        )
        expect(out["usd"] > 0, f"usd = {out['usd']:g} for {requests} requests.", LAMBDA_HINT)
        twice = _bill_of(fn, 2 * requests, cpu, mb)
        expect(
            math.isclose(twice["usd"], 2 * out["usd"], rel_tol=1e-6),
            "Twice the requests should cost twice as much.",
            LAMBDA_HINT,
        )
        more = _bill_of(fn, requests, cpu, 2 * mb)
        expect(
            math.isclose(more["vcpu_share"], 2 * out["vcpu_share"], rel_tol=1e-6),
            "Twice the memory should buy twice the vCPU share.",
            LAMBDA_HINT,
        )
        expect(
            more["billed_ms"] <= billed,
            "More memory (more CPU) made a request take longer.",
            LAMBDA_HINT,
        )
        longer = _bill_of(fn, requests, 2 * cpu, mb)
        expect(longer["usd"] >= out["usd"], "More CPU time per request made the bill smaller.",
               LAMBDA_HINT)  # fmt: skip
        same_twice(fn, (requests, cpu, mb), run_student_function(fn, requests, cpu, mb),
                   name="lambda_bill_at_memory")  # fmt: skip
    none = _bill_of(fn, 0, 0.05, 1024)
    expect(none["usd"] == 0, f"With no requests the bill is {none['usd']:g} USD.", LAMBDA_HINT)
    return public_pass("lambda_bill_at_memory bills whole milliseconds, scales with requests "
                       "and memory, and costs nothing without requests")  # fmt: skip
