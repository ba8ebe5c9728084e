"""Checks for lab 04 (serve a small LLM): token measurements, KV-cache size, cost per 1M tokens."""

from __future__ import annotations

import math
from typing import Any

from infralab.charts.tokens import cost_per_million_tokens
from infralab.checks import CheckFailed, CheckPassed, check, check_close, run_student_function


def check_kv_bytes_per_token(fn: Any) -> CheckPassed:
    """``fn(layers, kv_heads, head_dim, bytes_per_value)`` -> KV-cache bytes for one token."""
    if not callable(fn):
        raise CheckFailed("kv_bytes_per_token should be a function.", "Define it with `def`.")
    for args in [(30, 3, 64, 4), (30, 3, 64, 2), (32, 8, 128, 2)]:
        got = run_student_function(fn, *args, name="kv_bytes_per_token")
        layers, heads, dim, size = args
        check_close(
            got,
            2 * layers * heads * dim * size,
            rel=0.0,
            name=f"kv_bytes_per_token{args}",
            hint="Every layer stores a key AND a value vector per KV head: "
            "2 x layers x kv_heads x head_dim x bytes per number.",
        )
    return CheckPassed(
        "kv_bytes_per_token is right: 46,080 bytes per token for SmolLM2 in float32."
    )


def check_cost_per_million(fn: Any) -> CheckPassed:
    """``fn(usd_per_hour, tokens_per_s, utilization)`` -> USD per 1M tokens, None when idle."""
    if not callable(fn):
        raise CheckFailed("cost_per_million should be a function.", "Define it with `def`.")
    for args in [(0.10, 40.0, 1.0), (2.69, 2000.0, 0.5), (6.88, 150.0, 0.1)]:
        got = run_student_function(fn, *args, name="cost_per_million")
        if got is None:
            raise CheckFailed(f"cost_per_million{args} returned None.",
                              "Only zero utilization or zero speed means no tokens.")  # fmt: skip
        check_close(
            got,
            cost_per_million_tokens(*args),
            rel=0.01,
            name=f"cost_per_million{args}",
            hint="Tokens per hour = tokens_per_s x 3600 x utilization; "
            "USD per 1M = usd_per_hour / tokens per hour x 1,000,000.",
        )
    idle = run_student_function(fn, 2.69, 2000.0, 0.0, name="cost_per_million")
    return check(
        idle is None,
        ok="cost_per_million is right, and says 'no tokens' when the machine is idle.",
        problem=f"cost_per_million(2.69, 2000, 0.0) returned {idle!r}.",
        hint="At 0 % utilization nothing is generated: return None instead of dividing by zero.",
    )


def check_measurement(m: Any) -> CheckPassed:
    """The dict the student measured from their own server: TTFT and decode tokens/s."""
    if not isinstance(m, dict):
        raise CheckFailed(f"measurement should be a dict, not {type(m).__name__}.",
                          "Build it like {'ttft_s': ..., 'decode_tokens_per_s': ...}.")  # fmt: skip
    missing = [k for k in ("ttft_s", "decode_tokens_per_s", "completion_tokens") if k not in m]
    if missing:
        raise CheckFailed(f"measurement lacks {', '.join(missing)}.",
                          "Time the stream: first piece -> ttft_s; the rest -> decode_tokens_per_s.")  # fmt: skip
    ttft, tps, n = m["ttft_s"], m["decode_tokens_per_s"], m["completion_tokens"]
    for name, v in (("ttft_s", ttft), ("decode_tokens_per_s", tps)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise CheckFailed(f"{name} = {v!r} is not a positive number.",
                              "Use time.perf_counter() before the request and at each piece.")  # fmt: skip
    check(
        ttft < 60,
        ok="",
        problem=f"ttft_s = {ttft:.1f} s: that is minutes, not seconds.",
        hint="Subtract the start time from the time of the FIRST streamed piece.",
    )
    check(
        1 <= tps <= 20_000,
        ok="",
        problem=f"decode_tokens_per_s = {tps:.3g} is not a plausible decode speed.",
        hint="Divide the tokens after the first by the seconds between first and last piece.",
    )
    return check(
        isinstance(n, int) and n >= 2,
        ok=f"Measured: first token after {ttft * 1e3:.0f} ms, then {tps:.1f} tokens/s.",
        problem=f"completion_tokens = {n!r}: measure a reply of at least 2 tokens.",
        hint="Ask for max_tokens of 32 or more and read usage.completion_tokens.",
    )
