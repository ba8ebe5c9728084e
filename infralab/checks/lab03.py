"""Checks for lab 03 (tune an embedding model): provider, batch size, int8 quality, crossover."""

from __future__ import annotations

from typing import Any

import numpy as np

from infralab.checks import CheckFailed, CheckPassed, check, check_type, run_student_function


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


def check_int8_quality(min_cosine: Any, fp32: Any, int8: Any, verdict: Any) -> CheckPassed:
    """The worst cosine between int8 and fp32 embeddings, and a keep/reject verdict at 0.98."""
    from infralab.models.encoder import cosine

    a, b = np.asarray(fp32), np.asarray(int8)
    if a.shape != b.shape or a.ndim != 2:
        raise CheckFailed(
            f"fp32 and int8 embeddings should have the same (n, 384) shape: {a.shape} vs {b.shape}.",
            "Embed the same list of sentences with both variants.",
        )
    expected = float(cosine(a, b).min())
    try:
        value = float(min_cosine)
    except (TypeError, ValueError):
        raise CheckFailed(
            f"min_cosine should be a number, not {type(min_cosine).__name__}.",
            "Compute the cosine per row, then take the minimum.",
        ) from None
    if abs(value - expected) > 1e-4:
        raise CheckFailed(
            f"min_cosine = {value:.5f}, but the worst row of your embeddings has {expected:.5f}.",
            "cosine(a, b) = (a*b).sum(1) / (|a| |b|) per row; then .min(), not the mean.",
        )
    keep = expected >= 0.98
    return check(
        verdict is keep,
        ok=f"Worst cosine {expected:.4f}: int8 {'keeps' if keep else 'loses'} enough quality.",
        problem=f"Your verdict is {verdict!r}, but a worst cosine of {expected:.4f} "
        f"{'passes' if keep else 'fails'} the 0.98 bar.",
        hint="verdict = min_cosine >= 0.98 (a bool).",
    )


def check_predict_crossover(fn: Any) -> CheckPassed:
    """``fn(hiddens, batch, layers, cpu_overhead_ms, gpu_overhead_ms, cpu_gflops, gpu_gflops)``."""
    from infralab.bench.embed import predict_crossover

    if not callable(fn):
        raise CheckFailed("predict_crossover should be a function.", "Define it with `def`.")
    sizes = [64, 128, 256, 512, 1024, 2048, 4096]
    cases = [
        (32, 4, 0.02, 0.08, 50.0, 5000.0),
        (32, 4, 0.0, 0.5, 100.0, 20000.0),
        (1, 4, 0.01, 5.0, 80.0, 1000.0),
    ]
    for batch, layers, c_over, g_over, cpu, gpu in cases:
        args = (sizes, batch, layers, c_over, g_over, cpu, gpu)
        got = run_student_function(fn, *args, name="predict_crossover")
        want = predict_crossover(sizes, batch=batch, layers=layers, cpu_overhead_ms=c_over,
                                 gpu_overhead_ms=g_over, cpu_gflops=cpu, gpu_gflops=gpu)  # fmt: skip
        if got != want:
            raise CheckFailed(
                f"predict_crossover(hiddens, {', '.join(map(str, args[1:]))}) returned {got!r}; "
                f"the model gives {want!r}.",
                "FLOPs = 2 x batch x hidden² x layers; ms on each side = overhead + FLOPs / "
                "(GFLOP/s x 1e9) x 1000; return the first width where GPU ms < CPU ms, or None.",
            )
    return CheckPassed("predict_crossover follows the overhead + compute model.")


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
