"""Checks for lab 04 (serve a small LLM): a streamed measurement, KV-cache size, cost per 1M.

The measurement check calls the student's own function against the running server and
tests what it reports against what happened: its times must fit inside the call and its
token count must match the server's. Formulas are compared with references kept here on
random inputs; the kit's own cost functions handed in are refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    check_type,
    points,
    refuse_kit_function,
    run_student_function,
)

PROBE_PROMPT = "Write a long story about a lighthouse keeper and a storm."


def _reference_kv(layers: int, kv_heads: int, head_dim: int, bytes_per_value: int) -> int:
    return 2 * layers * kv_heads * head_dim * bytes_per_value  # a key and a value per head


def _reference_cost(usd_per_hour: float, tokens_per_s: float, utilization: float) -> float | None:
    per_hour = tokens_per_s * 3600 * utilization
    return None if per_hour <= 0 else usd_per_hour / per_hour * 1e6


def _kit() -> list[Callable[..., Any]]:
    from infralab.costs.pricing import cost_per_1k_at_utilization, usd_per_1m_tokens_hourly

    return [
        usd_per_1m_tokens_hourly,
        cost_per_1k_at_utilization,
        _reference_kv,
        _reference_cost,
    ]


@points(3)
def check_measure_stream(
    measure_stream: Callable[..., Any], client: Any, model: str
) -> CheckPassed:
    """Run the student's function twice and test its figures against the call and the server."""
    if not callable(measure_stream):
        raise CheckFailed("measure_stream should be a function.", "Define it with `def`.")
    lines = []
    for max_tokens in (12, 20):
        t0 = time.perf_counter()
        m = run_student_function(measure_stream, PROBE_PROMPT, max_tokens, name="measure_stream")
        wall = time.perf_counter() - t0
        check_type(m, dict, name="measure_stream(...)")
        missing = [k for k in ("ttft_s", "decode_tokens_per_s", "completion_tokens") if k not in m]
        if missing:
            raise CheckFailed(
                f"The result lacks {', '.join(missing)}.",
                "Return a dict with the three keys the lab names.",
            )
        ttft, tps, n = m["ttft_s"], m["decode_tokens_per_s"], m["completion_tokens"]
        for key, v in (("ttft_s", ttft), ("decode_tokens_per_s", tps)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise CheckFailed(f"{key} = {v!r} is not a finite number.", "Time the stream.")
            if v <= 0:
                raise CheckFailed(f"{key} = {v!r} is not positive.", "Subtract start from end.")
        if not isinstance(n, int) or not 2 <= n <= max_tokens:
            raise CheckFailed(
                f"With max_tokens={max_tokens} you report completion_tokens = {n!r}.",
                "Read the count from the usage the server sends in the last chunk.",
            )
        # the server's own count for the same greedy request
        reply = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROBE_PROMPT}],
            max_tokens=max_tokens,
            temperature=0,
        )
        if reply.usage.completion_tokens != n:
            raise CheckFailed(
                f"You report {n} tokens; the server generated {reply.usage.completion_tokens} "
                "for the same request.",
                "Ask with temperature=0 and read usage from the stream's final chunk.",
            )
        decode_s = (n - 1) / tps
        if ttft + decode_s > wall * 1.05 + 0.01:
            raise CheckFailed(
                f"Your figures add up to {ttft + decode_s:.2f} s, but the call took {wall:.2f} s.",
                "Both times must come from clocks read during this very call.",
            )
        lines.append(f"{1e3 * ttft:.0f} ms to the first token, then {tps:.1f} tokens/s")
    return CheckPassed(
        "measure_stream reports what really happened: " + "; ".join(lines) + " (measured now)."
    )


@points(2)
def check_kv_bytes_per_token(fn: Any) -> CheckPassed:
    """``fn(layers, kv_heads, head_dim, bytes_per_value)`` -> KV-cache bytes for one token."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="kv_bytes_per_token", sample_args=(30, 3, 64, 4))
    small = st.integers(min_value=1, max_value=128)
    tried = agrees_with_reference(
        fn,
        _reference_kv,
        st.tuples(small, small, st.integers(1, 256), st.sampled_from([1, 2, 4])),
        name="kv_bytes_per_token",
        hint="What does each layer keep for every past token, per KV head? Count the vectors, "
        "their length, and the bytes of each number.",
        edge_cases=[(30, 3, 64, 4), (1, 1, 1, 1), (32, 8, 128, 2)],
        same=lambda got, want: (
            not isinstance(got, bool) and isinstance(got, (int, float)) and got == want
        ),
    )
    return CheckPassed(f"kv_bytes_per_token is right on {tried} model shapes.")


@points(2)
def check_cost_per_million(fn: Any) -> CheckPassed:
    """``fn(usd_per_hour, tokens_per_s, utilization)`` -> USD per 1M tokens, None when idle."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="cost_per_million", sample_args=(2.69, 2000.0, 0.5))
    pos = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    tried = agrees_with_reference(
        fn,
        _reference_cost,
        st.tuples(pos(0.01, 100), pos(0.0, 20_000), pos(0.0, 1.0)),
        name="cost_per_million",
        hint="How many tokens does the machine make in an hour you pay for, at that speed and "
        "that share of busy time? Spread the hour's price over them, per million. No tokens: "
        "return None.",
        edge_cases=[(0.10, 40.0, 1.0), (2.69, 2000.0, 0.0), (6.88, 0.0, 0.5)],
    )
    return CheckPassed(f"cost_per_million agrees with the definition on {tried} cases.")
