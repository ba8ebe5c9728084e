"""Decoding measured on the kit's LLM engine: what lesson 04 and lab 04 call one by one.

``decode_run`` times greedy decoding for a batch of copies of one prompt (median step, so a
shared machine's stolen slices do not count), ``ttft_sweep`` the time to first token against
prompt length, ``read_bandwidth_gbs`` the streaming-read bandwidth that bounds decode, and
``kv_memory_growth`` the resident memory the KV cache takes as prompts are prefilled (Linux
``mincore``). ``python -m infralab bench generate`` runs them in one process and records the
result; this module only measures.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from infralab.engines.models.model_errors import ModelError, ModelTypeError, ModelUnsupported

__all__ = [
    "BENCH_PROMPT",
    "decode_run",
    "kv_memory_growth",
    "read_bandwidth_gbs",
    "ttft_sweep",
]

BENCH_PROMPT = "Write a long, detailed story about a data centre engineer who learns to love GPUs."


def read_bandwidth_gbs(mb: int = 256, repeats: int = 7, threads: int | None = None) -> float:
    """Streaming-read bandwidth in GB/s: ``threads`` threads (the decoder's default: one per
    physical core) each reading their share of an ``mb`` MB array; median of ``repeats``.

    Why ``max`` and not ``sum``: numpy's float32 sum is pairwise and compute-limited (about
    7 GB/s a core, measured on a Xeon that streams 12-15 GB/s a core), so a bound taken from
    it flatters every decoder measured against it; ``max`` is vectorised and waits on memory.
    """
    from concurrent.futures import ThreadPoolExecutor

    from infralab.core.runtime import physical_cores

    threads = threads or physical_cores()
    a = np.ones(max(1, mb) * 2**20 // 4, dtype=np.float32)
    parts = np.array_split(a, threads)
    with ThreadPoolExecutor(threads) as pool:  # numpy lets go of the GIL while it reads
        list(pool.map(np.max, parts))
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            list(pool.map(np.max, parts))
            times.append(time.perf_counter() - t)
    return a.nbytes / float(np.median(times)) / 1e9


def decode_run(gen: Any, tokens: int, batch: int = 1) -> dict[str, Any]:
    """Greedy decoding of ``tokens`` new tokens for ``batch`` copies of one prompt.

    The rate comes from the median time of the full-batch decode steps: on a shared
    machine other jobs steal whole slices of time, and the median ignores those slices
    where a mean would not (the mean-based rate is reported too).
    """
    from infralab.engines.models.text_generation import Engine

    seqs = []
    for _ in range(batch):
        seq = gen._new_seq(BENCH_PROMPT, tokens, 0.0, 1.0, None, None)
        seq.ignore_eos = True
        seqs.append(seq)
    eng = Engine(gen, batch, len(seqs[0].prompt_ids) + tokens)
    for seq in seqs:
        eng.admit(seq)
    steps: list[float] = []
    t0 = time.perf_counter()
    made = 0
    while eng.active:
        t = time.perf_counter()
        made += eng.step()
        steps.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    median = float(np.median(steps))
    return {
        "batch": batch,
        "decode_tok_s": batch / median,
        "decode_tok_s_per_sequence": 1 / median,
        "decode_tok_s_mean": made / wall,
        "median_step_ms": median * 1e3,
        "ttft_s": float(np.mean([s.t_first - s.t_start for s in seqs])),
        "prompt_tokens": len(seqs[0].prompt_ids),
        "new_tokens": tokens,
        "kv_cache_bytes": sum(s.length for s in seqs) * gen.kv_bytes_per_token,
    }


def ttft_sweep(gen: Any, lengths: list[int]) -> list[dict[str, Any]]:
    """Time to first token for prompts of ``lengths`` tokens (fixed pseudo-random ids)."""
    rng = np.random.default_rng(0)
    rows = []
    for n in lengths:
        ids = [int(i) for i in rng.integers(100, 40000, n)]
        gen.generate(ids[: min(n, 8)], max_tokens=1)  # keep the session warm
        best = min((gen.generate(ids, max_tokens=1) for _ in range(2)), key=lambda r: r.ttft_s)
        rows.append({"prompt_tokens": n, "ttft_s": best.ttft_s, "prefill_tok_s": best.prefill_tok_s,
                     "kv_cache_bytes": n * gen.kv_bytes_per_token})  # fmt: skip
        print(f"TTFT at {n:5d} prompt tokens: {best.ttft_s * 1e3:8.1f} ms", flush=True)
    return rows


def _libc() -> Any:
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def _release_zero_pages(arrays: list[np.ndarray]) -> None:
    """Hand the whole pages of all-zero ``arrays`` back to the OS (``MADV_DONTNEED``).

    The memory allocator may have given the cache recycled memory that it cleared page by
    page, so it is resident before any token is written. Private anonymous pages dropped this
    way read back as zeros and come back, one by one, on the first write: from here on the
    cache occupies memory exactly where tokens were written. Partial pages at both ends,
    which may belong to other allocations, are left alone.
    """
    import ctypes
    import mmap

    libc, page = _libc(), mmap.PAGESIZE
    for a in arrays:
        if a.any():
            raise ModelError(
                "only an unused (all-zero) cache can be released",
                hint="Release the cache's pages right after allocating it, before any token.",
            )
        start = -(-a.ctypes.data // page) * page
        stop = (a.ctypes.data + a.nbytes) // page * page
        if stop > start and libc.madvise(ctypes.c_void_p(start), stop - start, 4) != 0:
            raise OSError(ctypes.get_errno(), "madvise failed on the KV cache")


def _resident_bytes(arrays: list[np.ndarray]) -> int:
    """Bytes of ``arrays`` the operating system holds in RAM now (Linux ``mincore``)."""
    import ctypes
    import mmap

    libc, page = _libc(), mmap.PAGESIZE
    total = 0
    for a in arrays:
        start = a.ctypes.data // page * page
        length = a.ctypes.data + a.nbytes - start
        pages = (length + page - 1) // page
        vec = (ctypes.c_ubyte * pages)()
        if libc.mincore(ctypes.c_void_p(start), ctypes.c_size_t(length), vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore failed on the KV cache")
        total += sum(v & 1 for v in vec) * page
    return total


def _check_kv_measurement(gen: Any, batch: int, tokens: int) -> None:
    """Refuse what this measurement cannot do: a non-CPU cache, no mincore, bad sizes."""
    import sys

    from infralab.engines.models.text_generation import Generator

    if not isinstance(gen, Generator):
        raise ModelTypeError(
            f"gen must be an infralab Generator, not {type(gen).__name__}",
            hint="Make one with infralab.engines.models.text_generation.Generator(provider='cpu').",
        )
    if gen.device != "cpu":
        raise ModelError(
            "the KV cache lives in host memory only on the CPU; use provider='cpu'",
            hint="Build the Generator with provider='cpu' for this measurement.",
        )
    if not sys.platform.startswith("linux"):
        raise ModelUnsupported(
            "measuring resident pages needs Linux (mincore); run it on Colab",
            hint="Open the notebook on Colab or any Linux machine; the other cells run here.",
        )
    for name, value in (("batch", batch), ("tokens", tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelError(
                f"{name} must be a whole number >= 1, not {value!r}",
                hint=f"Pass {name} as an int, e.g. {name}=2.",
            )
    if tokens + 2 > gen.max_context:
        raise ModelError(
            f"tokens must leave room for two new tokens in {gen.max_context}",
            hint=f"Use tokens <= {gen.max_context - 2} (the model's context minus two).",
        )


def kv_memory_growth(gen: Any, batch: int = 2, tokens: int = 256, seed: int = 0) -> dict[str, Any]:
    """Measure the memory the runtime's KV cache takes as ``batch`` prompts of ``tokens``
    tokens each are prefilled into it: the bytes of the cache buffers the operating system
    holds in RAM (``mincore``, page by page) before and after, on this machine, now.

    The cache starts with its pages handed back to the OS (see :func:`_release_zero_pages`),
    so memory grows only where tokens are written; page granularity (4 KiB per layer, KV
    head, key or value and sequence, one more where a region starts mid-page) adds a little.
    Prompts are random token ids. Linux on a CPU only (a GPU cache is not in host memory).
    """
    import mmap

    _check_kv_measurement(gen, batch, tokens)
    rng = np.random.default_rng(seed)
    eng = gen.engine(batch, tokens + 2)
    arrays = eng.cache.arrays
    _release_zero_pages(arrays)
    before = _resident_bytes(arrays)
    for _ in range(batch):
        ids = rng.integers(0, gen.config.vocab, size=tokens).tolist()
        seq = gen._new_seq(ids, 2, 0.0, 1.0, None, None)
        seq.ignore_eos = True  # the row stays until its second token: each prompt its own row
        eng.admit(seq)
    after = _resident_bytes(arrays)
    return {
        "batch": batch,
        "tokens": tokens,
        "kv_dtype": np.dtype(gen.kv_dtype).name,
        "bytes_per_value": np.dtype(gen.kv_dtype).itemsize,
        "allocated_bytes": int(sum(a.nbytes for a in arrays)),
        "resident_before_bytes": before,
        "resident_after_bytes": after,
        "growth_bytes": after - before,
        "page_bytes": mmap.PAGESIZE,
    }
