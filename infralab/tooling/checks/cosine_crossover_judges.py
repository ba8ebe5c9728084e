"""Lab 03's cosine and crossover judgements: the random vector pairs and cost inputs a
student's ``worst_cosine`` and ``predict_crossover`` are tried on, and their public
(reference-free) property judgements with hints. Used by ``lab03.check_worst_cosine`` and
``lab03.check_predict_crossover``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from infralab.tooling.checks import (
    CheckPassed,
    call_number,
    expect,
    public_pass,
    public_rng,
    run_student_function,
    same_twice,
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
