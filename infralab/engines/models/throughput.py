"""Throughput of the embedding engine: the measurements lesson and lab 03 call one by one.

``sample_sentences`` makes the short inputs, ``compare`` times engines on them interleaved,
``sweep`` walks batch x sequence and reports GFLOP/s against ``matmul_peak_gflops`` (the
numpy roofline measured here), ``crossover`` times synthetic MLPs of growing width on each
provider and ``predict_crossover`` says from a simple overhead-plus-rate model where a GPU
should overtake the CPU. ``python -m infralab bench embed`` runs them all in one process and
records the result; this module only measures.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from infralab.core.timing import Timing, measure
from infralab.engines.models.model_errors import ModelError

__all__ = [
    "ST_NAME",
    "compare",
    "crossover",
    "crossover_point",
    "encoder_flops_per_token",
    "fixed_batch",
    "matmul_peak",
    "matmul_peak_gflops",
    "predict_crossover",
    "sample_sentences",
    "sweep",
    "throughput_summary",
    "time_shape",
]

ST_NAME = "sentence-transformers (PyTorch CPU)"

_SUBJECTS = [
    "The cluster",
    "Our API",
    "A small startup",
    "The batch job",
    "This embedding model",
    "The GPU node",
    "A serverless function",
    "The vector index",
    "Every tenant",
    "The nightly pipeline",
    "An idle accelerator",
    "The load balancer",
    "Each request",
]
_VERBS = [
    "scales out when",
    "costs more than expected because",
    "waits for input while",
    "finishes sooner after",
    "stays cheap as long as",
    "slows down whenever",
    "answers in milliseconds once",
    "needs more memory if",
]
_ENDINGS = [
    "traffic doubles at noon.", "the cache is cold.", "batches grow to thirty-two items.",
    "users upload long documents.", "the model runs on the CPU.", "prices change every month.",
    "nobody sends requests overnight.", "we quantize the weights to eight bits.",
    "the queue fills up.", "three regions share one database.",
]  # fmt: skip


def sample_sentences(n: int = 256, seed: int = 0) -> list[str]:
    """``n`` short English sentences (about 15 tokens each), the same for a given seed."""
    if not isinstance(n, int) or n < 1:
        raise ModelError(
            f"n must be a positive whole number, not {n!r}.",
            hint="n is how many sentences to make, e.g. 256 (the default).",
        )
    rng = random.Random(seed)
    return [
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_ENDINGS)}" for _ in range(n)
    ]


def fixed_batch(batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of exactly ``batch`` x ``seq`` tokens (no padding), for shape sweeps."""
    if batch < 1 or not 2 <= seq <= 256:
        raise ModelError(
            f"need batch >= 1 and 2 <= seq <= 256, got batch={batch}, seq={seq}.",
            hint="seq is tokens per input, from 2 up to the encoder's 256; e.g. batch=32, seq=128.",
        )
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    return {"input_ids": ids, "attention_mask": np.ones((batch, seq), dtype=np.int64)}


# ---------------------------------------------------------------- FLOPs and the roofline
def encoder_flops_per_token(seq: int) -> float:
    """FLOPs per token of MiniLM-L6 at sequence length ``seq`` (multiply-add = 2).

    Per layer: Q, K, V and output projections (4 H^2), the MLP (2 H I), and attention scores
    plus weighted sum (2 seq H) multiply-adds. Embedding lookups, LayerNorm and softmax are
    memory-bound and left out, so the GFLOP/s reported is a slight underestimate.
    """
    from infralab.engines.models.encoder import HIDDEN, INTERMEDIATE, LAYERS

    macs = 4 * HIDDEN * HIDDEN + 2 * HIDDEN * INTERMEDIATE + 2 * seq * HIDDEN
    return 2.0 * macs * LAYERS


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """numpy float32 n x n matmul GFLOP/s here: the best run (the peak) and the median.

    The best of several runs is what the cores can do; the median is what a busy machine
    gave most of the time. A percentage of peak is taken against the best, so that a loaded
    machine cannot flatter the encoder; the median is reported beside it.
    """
    if not isinstance(n, int) or n < 16 or not isinstance(repeats, int) or repeats < 1:
        raise ModelError(
            f"need n >= 16 and repeats >= 1, got n={n!r}, repeats={repeats!r}.",
            hint="n is the matrix size (default 2048) and repeats the runs to take the best of (default 5).",
        )
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    t = measure(lambda: a @ b, label="numpy matmul", warmup=1, repeats=repeats)
    flop = 2.0 * n**3
    return {
        "best_gflops": flop / min(t.seconds) / 1e9,
        "median_gflops": flop / t.median_s / 1e9,
        "runs": len(t.seconds),
    }


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """numpy float32 n x n matmul GFLOP/s, best of ``repeats`` runs: the CPU's practical peak."""
    return matmul_peak(n, repeats)["best_gflops"]


