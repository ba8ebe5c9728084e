"""Checks for lab 04 (serve a small LLM): a streamed measurement, the KV-cache memory model
(against random configs and against the memory measured in the runtime), cost per 1M.

The measurement check calls the student's own function against the running server and
tests what it reports against what happened: its times must fit inside the call and its
token count must match the server's. Formulas are compared on random inputs with references
kept in ``infralab.tooling.checks.references.lab04`` (public checks where the references are absent);
the kit's own cost functions handed in are refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
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

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_cost_per_million",
    "check_kv_cache_bytes",
    "check_kv_memory",
    "check_measure_stream",
]


PROBE_PROMPT = "Write a long story about a lighthouse keeper and a storm."


def _ref() -> Any:
    return checks.reference_module("lab04")


def _kit() -> list[Callable[..., Any]]:
    from infralab.economics.costs.billing import unit_cost
    from infralab.engines.models.decoder import kv_cache_bytes

    ref = _ref()
    return [
        unit_cost,
        kv_cache_bytes,
        *([ref.kv_cache_bytes, ref.cost_per_million] if ref else []),
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


COST_HINT = (
    "How many tokens does the machine make in an hour you pay for, at that speed and that share "
    "of busy time? Spread the hour's price over them, per million. No tokens: return None."
)
KV_KEYS = ("layers", "heads", "kv_heads", "hidden")
SMOL = {"layers": 30, "heads": 9, "kv_heads": 3, "hidden": 576}  # SmolLM2-135M's GGUF numbers
KV_HINT = (
    "Per token, each layer keeps a key and a value vector for every KV head (not every query "
    "head: with grouped-query attention several query heads share one); a vector has "
    "hidden / heads numbers of bytes_per_value bytes each. Then times tokens and batch."
)
KV_BAD_HINT = (
    "Refuse what cannot be a model with ValueError and a message: a missing key, a count that "
    "is not a whole number >= 1 (tokens may be 0), hidden not a multiple of heads, heads not a "
    "multiple of kv_heads."
)
KV_BAD = [
    ({**SMOL, "kv_heads": 12}, 10, 1, 4),  # more KV heads than query heads
    ({**SMOL, "kv_heads": 2}, 10, 1, 4),  # 9 heads cannot share 2 KV heads evenly
    ({**SMOL, "hidden": 500}, 10, 1, 4),  # 500 / 9 is no head dimension
    ({**SMOL, "layers": 0}, 10, 1, 4),
    ({**SMOL, "kv_heads": -3}, 10, 1, 4),
    ({**SMOL, "heads": 2.5}, 10, 1, 4),
    ({**SMOL, "layers": "30"}, 10, 1, 4),
    ({k: v for k, v in SMOL.items() if k != "kv_heads"}, 10, 1, 4),
    ({**SMOL, "hidden": None}, 10, 1, 4),
    (SMOL, -1, 1, 4),
    (SMOL, 10, 0, 4),
    (SMOL, 10, 1, 0),
    (SMOL, 10.5, 1, 4),
    ([30, 9, 3, 576], 10, 1, 4),
]


def _kv_outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    """('ok', value) or ('error', message) for ValueError; anything else is a failure."""
    try:
        return "ok", fn(*args)
    except NotImplementedError:
        raise CheckFailed(
            "kv_cache_bytes is still the placeholder.", "Replace `raise NotImplementedError`."
        ) from None
    except ValueError as exc:
        return "error", str(exc)
    except Exception as exc:
        if getattr(exc, "fatal", False):
            raise
        shown = ", ".join(repr(a)[:50] for a in args)
        raise CheckFailed(
            f"kv_cache_bytes({shown}) raised {type(exc).__name__}: {exc}", KV_BAD_HINT
        ) from None


def _kv_configs():
    from hypothesis import strategies as st

    def build(layers: int, kv_heads: int, group: int, head_dim: int) -> dict[str, int]:
        heads = kv_heads * group
        return {"layers": layers, "heads": heads, "kv_heads": kv_heads, "hidden": heads * head_dim}

    config = st.builds(build, st.integers(1, 96), st.integers(1, 16), st.integers(1, 8),
                       st.integers(1, 256))  # fmt: skip
    return st.tuples(config, st.integers(0, 200_000), st.integers(1, 64),
                     st.sampled_from([1, 2, 4]))  # fmt: skip


def _public_kv(fn: Any) -> CheckPassed:
    """Whole bytes, in proportion to layers, KV heads (not query heads), head dimension,
    bytes, tokens and batch; zero for no tokens; ValueError for what cannot be a model."""
    rng = public_rng(4)
    for _ in range(30):
        kv, group, dim = rng.randint(1, 8), rng.randint(1, 8), rng.choice([32, 64, 80, 128])
        cfg = {"layers": rng.randint(1, 40), "heads": kv * group, "kv_heads": kv,
               "hidden": kv * group * dim}  # fmt: skip
        args = (cfg, rng.randint(1, 4000), rng.randint(1, 16), rng.choice([1, 2, 4]))
        kind, got = _kv_outcome(fn, *args)
        expect(
            kind == "ok" and type(got) is int and got > 0,
            f"kv_cache_bytes{args} gave {got!r}, not a positive whole number of bytes.",
            KV_HINT,
        )
        for change, factor in (("layers", 2), ("kv_heads_and_heads", 2), ("hidden", 2),
                               ("tokens", 3), ("batch", 2), ("bytes", 2)):  # fmt: skip
            c, t, b, s = dict(cfg), args[1], args[2], args[3]
            if change == "layers":
                c["layers"] *= 2
            elif change == "kv_heads_and_heads":  # twice the KV heads at the same head size
                c["kv_heads"] *= 2
                c["heads"] *= 2
                c["hidden"] *= 2
            elif change == "hidden":  # twice the head size
                c["hidden"] *= 2
            elif change == "tokens":
                t *= 3
            elif change == "batch":
                b *= 2
            else:
                s *= 2
            kind2, moved = _kv_outcome(fn, c, t, b, s)
            expect(
                kind2 == "ok" and moved == got * factor,
                f"kv_cache_bytes: doubling {change.replace('_', ' ')} should multiply the bytes "
                f"by {factor}, but {got} became {moved!r}.",
                KV_HINT,
            )
        more_queries = {**cfg, "heads": cfg["heads"] * 2, "hidden": cfg["hidden"] * 2}
        kind3, same_cache = _kv_outcome(fn, more_queries, *args[1:])
        expect(
            kind3 == "ok" and same_cache == got,
            "Twice the query heads sharing the same KV heads (same head size) changed the "
            "cache: only KV heads are cached.",
            KV_HINT,
        )
        expect(_kv_outcome(fn, cfg, 0, args[2], args[3]) == ("ok", 0),
               "No tokens should need 0 bytes.", KV_HINT)  # fmt: skip
    for bad in KV_BAD:
        kind, got = _kv_outcome(fn, *bad)
        expect(kind == "error", f"kv_cache_bytes accepted {str(bad)[:90]}.", KV_BAD_HINT)
    return public_pass("kv_cache_bytes scales with layers, KV heads, head size, bytes, tokens "
                       "and batch, ignores query heads, and refuses what cannot be a model")  # fmt: skip


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
def check_kv_cache_bytes(fn: Any) -> CheckPassed:
    """``fn(config, tokens, batch, bytes_per_value)`` -> bytes of KV cache, on random configs
    (grouped-query attention included) and on configs that cannot be a model."""
    refuse_kit_function(fn, _kit(), name="kv_cache_bytes", sample_args=(dict(SMOL), 16, 2, 4))
    ref = _ref()
    if ref is None:
        return _public_kv(fn)

    def same(got: tuple[str, Any], want: tuple[str, Any]) -> bool:
        if got[0] != want[0]:
            return False
        if got[0] == "error":
            if len(got[1]) < 10:
                raise CheckFailed(f"Your error message is only {got[1]!r}.",
                                  "Say which number is wrong and why.")  # fmt: skip
            return True
        return type(got[1]) is int and got[1] == want[1]

    tried = agrees_with_reference(
        lambda *a: _kv_outcome(fn, *a),
        lambda *a: _kv_outcome(ref.kv_cache_bytes, *a),
        _kv_configs(),
        name="kv_cache_bytes",
        hint=KV_HINT + " Return an int.",
        edge_cases=[
            (dict(SMOL), 1, 1, 4),
            (dict(SMOL), 0, 3, 2),
            ({"layers": 32, "heads": 32, "kv_heads": 8, "hidden": 4096}, 8192, 4, 2),
            ({"layers": 2, "heads": 4, "kv_heads": 4, "hidden": 64}, 5, 1, 1),
            ({"layers": 1, "heads": 8, "kv_heads": 1, "hidden": 64}, 7, 2, 4),
        ],  # fmt: skip
        same=same,
    )
    for bad in KV_BAD:
        kind, got = _kv_outcome(fn, *bad)
        if kind != "error":
            raise CheckFailed(f"kv_cache_bytes accepted {str(bad)[:90]} and returned {got!r}.",
                              KV_BAD_HINT)  # fmt: skip
        same(("error", got), ("error", ""))
    return CheckPassed(
        f"kv_cache_bytes is right on {tried} model configs (grouped-query attention too) and "
        f"refuses {len(KV_BAD)} that cannot be a model."
    )


@points(1)
def check_kv_memory(kv_model: Any, config: Any, measured: Any) -> CheckPassed:
    """Your KV model, on the runtime's real config, against the cache memory measured in it."""
    from infralab.engines.models import decoder

    real = {k: getattr(decoder.config(), k) for k in KV_KEYS}
    check_type(config, dict, name="config")
    if any(config.get(k) != v for k, v in real.items()):
        raise CheckFailed(
            "config is not the served model's configuration.",
            "Use the runtime's own: dataclasses.asdict(gen.config).",
        )
    check_type(measured, dict, name="measured")
    need = ("batch", "tokens", "bytes_per_value", "growth_bytes", "allocated_bytes")
    if any(not isinstance(measured.get(k), int) for k in need):
        raise CheckFailed("measured is not a record of kv_memory_growth.",
                          "Keep what kv_memory_growth(gen, ...) returned.")  # fmt: skip
    batch, tokens, size = measured["batch"], measured["tokens"], measured["bytes_per_value"]
    allocated = decoder.kv_cache_bytes(real, tokens + 2, batch, size)
    if measured["allocated_bytes"] != allocated:
        raise CheckFailed("measured does not describe a cache of the served model.",
                          "Keep what kv_memory_growth(gen, ...) returned.")  # fmt: skip
    kind, predicted = _kv_outcome(kv_model, dict(config), tokens, batch, size)
    expect(kind == "ok" and type(predicted) is int,
           f"kv_cache_bytes on the real config gave {predicted!r}.", KV_HINT)  # fmt: skip
    grown = measured["growth_bytes"]
    ratio = grown / predicted if predicted else float("inf")
    return check(
        0.9 <= ratio <= 1.1,
        ok=f"Your model predicts {predicted / 1e6:.2f} MB for {batch} x {tokens} tokens; the "
        f"runtime's cache grew by {grown / 1e6:.2f} MB, measured ({ratio:.3f}x; pages of 4 KiB "
        "explain the rest).",
        problem=f"Your model predicts {predicted / 1e6:.2f} MB, but the cache grew by "
        f"{grown / 1e6:.2f} MB ({ratio:.2f}x).",
        hint="Pass the runtime's real config, the measurement's tokens and batch, and the bytes "
        "of the cache's dtype (measured['bytes_per_value']).",
    )


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
