"""Checks for lab 03 (tune an embedding model): provider, batch size, int8 quality, crossover.

The student writes int8 quantization (quantize, dequantize, one matmul), the worst-row cosine
and the crossover model; each is tested on random inputs and edge cases (constant, all-zero,
extreme matrices) against its definition and the references kept in
``infralab.tooling.checks.references.lab03`` (public checks where the references are absent). The int8 verdict is checked on embeddings the check
computes itself from the same sentences, so handing in one array twice fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    check_type,
    expect,
    number,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_student_function,
    same_twice,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_best_batch",
    "check_crossover_prediction",
    "check_int8_matmul",
    "check_int8_quality",
    "check_predict_crossover",
    "check_provider",
    "check_quantize",
    "check_worst_cosine",
]


def _ref() -> Any:
    return checks.reference_module("lab03")


def _kit() -> list[Callable[..., Any]]:
    from infralab.engines.models import throughput
    from infralab.engines.models.encoder import cosine

    ref = _ref()
    return [
        cosine,
        throughput.predict_crossover,
        *(
            [
                ref.worst_cosine,
                ref.predict_crossover,
                ref.quantize_int8,
                ref.dequantize,
                ref.int8_matmul,
            ]
            if ref
            else []
        ),
    ]


@points(1)
def check_provider(embedder: Any) -> CheckPassed:
    """The student's Embedder runs on the GPU when one truly works here, else on the CPU."""
    from infralab.core import runtime
    from infralab.engines.models.encoder import Embedder

    check_type(embedder, Embedder, name="embedder")
    expected = "cuda" if runtime.cuda_usable() else "cpu"
    actual = runtime.session_provider(embedder.session)
    if actual != embedder.provider:
        raise CheckFailed(
            f"embedder.provider says {embedder.provider!r} but its session runs on {actual!r}.",
            "Read the provider from session.get_providers() after creating the session.",
        )
    why = "" if expected == "cuda" else f" ({runtime.explain('cuda')})"
    return check(
        actual == expected,
        ok=f"Your embedder runs on {actual}, the best provider that really works here{why}.",
        problem=f"Your embedder runs on {actual}, but the best usable provider here is {expected}.",
        hint="Ask for provider='cuda' only when runtime.cuda_usable() is True; 'auto' does that.",
    )


@points(1)
def check_best_batch(sweep: Any, best_batch: Any) -> CheckPassed:
    """``best_batch`` is the batch size with the highest sentences/s in the student's sweep."""
    import pandas as pd

    check_type(sweep, pd.DataFrame, name="sweep")
    for col in ("batch", "sentences_per_s"):
        if col not in sweep.columns:
            raise CheckFailed(
                f"sweep has no column {col!r}.", "Use throughput.sweep(...) to build it."
            )
    if sweep["batch"].nunique() < 3:
        raise CheckFailed(
            "Your sweep tries fewer than 3 batch sizes: too few to find an optimum.",
            "Try for example batches=(1, 4, 16, 64).",
        )
    if isinstance(best_batch, bool) or not isinstance(best_batch, (int, np.integer)):
        raise CheckFailed(
            f"best_batch should be a whole number, not {type(best_batch).__name__}.",
            "Take it from your sweep's 'batch' column: the lab asks for an int.",
        )
    ref = _ref()
    if ref is None:
        expect(
            int(best_batch) in set(int(b) for b in sweep["batch"]),
            f"best_batch = {best_batch} is not one of the batch sizes in your sweep.",
            "Pick the batch size of the fastest row of your sweep.",
        )
        return public_pass(f"best_batch = {best_batch} is one of the batch sizes you swept")
    best, rate = ref.best_batch(sweep)
    return check(
        int(best_batch) == best,
        ok=f"Batch {best} gives the most sentences/s here ({rate:,.0f}).",
        problem=f"best_batch = {best_batch}, but in your sweep batch {best} is fastest "
        f"({rate:,.0f} sentences/s).",
        hint="Pick the batch size of the row with the most sentences per second.",
    )


