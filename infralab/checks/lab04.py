"""Checks for lab 04 (serve a small LLM): a streamed measurement, KV-cache size, cost per 1M.

The measurement check calls the student's own function against the running server and
tests what it reports against what happened: its times must fit inside the call and its
token count must match the server's. Formulas are compared on random inputs with references
kept in ``infralab.checks.references.lab04`` (public checks where the references are absent);
the kit's own cost functions handed in are refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from infralab import checks
from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check_type,
    expect,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_student_function,
    same_twice,
    scales_as,
)

PROBE_PROMPT = "Write a long story about a lighthouse keeper and a storm."


def _ref() -> Any:
    return checks.reference_module("lab04")


def _kit() -> list[Callable[..., Any]]:
    from infralab.costs.billing import unit_cost

    ref = _ref()
    return [
        unit_cost,
        *([ref.kv_bytes_per_token, ref.cost_per_million] if ref else []),
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


KV_HINT = (
    "What does each layer keep for every past token, per KV head? Count the vectors, their "
    "length, and the bytes of each number."
)
COST_HINT = (
    "How many tokens does the machine make in an hour you pay for, at that speed and that share "
    "of busy time? Spread the hour's price over them, per million. No tokens: return None."
)
KV_ARGS = ("the layers", "the KV heads", "the head dimension", "the bytes per value")


def _public_kv(fn: Any) -> CheckPassed:
    """A positive whole number of bytes, in proportion to each of the four arguments."""
    rng = public_rng(4)
    for _ in range(20):
        args = (rng.randint(1, 64), rng.randint(1, 16), rng.randint(1, 128), rng.choice([1, 2, 4]))
        got = run_student_function(fn, *args, name="kv_bytes_per_token")
        expect(
            not isinstance(got, bool) and isinstance(got, (int, float)) and got > 0
            and got == int(got),
            f"kv_bytes_per_token{args} returned {got!r}, not a positive whole number of bytes.",
            KV_HINT,
        )  # fmt: skip
        for i, what in enumerate(KV_ARGS):
            scales_as(fn, args, i, 2, 1, name="kv_bytes_per_token", what=what, hint=KV_HINT)
        same_twice(fn, args, got, name="kv_bytes_per_token")
    return public_pass("kv_bytes_per_token grows in proportion to each of its four arguments")


def _public_cost(fn: Any) -> CheckPassed:
    """None with no tokens; otherwise a positive price in proportion to the hourly price and
    in inverse proportion to the speed and to the busy share."""
    for args in ((2.69, 2000.0, 0.0), (6.88, 0.0, 0.5)):
        got = run_student_function(fn, *args, name="cost_per_million")
        expect(got is None, f"cost_per_million{args} returned {got!r}: no tokens are made.",
               COST_HINT)  # fmt: skip
    rng = public_rng(5)
    for _ in range(25):
        args = (rng.uniform(0.05, 100), rng.uniform(1, 20_000), rng.uniform(0.01, 1.0))
        got = call_number(fn, *args, name="cost_per_million")
        expect(got > 0, f"cost_per_million{args} returned {got:g}.", COST_HINT)
        for i, what, power in ((0, "the hourly price", 1), (1, "the speed", -1),
                               (2, "the busy share", -1)):  # fmt: skip
            factor = 2.0 if i != 2 else 0.5
            scales_as(fn, args, i, factor, power, name="cost_per_million", what=what,
                      hint=COST_HINT)  # fmt: skip
        same_twice(fn, args, got, name="cost_per_million")
    return public_pass("cost_per_million is None without tokens and scales with price, speed "
                       "and busy share")  # fmt: skip


@points(2)
def check_kv_bytes_per_token(fn: Any) -> CheckPassed:
    """``fn(layers, kv_heads, head_dim, bytes_per_value)`` -> KV-cache bytes for one token."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="kv_bytes_per_token", sample_args=(30, 3, 64, 4))
    ref = _ref()
    if ref is None:
        return _public_kv(fn)
    small = st.integers(min_value=1, max_value=128)
    tried = agrees_with_reference(
        fn,
        ref.kv_bytes_per_token,
        st.tuples(small, small, st.integers(1, 256), st.sampled_from([1, 2, 4])),
        name="kv_bytes_per_token",
        hint=KV_HINT,
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
    ref = _ref()
    if ref is None:
        return _public_cost(fn)
    pos = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    tried = agrees_with_reference(
        fn,
        ref.cost_per_million,
        st.tuples(pos(0.01, 100), pos(0.0, 20_000), pos(0.0, 1.0)),
        name="cost_per_million",
        hint=COST_HINT,
        edge_cases=[(0.10, 40.0, 1.0), (2.69, 2000.0, 0.0), (6.88, 0.0, 0.5)],
    )
    return CheckPassed(f"cost_per_million agrees with the definition on {tried} cases.")