def compare(
    engines: dict[str, Callable[[list[str]], Any]],
    sentences: Sequence[str],
    *,
    rounds: int = 3,
    progress: bool = True,
    warmup: bool = True,
) -> Any:
    """Sentences/s of each engine on the same sentences, rounds interleaved so drift is shared.

    ``warmup=False`` skips the untimed first pass (for engines that have already run).
    Returns a DataFrame: engine, sentences_per_s, p50_ms / p95_ms per pass over the sentences.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    texts = list(sentences)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    with tqdm(
        total=len(engines) * (rounds + int(warmup)), desc="compare engines", disable=not progress
    ) as bar:
        for fn in engines.values() if warmup else ():  # first calls allocate and tune
            fn(texts)
            bar.update()
        for _ in range(rounds):
            for name, fn in engines.items():
                seconds[name] += measure(lambda f=fn: f(texts), warmup=0, repeats=1).seconds
                bar.update()
    rows = []
    for name, secs in seconds.items():
        t = Timing(label=name, seconds=secs, items_per_call=len(texts))
        s = t.summary()
        rows.append(
            {"engine": name, "sentences_per_s": s["items_per_s"], "p50_ms": s["p50_ms"],
             "p95_ms": s["p95_ms"], "passes": len(secs)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def time_shape(
    session: Any, batch: int, seq: int, *, max_time_s: float = 1.0, repeats: int = 3
) -> Timing:
    """One session on a fixed (batch, seq) input: p50/p95 latency, sentences/s."""
    feeds = fixed_batch(batch, seq)
    return measure(
        lambda: session.run(None, feeds),
        label=f"b{batch} s{seq}",
        items_per_call=batch,
        warmup=1,
        repeats=repeats,
        max_time_s=max_time_s,
    )


def sweep(
    variants: Sequence[tuple[str, str]] = (("fp32", "cpu"), ("int8", "cpu")),
    batches: Sequence[int] = (1, 8, 32),
    seqs: Sequence[int] = (16, 128),
    *,
    peak_gflops: float | None = None,
    max_time_s: float = 0.5,
    progress: bool = True,
) -> Any:
    """Batch x sequence x (variant, provider) into a DataFrame with latency, throughput, GFLOP/s."""
    import pandas as pd
    from tqdm.auto import tqdm

    from infralab.core.runtime import physical_cores
    from infralab.engines.models.encoder import Embedder

    rows = []
    points = [(v, p, b, s) for v, p in variants for s in seqs for b in batches]
    sessions = {}
    for v, p, b, s in tqdm(points, desc="sweep", disable=not progress):
        if (v, p) not in sessions:
            # one session on every core: a fixed shape is one call, timed for its latency
            sessions[(v, p)] = Embedder(v, p, threads=physical_cores()).session
        t = time_shape(sessions[(v, p)], b, s, max_time_s=max_time_s)
        summ = t.summary()
        gflops = encoder_flops_per_token(s) * b * s / t.median_s / 1e9
        rows.append(
            {"variant": v, "provider": p, "batch": b, "seq": s, "p50_ms": summ["p50_ms"],
             "p95_ms": summ["p95_ms"], "sentences_per_s": b / t.median_s,
             "tokens_per_s": b * s / t.median_s, "gflops": gflops,
             "pct_of_peak": 100 * gflops / peak_gflops if peak_gflops else float("nan")}
        )  # fmt: skip
    return pd.DataFrame(rows)


def crossover(
    hiddens: Sequence[int] = (64, 128, 256, 512, 1024, 2048),
    *,
    batch: int = 32,
    layers: int = 4,
    providers: Sequence[str] = ("cpu",),
    max_time_s: float = 0.5,
    progress: bool = True,
) -> Any:
    """Per synthetic MLP size: ms per call on each provider (CUDA with and without copies)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from infralab.core import runtime
    from infralab.engines.models import synthetic

    rows = []
    x = np.random.default_rng(0).standard_normal((batch, max(hiddens)), dtype=np.float32)
    for h in tqdm(hiddens, desc="crossover", disable=not progress):
        path = synthetic.build(h, layers)
        feeds = {"x": np.ascontiguousarray(x[:, :h])}
        flops = synthetic.mlp_flops(batch, h, layers)
        for prov in providers:
            sess = runtime.make_session(path, prov)
            modes: dict[str, Callable[[], Any]] = {
                "numpy in/out": lambda s=sess, f=feeds: s.run(None, f)
            }
            if prov == "cuda":
                modes["on device (IOBinding)"] = runtime.bound_runner(sess, feeds, copy_back=False)
            for mode, fn in modes.items():
                t = measure(fn, warmup=2, repeats=5, max_time_s=max_time_s, min_time_s=0.05)
                rows.append(
                    {"hidden": h, "layers": layers, "batch": batch, "provider": prov,
                     "mode": mode, "ms": t.median_s * 1e3, "gflop": flops / 1e9,
                     "gflops": flops / t.median_s / 1e9}
                )  # fmt: skip
    return pd.DataFrame(rows)