def _pairs():
    from hypothesis import strategies as st

    def build(args: tuple[int, int, int, bool]) -> tuple[np.ndarray, np.ndarray]:
        seed, n, d, close = args
        rng = np.random.default_rng(seed)
        a = rng.standard_normal((n, d))
        b = a + 0.05 * rng.standard_normal((n, d)) if close else rng.standard_normal((n, d))
        return a, b

    return st.tuples(
        st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 48), st.booleans()
    ).map(build)


COSINE_HINT = (
    "Row by row: the dot product of the two rows over the product of their lengths; then the "
    "smallest of those, not the mean, and not one cosine of the flattened arrays."
)


def _public_worst_cosine(fn: Any) -> CheckPassed:
    """A float in [-1, 1]; 1 for identical arrays, -1 for opposite ones; blind to the length
    of each row; never above the value of any single row; the same twice."""
    rng = np.random.default_rng(3)

    def value(a: np.ndarray, b: np.ndarray) -> float:
        got = run_student_function(fn, a, b, name="worst_cosine")
        expect(
            isinstance(got, (float, np.floating)),
            f"worst_cosine returned {type(got).__name__}, not a float.",
            "Return one float: wrap a numpy scalar in float(...).",
        )
        return call_number(lambda: got, name="worst_cosine")

    for _ in range(20):
        n, d = int(rng.integers(1, 10)), int(rng.integers(2, 40))
        a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        got = value(a, b)
        expect(-1 - 1e-9 <= got <= 1 + 1e-9, f"worst_cosine returned {got:.4g}.", COSINE_HINT)
        expect(abs(value(a, a.copy()) - 1) < 1e-6, "Two identical arrays should give 1.",
               COSINE_HINT)  # fmt: skip
        expect(abs(value(a, -a) + 1) < 1e-6, "An array and its negative should give -1.",
               COSINE_HINT)  # fmt: skip
        scale = rng.uniform(0.1, 10, size=(n, 1))
        expect(
            abs(value(a * scale, b) - got) < 1e-6,
            "Stretching a row (multiplying it by a positive number) changed the result.",
            COSINE_HINT,
        )
        rows = [value(a[i : i + 1], b[i : i + 1]) for i in range(n)]
        expect(
            got <= min(rows) + 1e-6,
            "The worst row of two arrays came out higher than one of its rows alone.",
            COSINE_HINT,
        )
        same_twice(fn, (a, b), got, name="worst_cosine")
    return public_pass("worst_cosine stays in [-1, 1], ignores row lengths and is never above "
                       "any single row")  # fmt: skip


@points(2)
def check_worst_cosine(fn: Any) -> CheckPassed:
    """``fn(a, b)`` -> the smallest row-wise cosine similarity of two (n, d) arrays."""
    refuse_kit_function(fn, _kit(), name="worst_cosine", sample_args=(np.eye(2), np.ones((2, 2))))
    ref = _ref()
    if ref is None:
        return _public_worst_cosine(fn)
    tried = agrees_with_reference(
        fn,
        ref.worst_cosine,
        _pairs(),
        name="worst_cosine",
        hint=COSINE_HINT,
        edge_cases=[
            (np.eye(3), np.eye(3)),
            (np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([[-1.0, 0.0], [0.0, 1.0]])),
            (np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]])),
        ],
        same=lambda got, want: (
            isinstance(got, (float, np.floating)) and abs(float(got) - want) < 1e-6
        ),
    )
    return CheckPassed(f"worst_cosine is right on {tried} pairs of arrays.")


# ---------------------------------------------------------------- int8 by hand
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


