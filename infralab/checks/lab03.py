"""Checks for lab 03 (tune an embedding model): provider, batch size, int8 quality, crossover.

The student writes the worst-row cosine and the crossover model; both are compared with
references kept here on random inputs. The int8 verdict is checked on embeddings the check
computes itself from the same sentences, so handing in one array twice fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    check,
    check_type,
    points,
    refuse_kit_function,
)


def _reference_worst_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rows = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(rows.min())


def _reference_crossover(
    hiddens: Sequence[int],
    batch: int,
    layers: int,
    cpu_overhead_ms: float,
    gpu_overhead_ms: float,
    cpu_gflops: float,
    gpu_gflops: float,
) -> int | None:
    for h in sorted(hiddens):
        flops = 2 * batch * h * h * layers
        cpu = cpu_overhead_ms + flops / (cpu_gflops * 1e9) * 1e3
        gpu = gpu_overhead_ms + flops / (gpu_gflops * 1e9) * 1e3
        if gpu < cpu:
            return h
    return None


def _kit() -> list[Callable[..., Any]]:
    from infralab.bench import embed
    from infralab.models.encoder import cosine

    return [cosine, embed.predict_crossover, _reference_worst_cosine, _reference_crossover]


@points(1)
def check_provider(embedder: Any) -> CheckPassed:
    """The student's Embedder runs on the GPU when one truly works here, else on the CPU."""
    from infralab import runtime
    from infralab.models.encoder import Embedder

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
            raise CheckFailed(f"sweep has no column {col!r}.", "Use embed.sweep(...) to build it.")
    if sweep["batch"].nunique() < 3:
        raise CheckFailed(
            "Your sweep tries fewer than 3 batch sizes: too few to find an optimum.",
            "Try for example batches=(1, 4, 16, 64).",
        )
    by_batch = sweep.groupby("batch")["sentences_per_s"].max()
    best = int(by_batch.idxmax())
    if isinstance(best_batch, bool) or not isinstance(best_batch, (int, np.integer)):
        raise CheckFailed(
            f"best_batch should be a whole number, not {type(best_batch).__name__}.",
            "Take the 'batch' value of the row with the largest 'sentences_per_s'.",
        )
    return check(
        int(best_batch) == best,
        ok=f"Batch {best} gives the most sentences/s here ({by_batch[best]:,.0f}).",
        problem=f"best_batch = {best_batch}, but in your sweep batch {best} is fastest "
        f"({by_batch[best]:,.0f} sentences/s).",
        hint="sweep.loc[sweep.sentences_per_s.idxmax(), 'batch']",
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


@points(2)
def check_worst_cosine(fn: Any) -> CheckPassed:
    """``fn(a, b)`` -> the smallest row-wise cosine similarity of two (n, d) arrays."""
    refuse_kit_function(fn, _kit(), name="worst_cosine", sample_args=(np.eye(2), np.ones((2, 2))))
    tried = agrees_with_reference(
        fn,
        _reference_worst_cosine,
        _pairs(),
        name="worst_cosine",
        hint="Row by row: the dot product of the two rows over the product of their lengths; "
        "then the smallest of those, not the mean, and not one cosine of the flattened arrays.",
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


@points(2)
def check_int8_quality(
    min_cosine: Any, fp32: Any, int8: Any, verdict: Any, sentences: Sequence[str]
) -> CheckPassed:
    """The worst cosine between int8 and fp32 embeddings of ``sentences``, and the verdict.

    The check embeds the sentences itself with both variants: the arrays handed in must be
    those embeddings, so one array passed twice (cosine 1.0) fails.
    """
    from infralab.models.encoder import Embedder

    a, b = np.asarray(fp32, dtype=np.float64), np.asarray(int8, dtype=np.float64)
    want_a = Embedder("fp32").embed(list(sentences))
    want_b = Embedder("int8").embed(list(sentences))
    for name, got, want in (("fp32_vectors", a, want_a), ("int8_vectors", b, want_b)):
        if got.shape != want.shape or not np.allclose(got, want, atol=1e-3):
            raise CheckFailed(
                f"{name} are not the {name[:4]} embeddings of `sentences`.",
                "Embed the same sentences once with each variant.",
            )
    expected = _reference_worst_cosine(want_a, want_b)
    try:
        value = float(min_cosine)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"min_cosine should be a number, not {type(min_cosine).__name__}.",
            "Use your worst_cosine on the two arrays.",
        ) from None
    if abs(value - expected) > 1e-3:
        raise CheckFailed(
            f"min_cosine = {value:.5f} is not the worst row of these embeddings.",
            "Use your worst_cosine on the two arrays.",
        )
    keep = expected >= 0.98
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


@points(2)
def check_predict_crossover(fn: Any) -> CheckPassed:
    """``fn(hiddens, batch, layers, cpu_overhead_ms, gpu_overhead_ms, cpu_gflops, gpu_gflops)``."""
    sizes = [64, 128, 256, 512, 1024]
    refuse_kit_function(
        fn, _kit(), name="predict_crossover", sample_args=(sizes, 32, 4, 0.02, 0.08, 50.0, 5e3)
    )
    tried = agrees_with_reference(
        fn,
        _reference_crossover,
        _crossover_inputs(),
        name="predict_crossover",
        hint="Per width: the FLOPs of the MLP, then on each side its fixed overhead plus FLOPs "
        "over its rate (mind GFLOP/s and ms). Widths in increasing order, even if given "
        "shuffled; the first where the GPU is strictly faster, else None.",
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
