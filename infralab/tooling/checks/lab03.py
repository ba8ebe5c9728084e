"""Checks for lab 03 (tune an embedding model): provider, batch size, int8 quality, crossover.

The student writes int8 quantization (quantize, dequantize, one matmul), the worst-row cosine
and the crossover model; each is tested on random inputs and edge cases (constant, all-zero,
extreme matrices) against its definition and the references kept in
``infralab.tooling.checks.references.lab03`` (public checks where the references are absent). The int8 verdict is checked on embeddings the check
computes itself from the same sentences, so handing in one array twice fails.
The judgements behind these checks live beside them: ``cosine_crossover_judges`` (worst cosine,
crossover) and ``int8_judges`` (int8 by hand); this module is the list of public checks.
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
    check,
    check_type,
    expect,
    number,
    points,
    public_pass,
    refuse_kit_function,
    run_student_function,
)
from infralab.tooling.checks.cosine_crossover_judges import (
    COSINE_HINT,
    CROSSOVER_HINT,
    _crossover_inputs,
    _pairs,
    _public_crossover,
    _public_worst_cosine,
)
from infralab.tooling.checks.int8_judges import (
    KINDS,
    MATMUL_HINT,
    _judge_matmul,
    _judge_round_trip,
    _matrices,
    _pair,
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