@points(2)
def check_quantize(quantize_int8: Any, dequantize: Any) -> CheckPassed:
    """``quantize_int8(x) -> (q, scale, zero_point)`` and ``dequantize(q, scale, zero_point)``
    on random float32 matrices, constant, all-zero, extreme and tiny ones included: the scale
    spans the range, every element comes back within half a step, 0.0 comes back exactly."""
    from hypothesis import HealthCheck, given, settings

    refuse_kit_function(quantize_int8, _kit(), name="quantize_int8",
                        sample_args=(np.eye(2, dtype=np.float32),))  # fmt: skip
    refuse_kit_function(dequantize, _kit(), name="dequantize")
    ref = _ref()
    edges = [np.zeros((2, 3), np.float32), np.full((3, 2), 5.0, np.float32),
             np.full((1, 4), -2.0, np.float32), np.array([[0.0, 1.0, -1.0]], np.float32),
             np.array([[-1e30, 0.0, 3e30]], np.float32), np.array([[1e-25, -4e-25]], np.float32),
             np.array([[7.0]], np.float32)]  # fmt: skip
    for x in edges:
        _judge_round_trip(quantize_int8, dequantize, x, ref)
    tried = [len(edges)]

    @settings(max_examples=120, deadline=None, derandomize=not checks._GRADING.get(),
              database=None, print_blob=False, suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(_matrices())
    def random_matrices(x: np.ndarray) -> None:
        tried[0] += 1
        _judge_round_trip(quantize_int8, dequantize, x, ref)

    try:
        random_matrices()
    except CheckFailed as exc:
        raise CheckFailed(exc.problem, exc.hint) from None
    text = (f"quantize_int8 and dequantize round-trip {tried[0]} matrices within half a step, "
            "with 0.0 exact, constant, all-zero and extreme ones too")  # fmt: skip
    return CheckPassed(text + ".") if ref is not None else public_pass(text)


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


@points(2)
def check_int8_matmul(int8_matmul: Any) -> CheckPassed:
    """``int8_matmul(a, b)``: within the bound the two scales allow of ``a @ b``, equal to the
    product of the quantized matrices, and not the float product itself."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    refuse_kit_function(int8_matmul, _kit(), name="int8_matmul",
                        sample_args=(np.eye(2, dtype=np.float32), np.eye(2, dtype=np.float32)))  # fmt: skip
    ref = _ref()
    # Integers in [-128, 127] with both ends present quantize exactly: the product is exact.
    ints = np.arange(-128, 128, dtype=np.float32).reshape(16, 16)
    got = run_student_function(int8_matmul, ints, ints.T.copy(), name="int8_matmul")
    expect(
        isinstance(got, np.ndarray)
        and got.shape == (16, 16)
        and bool(np.allclose(got.astype(np.float64), ints.astype(np.float64) @ ints.T, rtol=1e-6)),
        "Matrices of the integers -128..127 quantize without loss, but your product of two of "
        "them is not exact.",
        MATMUL_HINT,
    )
    rng = np.random.default_rng(11)
    a, b = (
        rng.standard_normal((8, 64)).astype(np.float32),
        rng.standard_normal((64, 8)).astype(np.float32),
    )
    got = run_student_function(int8_matmul, a, b, name="int8_matmul")
    size = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    off = np.abs(np.asarray(got, dtype=np.float64) - exact) / size if (
        isinstance(got, np.ndarray) and got.shape == (8, 8)) else np.ones(1)  # fmt: skip
    expect(
        float(off.max()) > 1e-4,
        "int8_matmul gives the float product (to float rounding): nothing was rounded to int8.",
        MATMUL_HINT,
    )
    for pair in [_pair(1, 3, 4, 2, "all_zeros"), _pair(2, 2, 5, 3, "constant"),
                 _pair(3, 4, 1, 4, "normal"), _pair(4, 3, 6, 2, "extreme"),
                 _pair(5, 2, 7, 3, "outlier")]:  # fmt: skip
        _judge_matmul(int8_matmul, *pair, ref)
    tried = [6]

    @settings(max_examples=80, deadline=None, derandomize=not checks._GRADING.get(),
              database=None, print_blob=False, suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.builds(_pair, st.integers(0, 2**31), st.integers(1, 8), st.integers(1, 40),
                     st.integers(1, 8), st.sampled_from(KINDS)))  # fmt: skip
    def random_pairs(pair: tuple[np.ndarray, np.ndarray]) -> None:
        tried[0] += 1
        _judge_matmul(int8_matmul, *pair, ref)

    try:
        random_pairs()
    except CheckFailed as exc:
        raise CheckFailed(exc.problem, exc.hint) from None
    text = (f"int8_matmul stays within the bound of the two scales on {tried[0]} pairs of "
            "matrices, and it really rounds to int8")  # fmt: skip
    if ref is not None:
        return CheckPassed(text + ", exactly as the quantized product should.")
    return public_pass(text)


INT8_BAR = 0.98  # the course's bar, stated in the lab


@points(2)
def check_int8_quality(
    min_cosine: Any, fp32: Any, int8: Any, verdict: Any, sentences: Sequence[str]
) -> CheckPassed:
    """The worst cosine between int8 and fp32 embeddings of ``sentences``, and the verdict.

    The check embeds the sentences itself with both variants: the arrays handed in must be
    those embeddings, so one array passed twice (cosine 1.0) fails.
    """
    from infralab.engines.models.encoder import Embedder

    a, b = np.asarray(fp32, dtype=np.float64), np.asarray(int8, dtype=np.float64)
    want_a = Embedder("fp32").embed(list(sentences))
    want_b = Embedder("int8").embed(list(sentences))
    for name, got, want in (("fp32_vectors", a, want_a), ("int8_vectors", b, want_b)):
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-3):
            raise CheckFailed(
                f"{name} are not the {name[:4]} embeddings of `sentences`.",
                "Embed the same sentences once with each variant.",
            )
    try:
        value = float(min_cosine)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"min_cosine should be a number, not {type(min_cosine).__name__}.",
            "Use your worst_cosine on the two arrays.",
        ) from None
    ref = _ref()
    if ref is None:
        value = number(min_cosine, name="min_cosine")
        expect(-1 <= value <= 1 + 1e-9, f"min_cosine = {value:.5f} is no cosine.",
               "Use your worst_cosine on the two arrays.")  # fmt: skip
        expect(
            isinstance(verdict, bool) and verdict is (value >= INT8_BAR),
            f"Your verdict {verdict!r} does not follow from your worst cosine {value:.4f}.",
            "The verdict is a bool: is the worst cosine at or above the course's bar (0.98)?",
        )
        return public_pass("Your arrays are the embeddings of `sentences` and your verdict "
                           "follows from your worst cosine")  # fmt: skip
    expected = ref.worst_cosine(want_a, want_b)
    if abs(value - expected) > 1e-3:
        raise CheckFailed(
            f"min_cosine = {value:.5f} is not the worst row of these embeddings.",
            "Use your worst_cosine on the two arrays.",
        )
    keep = ref.keep_int8(expected)
    return check(
        verdict is keep,
        ok=f"Worst cosine {expected:.4f}: int8 {'keeps' if keep else 'loses'} enough quality.",
        problem=f"Your verdict {verdict!r} does not follow from a worst cosine of {expected:.4f}.",
        hint="The verdict is a bool: is the worst cosine at or above the course's bar (0.98)?",
    )


def _crossover_inputs():
    from hypothesis import strategies as st

    pos = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    return st.tuples(
        st.lists(st.integers(1, 8192), min_size=0, max_size=8, unique=True),
        st.integers(1, 256),
        st.integers(1, 12),
        pos(0.0, 2.0),
        pos(0.0, 20.0),
        pos(1.0, 500.0),
        pos(100.0, 100_000.0),
    )


CROSSOVER_HINT = (
    "Per width: the FLOPs of the MLP, then on each side its fixed overhead plus FLOPs over its "
    "rate (mind GFLOP/s and ms). Widths in increasing order, even if given shuffled; the first "
    "where the GPU is strictly faster, else None."
)


def _public_crossover(fn: Any) -> CheckPassed:
    """One of the widths or None; no widths, None; the order of the widths does not matter; a
    GPU with no overhead and a higher rate wins from the start, one slower in both never; a
    faster GPU never moves the crossover to a wider model."""
    rng = public_rng(3)

    def call(*args: Any) -> int | None:
        got = run_student_function(fn, *args, name="predict_crossover")
        expect(
            got is None or (isinstance(got, (int, np.integer)) and not isinstance(got, bool)),
            f"predict_crossover returned {got!r}, not a width or None.",
            CROSSOVER_HINT,
        )
        expect(
            got is None or got in args[0],
            f"predict_crossover returned {got!r}, which is not one of the widths given.",
            CROSSOVER_HINT,
        )
        return got

    expect(call([], 8, 2, 0.01, 0.1, 50.0, 5e3) is None, "With no widths there is no crossover.",
           CROSSOVER_HINT)  # fmt: skip
    rank = lambda h, ws: len(ws) if h is None else sorted(ws).index(h)  # noqa: E731
    for _ in range(30):
        widths = rng.sample([2**k for k in range(4, 14)] + [96, 384, 768, 1536], rng.randint(2, 8))
        batch, layers = rng.randint(1, 128), rng.randint(1, 12)
        cpu_o, gpu_o = rng.uniform(0, 1), rng.uniform(0, 10)
        cpu_r, gpu_r = rng.uniform(5, 300), rng.uniform(500, 50_000)
        got = call(widths, batch, layers, cpu_o, gpu_o, cpu_r, gpu_r)
        expect(
            call(sorted(widths, reverse=True), batch, layers, cpu_o, gpu_o, cpu_r, gpu_r) == got,
            "Giving the same widths in another order changed your answer.",
            CROSSOVER_HINT,
        )
        faster = call(widths, batch, layers, cpu_o, gpu_o / 2, cpu_r, gpu_r * 4)
        expect(
            rank(faster, widths) <= rank(got, widths),
            "A GPU with less overhead and a higher rate moved the crossover to a wider model.",
            CROSSOVER_HINT,
        )
        expect(
            call(widths, batch, layers, cpu_o, 0.0, cpu_r, gpu_r) == min(widths),
            "A GPU with no overhead and a higher rate is faster at every width.",
            CROSSOVER_HINT,
        )
        expect(
            call(widths, batch, layers, cpu_o, cpu_o + 1, cpu_r, cpu_r / 2) is None,
            "A GPU with more overhead and a lower rate than the CPU never wins.",
            CROSSOVER_HINT,
        )
        same_twice(fn, (widths, batch, layers, cpu_o, gpu_o, cpu_r, gpu_r), got,
                   name="predict_crossover")  # fmt: skip
    return public_pass("predict_crossover picks one of the widths, whatever their order, and "
                       "moves the right way with the GPU's speed")  # fmt: skip


@points(2)
def check_predict_crossover(fn: Any) -> CheckPassed:
    """``fn(hiddens, batch, layers, cpu_overhead_ms, gpu_overhead_ms, cpu_gflops, gpu_gflops)``."""
    sizes = [64, 128, 256, 512, 1024]
    refuse_kit_function(
        fn, _kit(), name="predict_crossover", sample_args=(sizes, 32, 4, 0.02, 0.08, 50.0, 5e3)
    )
    ref = _ref()
    if ref is None:
        return _public_crossover(fn)
    tried = agrees_with_reference(
        fn,
        ref.predict_crossover,
        _crossover_inputs(),
        name="predict_crossover",
        hint=CROSSOVER_HINT,
        edge_cases=[
            (sizes, 32, 4, 0.02, 0.08, 50.0, 5000.0),
            ([], 1, 1, 0.0, 1.0, 10.0, 100.0),
            ([4096, 64], 1, 4, 0.01, 5.0, 80.0, 1000.0),
        ],
        same=lambda got, want: got == want and not isinstance(got, bool),
    )
    return CheckPassed(f"predict_crossover follows the overhead + compute model on {tried} cases.")


@points(1)
def check_crossover_prediction(prediction: Any, measured: Any) -> CheckPassed:
    """A prediction within two doublings of the measured (or recorded) crossover width.

    Two, not one: a straight-line model misses that a CPU runs small matrices far below its
    peak (thread start-up per call), which moves the real crossover to smaller widths.
    """
    if measured is None:
        raise CheckFailed(
            "There is no measured crossover to compare with (no GPU here and no recorded run).",
            "Run the lab on a GPU machine (Colab), or ask your instructor for a recorded run.",
        )
    if prediction is None:
        raise CheckFailed(
            f"Your model predicts the GPU never wins, but it did from width {measured}.",
            "Check the GPU rate and overhead you read off the recorded run.",
        )
    ratio = max(prediction, measured) / min(prediction, measured)
    return check(
        ratio <= 4,
        ok=f"Predicted width {prediction}, measured {measured}: "
        + ("spot on." if ratio == 1 else f"off by {ratio:g}x, within two doublings."),
        problem=f"Predicted width {prediction}, but the GPU won from {measured}.",
        hint="Estimate the overhead from the smallest model's GPU time, and the rates from the "
        "largest model's GFLOP/s on each side.",
    )
