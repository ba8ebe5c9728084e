"""Lexical baseline: BM25 (bm25s) with one index per tenant.

BM25 matches words, so it finds exact names, codes and numbers that an embedding blurs, and
misses paraphrases that an embedding catches; the hybrid retriever fuses both. One index per
tenant makes isolation structural: another tenant's words are not even in the statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np

from infralab.engines.rag.chunking import Chunk
from infralab.engines.rag.rag_errors import RagError
from infralab.engines.rag.vector_store import Hit, TenantScopeError


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-case word tokens without English stop words (bm25s' own tokenizer)."""
    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


class LexicalIndex:
    """BM25 over each tenant's chunks, searched one tenant at a time."""

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        by_tenant: dict[str, list[Chunk]] = {}
        for chunk in chunks:
            by_tenant.setdefault(chunk.tenant, []).append(chunk)
        self._chunks = by_tenant
        self._bm25: dict[str, bm25s.BM25] = {}
        for tenant, items in by_tenant.items():
            index = bm25s.BM25()
            index.index(tokenize([c.embed_text for c in items]), show_progress=False)
            self._bm25[tenant] = index

    @property
    def tenants(self) -> set[str]:
        return set(self._bm25)

    def search(self, tenant: str, query: str, k: int = 5) -> list[Hit]:
        """Top-``k`` chunks of ``tenant`` with a BM25 score above zero."""
        if tenant not in self._bm25:
            raise TenantScopeError(f"no lexical index for tenant {tenant!r}.")
        if not isinstance(k, int) or k < 1:
            raise RagError(
                f"k must be a positive whole number, got {k!r}.",
                hint="k is how many chunks to return, e.g. 5.",
            )
        tokens = tokenize([query])[0]
        if not tokens:
            return []
        scores = np.asarray(self._bm25[tenant].get_scores(tokens), dtype=float)
        order = np.argsort(-scores, kind="stable")[:k]
        items = self._chunks[tenant]
        return [
            Hit(
                chunk_id=items[i].chunk_id,
                doc_id=items[i].doc_id,
                tenant=tenant,
                title=items[i].title,
                text=items[i].text,
                score=float(scores[i]),
            )
            for i in order
            if scores[i] > 0
        ]
