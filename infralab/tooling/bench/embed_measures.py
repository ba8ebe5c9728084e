"""What ``python -m infralab bench embed`` measures beyond the engine's own sweeps: passages of
the kit's corpus (what a RAG index embeds), the RAG index build itself, the contention-robust
single-thread CPU-time ratios against sentence-transformers, and the quality of each variant
(cosine to fp32, and fp32's to the reference embeddings).

:mod:`infralab.tooling.bench.embed` runs them in one process, interleaved with the rest.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError
from infralab.core.paths import MINILM_REFERENCE
from infralab.engines.models.throughput import ST_NAME, compare

REFERENCE = MINILM_REFERENCE

# ---------------------------------------------------------------- passages and the corpus
PASSAGE_TOKENS = (120, 150)


class PassageError(ValueError, InfralabError):
    """The corpus cannot give the passages asked for; the message says how many it gave."""

    hint = "Ask for fewer passages or a wider token range (4 <= lo <= hi <= 256 tokens)."


def sample_passages(
    n: int = 128, tokens: tuple[int, int] = PASSAGE_TOKENS, seed: int = 0
) -> list[str]:
    """``n`` passages of the kit's corpus (datasets/corpus) of ``tokens`` model tokens each.

    What a RAG index embeds: windows of the corpus documents cut at token boundaries (with
    the model's tokenizer, [CLS] and [SEP] counted), each checked after re-tokenizing. The
    same for a given seed; raises when the corpus cannot give ``n`` distinct passages.
    """
    from infralab.engines.models.encoder import _load_tokenizer
    from infralab.engines.rag.corpus import load_documents

    lo, hi = tokens
    if not isinstance(n, int) or n < 1 or not 4 <= lo <= hi <= 256:
        raise PassageError(f"need n >= 1 and 4 <= lo <= hi <= 256, got n={n!r}, tokens={tokens!r}.")
    tok = _load_tokenizer(256)
    tok.no_truncation()
    rng = random.Random(seed)
    passages: list[str] = []
    for doc in load_documents():
        text = doc.text
        enc = tok.encode(text, add_special_tokens=False)
        start = 0
        while start < len(enc.offsets) and len(passages) < 4 * n:
            width = rng.randint(lo, hi) - 2  # room for [CLS] and [SEP]
            span = enc.offsets[start : start + width]
            if len(span) < width:
                break
            piece = text[span[0][0] : span[-1][1]].strip()
            if lo <= len(tok.encode(piece).ids) <= hi:
                passages.append(piece)
            start += width
    if len(passages) < n:
        raise PassageError(
            f"the corpus gave {len(passages)} passages of {lo}-{hi} tokens, fewer than {n}: "
            "ask for fewer or widen the range."
        )
    rng.shuffle(passages)
    return passages[:n]


def corpus_chunks() -> list[str]:
    """Every chunk the RAG lesson indexes (the kit's corpus, the default chunking)."""
    from infralab.engines.rag.chunking import chunk_documents
    from infralab.engines.rag.corpus import load_documents

    return [c.text for c in chunk_documents(load_documents())]


def index_build(
    engines: dict[str, Callable[[list[str]], Any]],
    texts: Sequence[str],
    *,
    rounds: int = 1,
    progress: bool = True,
) -> Any:
    """The RAG index build (embedding every chunk of the corpus), per engine, interleaved.

    Engines should have run once already (no untimed pass: the corpus takes a while).
    Returns a DataFrame: engine, chunks, seconds (median of ``rounds``), chunks_per_s.
    """
    df = compare(engines, texts, rounds=rounds, progress=progress, warmup=False)
    df = df.rename(columns={"sentences_per_s": "chunks_per_s"})
    df["chunks"] = len(texts)
    df["seconds"] = len(texts) / df["chunks_per_s"]
    return df[["engine", "chunks", "seconds", "chunks_per_s", "passes"]]


# ---------------------------------------------------------------- engines
def cpu_time_ratios(
    st: Any, sentences: Sequence[str], batch: int = 32, *, rounds: int = 3
) -> dict[str, float]:
    """fp32 and int8 against sentence-transformers, one thread each, in CPU seconds.

    On a shared machine wall-clock ratios depend on how each runtime copes with competing
    processes (PyTorch's OpenMP threads suffer more); CPU time of a single thread is the
    like-for-like work each does per sentence.
    """
    import torch

    from infralab.engines.models.encoder import Embedder

    texts = list(sentences)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engines = {
            "cpu/fp32": Embedder("fp32", "cpu", batch_size=batch, threads=1).embed,
            "cpu/int8": Embedder("int8", "cpu", batch_size=batch, threads=1).embed,
            "cpu/int8-mixed": Embedder("int8-mixed", "cpu", batch_size=batch, threads=1).embed,
            ST_NAME: lambda t: st.encode(t, batch_size=batch),
        }
        cpu_s: dict[str, list[float]] = {k: [] for k in engines}
        for fn in engines.values():
            fn(texts)
        for _ in range(rounds):
            for name, fn in engines.items():
                t0 = time.process_time()
                fn(texts)
                cpu_s[name].append(time.process_time() - t0)
    finally:
        torch.set_num_threads(before)
    st_s = float(np.median(cpu_s[ST_NAME]))
    return {f"{k} / sentence-transformers": st_s / float(np.median(v))
            for k, v in cpu_s.items() if k != ST_NAME}  # fmt: skip


# ---------------------------------------------------------------- quality
def reference_items() -> list[dict] | None:
    """Items of datasets/reference/minilm_reference.json, or None when it is absent."""
    if not REFERENCE.is_file():
        return None
    return json.loads(REFERENCE.read_text())["items"]


def quality(embeddings: dict[str, np.ndarray], base: str = "fp32") -> dict[str, dict[str, float]]:
    """Cosine of each variant's embeddings to ``base`` on the same sentences (min and mean)."""
    from infralab.engines.models.encoder import cosine

    out = {}
    for name, emb in embeddings.items():
        if name == base:
            continue
        c = cosine(emb, embeddings[base])
        out[name] = {"min_cosine": float(c.min()), "mean_cosine": float(c.mean())}
    return out
