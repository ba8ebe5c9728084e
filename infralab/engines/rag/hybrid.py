"""Hybrid retrieval: reciprocal rank fusion (RRF) of dense and lexical rankings.

RRF adds ``1 / (k0 + rank)`` over the rankings a chunk appears in. It uses ranks only, so it
needs no calibration between cosine similarities and BM25 scores, which live on unrelated
scales; ``k0 = 60`` (the usual choice) damps the weight of the very first places.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infralab.engines.rag.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE, Chunk, chunk_documents
from infralab.engines.rag.corpus import Document
from infralab.engines.rag.lexical import LexicalIndex
from infralab.engines.rag.rag_errors import RagError
from infralab.engines.rag.vector_store import (
    Hit,
    TenantScopeError,
    TenantVectorStore,
    allowed_chunk_ids,
    embed_chunks,
)

RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k0: int = RRF_K, limit: int | None = None
) -> list[tuple[str, float]]:
    """Fuse ranked id lists into one ``[(id, score)]`` list, best first.

    Ties keep the order in which ids were first seen, so the result is deterministic.
    """
    if k0 < 0:
        raise RagError(
            f"k0 must be zero or more, got {k0}.",
            hint="k0 damps the top ranks in reciprocal-rank fusion; 60 is the usual value.",
        )
    scores: dict[str, float] = {}
    for ranking in rankings:
        seen: set[str] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:  # a duplicate in one list counts once
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k0 + rank)
    fused = sorted(scores.items(), key=lambda kv: -kv[1])  # stable: first-seen order on ties
    return fused[:limit] if limit is not None else fused


def fuse_hits(
    dense: Sequence[Hit], lexical: Sequence[Hit], k: int = 5, k0: int = RRF_K
) -> list[Hit]:
    """RRF of two hit lists; each hit keeps its chunk data and gets the fused score."""
    by_id = {h.chunk_id: h for h in [*lexical, *dense]}
    fused = reciprocal_rank_fusion(
        [[h.chunk_id for h in dense], [h.chunk_id for h in lexical]], k0=k0, limit=k
    )
    out = []
    for chunk_id, score in fused:
        h = by_id[chunk_id]
        out.append(Hit(h.chunk_id, h.doc_id, h.tenant, h.title, h.text, score))
    return out


MODES: tuple[str, ...] = ("dense", "lexical", "hybrid")


class RagIndex:
    """Dense store + BM25 + fusion behind one ``retrieve`` call, with per-stage timings.

    Every method takes the tenant as its own argument: the service fills it from the
    authenticated key, and nothing in a query can widen it.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        embedder: Any,
        *,
        layout: str = "shared",
        location: str | Path | None = None,
    ) -> None:
        self.chunks = list(chunks)
        self.by_id = {c.chunk_id: c for c in self.chunks}
        self.embedder = embedder
        self.store = TenantVectorStore(location, layout=layout)  # type: ignore[arg-type]
        self.store.add(self.chunks, vectors)
        self.lexical = LexicalIndex(self.chunks)

    @classmethod
    def build(
        cls,
        docs: Sequence[Document],
        embedder: Any,
        *,
        size: int = DEFAULT_SIZE,
        overlap: int = DEFAULT_OVERLAP,
        layout: str = "shared",
        cache_dir: Path | None = None,
        label: str = "",
        location: str | Path | None = None,
    ) -> RagIndex:
        """Chunk, embed (cached) and index ``docs``."""
        chunks = chunk_documents(docs, size, overlap)
        vectors = embed_chunks(chunks, embedder, cache_dir, label)
        return cls(chunks, vectors, embedder, layout=layout, location=location)

    @property
    def tenants(self) -> set[str]:
        return set(self.store.tenants)

    def embed_query(self, query: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([query]), dtype=np.float32)[0]

    def search(
        self,
        tenant: str,
        query: str,
        vector: np.ndarray | None,
        *,
        mode: str = "hybrid",
        k: int = 5,
        query_filter: Any = None,
        depth: int = 20,
    ) -> list[Hit]:
        """Search with an already embedded query (``vector``; unused for lexical)."""
        if mode not in MODES:
            raise RagError(
                f"mode must be one of {MODES}, got {mode!r}.",
                hint="Use 'dense', 'lexical' or 'hybrid' (infralab.engines.rag.hybrid.MODES).",
            )
        dense: list[Hit] = []
        lexical: list[Hit] = []
        if mode in ("dense", "hybrid"):
            if vector is None:
                raise RagError(
                    "dense and hybrid search need the query vector.",
                    hint="Pass vector=index.embed_query(question), or call retrieve(), which embeds it.",
                )
            dense = self.store.search(
                tenant,
                vector,
                k=max(k, depth) if mode == "hybrid" else k,
                query_filter=query_filter,
            )
        if mode in ("lexical", "hybrid"):
            lexical = self.lexical.search(tenant, query, k=max(k, depth) if mode == "hybrid" else k)
            if query_filter not in (None, {}):
                allowed = allowed_chunk_ids(self.store, tenant, query_filter)
                lexical = [h for h in lexical if h.chunk_id in allowed]
        if mode == "dense":
            return dense
        if mode == "lexical":
            return lexical[:k]
        return fuse_hits(dense, lexical, k=k)

    def retrieve(
        self, tenant: str, query: str, *, mode: str = "hybrid", k: int = 5, query_filter: Any = None
    ) -> tuple[list[Hit], dict[str, float]]:
        """Embed and search; returns hits and ``{"embed_ms", "search_ms"}``."""
        if not isinstance(query, str) or not query.strip():
            raise RagError(
                "the question is empty.", hint="Pass the question as a non-empty string."
            )
        if tenant not in self.tenants:
            raise TenantScopeError(f"no index for tenant {tenant!r}.")
        t0 = time.perf_counter()
        vector = self.embed_query(query) if mode != "lexical" else None
        t1 = time.perf_counter()
        hits = self.search(tenant, query, vector, mode=mode, k=k, query_filter=query_filter)
        t2 = time.perf_counter()
        return hits, {"embed_ms": (t1 - t0) * 1e3, "search_ms": (t2 - t1) * 1e3}

    def relevance(self, tenant: str, vector: np.ndarray) -> float:
        """Best cosine similarity in the tenant: the "is anything relevant here?" signal."""
        hits = self.store.search(tenant, vector, k=1)
        return hits[0].score if hits else 0.0
