"""Lab 03's int8 judgements: the random and edge-case matrices (zeros, constants, extremes) a
student's ``quantize_int8``/``dequantize`` and ``int8_matmul`` are tried on, the error bound
an int8 product must meet, and the rules each round trip and product are judged by. Used by
``lab03.check_quantize`` and ``lab03.check_int8_matmul``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infralab.tooling.checks import (
    expect,
    number,
    run_student_function,
)


def _matrix(seed: int, rows: int, cols: int, kind: str) -> np.ndarray:
    """A float32 matrix of one of the shapes of data a quantizer meets."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols))
    if kind == "positive":
        x = np.abs(x) + 0.5
    elif kind == "negative":
        x = -np.abs(x) - 0.5
    elif kind == "zeros_inside":
        x[rng.random(x.shape) < 0.3] = 0.0
    elif kind == "constant":
        x = np.full(x.shape, rng.choice([-3.5, 0.25, 7.0]))
    elif kind == "all_zeros":
        x = np.zeros(x.shape)
    elif kind == "extreme":
        x = x * 1e30
    elif kind == "tiny":
        x = x * 1e-20
    elif kind == "outlier":
        x[0, 0] = 1000.0  # one large value stretches the scale for every other element
    return x.astype(np.float32)


KINDS = ("normal", "positive", "negative", "zeros_inside", "constant", "all_zeros", "extreme",
         "tiny", "outlier")  # fmt: skip


def _matrices():
    from hypothesis import strategies as st

    return st.builds(
        _matrix, st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(1, 9),
        st.sampled_from(KINDS),
    )  # fmt: skip


QUANT_HINT = (
    "The range is [min(x, 0), max(x, 0)] so that 0 is inside it; scale = range / 255 (1.0 when "
    "the range is 0); zero_point = -128 - round(min / scale); q = clip(round(x / scale) + "
    "zero_point, -128, 127) as int8. Compute in float64."
)


def _quantized(fn: Any, x: np.ndarray) -> tuple[np.ndarray, float, int]:
    got = run_student_function(fn, x, name="quantize_int8")
    expect(
        isinstance(got, (tuple, list)) and len(got) == 3,
        f"quantize_int8 returned {str(got)[:60]}, not (q, scale, zero_point).",
        "Return a tuple of three: the int8 array, the scale (a float), the zero point (an int).",
    )
    q, scale, zero_point = got
    expect(
        isinstance(q, np.ndarray) and q.dtype == np.int8 and q.shape == x.shape,
        f"q should be an int8 array of shape {x.shape}, but it is "
        f"{getattr(q, 'dtype', type(q).__name__)} of shape {getattr(q, 'shape', '?')}.",
        "Round, clip to [-128, 127], then .astype(np.int8).",
    )
    scale = number(scale, name="scale")
    expect(scale > 0, f"scale = {scale:.4g}: a scale must be positive.", QUANT_HINT)
    expect(
        isinstance(zero_point, (int, np.integer))
        and not isinstance(zero_point, bool)
        and -128 <= int(zero_point) <= 127,
        f"zero_point = {zero_point!r} should be a whole number in [-128, 127].",
        "The zero point is the int8 code of 0.0: round it and make it an int.",
    )
    return q, scale, int(zero_point)