def crossover_point(df: Any, mode: str = "numpy in/out") -> int | None:
    """Smallest hidden size at which CUDA (in ``mode``) is faster than the CPU; None if never."""
    if df is None or len(df) == 0 or "cuda" not in set(df["provider"]):
        return None
    cpu = df[df.provider == "cpu"].set_index("hidden")["ms"]
    gpu = df[(df.provider == "cuda") & (df["mode"] == mode)].set_index("hidden")["ms"]
    faster = [h for h in sorted(gpu.index) if h in cpu.index and gpu[h] < cpu[h]]
    return int(faster[0]) if faster else None


def predict_crossover(
    hiddens: Sequence[int],
    *,
    batch: int,
    layers: int,
    gpu_overhead_ms: float,
    cpu_gflops: float,
    gpu_gflops: float,
    cpu_overhead_ms: float = 0.0,
) -> int | None:
    """Smallest width at which a simple model says the GPU wins; None if it never does.

    Model: time = fixed overhead per call + FLOPs / rate, on each side. The GPU's overhead
    (kernel launches, copies over PCIe) is larger and its rate far higher, so it wins once
    the compute it saves exceeds the extra overhead.
    """
    from infralab.engines.models.synthetic import mlp_flops

    if min(cpu_gflops, gpu_gflops) <= 0 or min(gpu_overhead_ms, cpu_overhead_ms) < 0:
        raise ModelError(
            "rates must be positive and the overhead not negative.",
            hint="Pass measured GFLOP/s (> 0) and overheads in ms (0 or more).",
        )
    for h in sorted(hiddens):
        flops = mlp_flops(batch, h, layers)
        cpu_ms = cpu_overhead_ms + flops / (cpu_gflops * 1e9) * 1e3
        gpu_ms = gpu_overhead_ms + flops / (gpu_gflops * 1e9) * 1e3
        if gpu_ms < cpu_ms:
            return int(h)
    return None


def throughput_summary(cmp_df: Any, batch: int, provider: str = "cpu") -> dict[str, Any]:
    """What a later lesson prices: the best kit engine on ``provider`` and every engine's rate.

    ``sentences_per_s`` is one number (the cost lesson reads that key); the per-engine
    figures sit under ``sentences_per_s_by_engine``.
    """
    by_engine = {
        str(e): float(v) for e, v in zip(cmp_df.engine, cmp_df.sentences_per_s, strict=True)
    }
    mine = {e: v for e, v in by_engine.items() if e.startswith(f"{provider}/")} or {
        e: v for e, v in by_engine.items() if e != ST_NAME
    }
    if not mine:
        raise ModelError(
            "no kit engine in the comparison: nothing to summarise.",
            hint="Run the comparison with at least one kit engine, not only the original.",
        )
    best = max(mine, key=mine.get)
    return {
        "sentences_per_s": mine[best],
        "best_engine": best,
        "batch_size": batch,
        "sentences_per_s_by_engine": by_engine,
    }