def _judge_round_trip(quantize: Any, dequantize: Any, x: np.ndarray, ref: Any) -> None:
    q, scale, zero_point = _quantized(quantize, x)
    wide = x.astype(np.float64)
    lo, hi = min(float(wide.min()), 0.0), max(float(wide.max()), 0.0)
    tight = (hi - lo) / 255 if hi > lo else None
    shown = f"a {x.shape[0]}x{x.shape[1]} matrix from {wide.min():.3g} to {wide.max():.3g}"
    if tight is not None:
        expect(
            abs(scale - tight) <= 1e-6 * tight,
            f"For {shown} your scale {scale:.6g} does not spread the range over the 256 codes.",
            QUANT_HINT,
        )
    if ref is not None:
        want = ref.quantize_int8(x)[1]
        expect(abs(scale - want) <= 1e-6 * want, f"For {shown} your scale is {scale:.6g}.",
               QUANT_HINT)  # fmt: skip
    back = run_student_function(dequantize, q, scale, zero_point, name="dequantize")
    expect(
        isinstance(back, np.ndarray) and back.shape == x.shape,
        f"dequantize returned {type(back).__name__} of shape {getattr(back, 'shape', '?')}, not "
        f"an array of shape {x.shape}.",
        "(q - zero_point) * scale, as a float array of q's shape.",
    )
    back = back.astype(np.float64)
    expect(bool(np.isfinite(back).all()), f"dequantize gave inf or NaN for {shown}.",
           "Convert q to float before subtracting the zero point.")  # fmt: skip
    error = float(np.abs(back - wide).max())
    bound = scale / 2 + 1e-6 * float(np.abs(wide).max()) + 1e-30
    expect(
        error <= bound,
        f"For {shown} the round trip is off by {error:.3g}, more than half a step "
        f"(scale / 2 = {scale / 2:.3g}).",
        "Each element should come back within half a step: round to the nearest code and keep "
        "the zero point the same in both directions. " + QUANT_HINT,
    )
    zeros = wide == 0
    expect(
        not zeros.any() or bool((back[zeros] == 0).all()),
        f"For {shown} a 0.0 came back as {back[zeros][back[zeros] != 0][:1]} instead of exactly 0.",
        "0.0 must map to the zero point exactly (so padding and ReLU zeros stay zero): the zero "
        "point is an integer code, and dequantize subtracts exactly that code.",
    )
    if ref is not None:
        codes = np.random.default_rng(int(q.size)).integers(-128, 128, size=x.shape, dtype=np.int8)
        got = run_student_function(dequantize, codes, scale, zero_point, name="dequantize")
        want = ref.dequantize(codes, scale, zero_point)
        expect(
            isinstance(got, np.ndarray)
            and got.shape == want.shape
            and np.allclose(np.asarray(got, np.float64), want, rtol=1e-6, atol=1e-30),
            "dequantize does not turn codes back into (code - zero_point) x scale.",
            "(q.astype(np.float64) - zero_point) * scale.",
        )


MATMUL_HINT = (
    "Quantize both sides with your quantize_int8, multiply the integer codes minus their zero "
    "points (as int32, so the sums do not overflow), then multiply the result by the two "
    "scales. Not the float product: the point is to see what int8 does to it."
)


def _pair(seed: int, m: int, k: int, n: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    return _matrix(seed, m, k, kind), _matrix(seed + 1, k, n, "normal")


def _bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise bound on |int8_matmul(a, b) - a @ b| from the two scales.

    With dequantized a' = a + ea and b' = b + eb (|ea| <= sa/2, |eb| <= sb/2 per element),
    a'b' - ab = ea b + a eb + ea eb: each of the k terms of a sum is at most
    |b| sa/2 + |a| sb/2 + sa sb/4.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)

    def step(x: np.ndarray) -> float:
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        return (hi - lo) / 255 if hi > lo else 1.0

    sa, sb = step(a64), step(b64)
    return (
        np.abs(a64) @ np.ones_like(b64) * (sb / 2)
        + np.ones_like(a64) @ np.abs(b64) * (sa / 2)
        + a64.shape[1] * sa * sb / 4
    )


def _judge_matmul(fn: Any, a: np.ndarray, b: np.ndarray, ref: Any) -> None:
    got = run_student_function(fn, a, b, name="int8_matmul")
    want_shape = (a.shape[0], b.shape[1])
    expect(
        isinstance(got, np.ndarray) and got.shape == want_shape,
        f"int8_matmul of {a.shape} and {b.shape} returned "
        f"{getattr(got, 'shape', type(got).__name__)}, not an array of shape {want_shape}.",
        MATMUL_HINT,
    )
    got = got.astype(np.float64)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    scale = float(np.abs(a).astype(np.float64).max() * np.abs(b).astype(np.float64).max())
    slack = 1e-5 * a.shape[1] * scale + 1e-300
    error = np.abs(got - exact)
    bound = _bound(a, b) * (1 + 1e-6) + slack
    expect(
        bool(np.isfinite(got).all()) and bool((error <= bound).all()),
        f"int8_matmul of {a.shape} and {b.shape} is off the float product by up to "
        f"{float(np.nanmax(error)):.3g}, more than the rounding of the two inputs allows.",
        MATMUL_HINT,
    )
    if ref is not None:
        want = ref.int8_matmul(a, b)
        expect(
            bool(np.allclose(got, want, rtol=1e-5, atol=slack)),
            f"int8_matmul of {a.shape} and {b.shape} is not the product of the quantized matrices.",
            MATMUL_HINT,
        )
