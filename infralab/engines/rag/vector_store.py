"""Vector store on qdrant-client with the tenant scope enforced by the store, not the caller.

Local mode (in memory or a folder) by default; a real Qdrant server when ``QDRANT_URL`` is
set; the code is the same. Two layouts, chosen knowingly:

* ``"shared"``: one collection, ``tenant`` as a payload field with a (tenant) keyword index,
  every search ANDed with the tenant condition. On a server the index makes that filter cheap;
  qdrant-client's local mode ignores payload indexes and checks filters in Python, point by
  point, so filtered searches get slower as the collection grows.
* ``"per_tenant"``: one collection per tenant; the tenant picks the collection, so no filter
  is needed for isolation and local-mode searches stay fast.

Either way :meth:`TenantVectorStore.search` takes the tenant as its own argument (the server
fills it from the authenticated API key) and a caller's filter can only narrow results inside
that tenant; hits are re-checked before they are returned (defence in depth).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from qdrant_client import QdrantClient, models

from infralab.core.errors import InfralabError
from infralab.engines.rag.chunking import Chunk
from infralab.engines.rag.rag_errors import RagError

Layout = Literal["shared", "per_tenant"]
LAYOUTS: tuple[str, ...] = ("shared", "per_tenant")
DIM = 384


class TenantScopeError(PermissionError, InfralabError):
    """A search for a tenant the store does not hold (never silently widened)."""

    hint = "Search with the caller's own tenant; the API key decides the tenant, never the request body."


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk with its similarity score (cosine for dense, BM25 for lexical)."""

    chunk_id: str
    doc_id: str
    tenant: str
    title: str
    text: str
    score: float


def make_client(location: str | Path | None = None) -> QdrantClient:
    """``QDRANT_URL`` wins (real server, ``QDRANT_API_KEY`` optional); else local mode:
    ``None``/``":memory:"`` keeps it in RAM, any other value is a folder."""
    url = os.environ.get("QDRANT_URL")
    if url:
        return QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY") or None)
    if location is None or str(location) == ":memory:":
        return QdrantClient(location=":memory:")
    Path(location).mkdir(parents=True, exist_ok=True)
    return QdrantClient(path=str(location))


def tenant_condition(tenant: str) -> models.FieldCondition:
    """The one condition that scopes a search to a tenant."""
    return models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))


def parse_caller_filter(raw: Any) -> models.Filter | None:
    """A caller's optional filter (dict in Qdrant's JSON form, or a Filter) -> Filter.

    Raises ValueError with the reason for anything that is not a valid Qdrant filter.
    """
    if raw is None or raw == {}:
        return None
    if isinstance(raw, models.Filter):
        return raw
    if not isinstance(raw, Mapping):
        raise RagError(
            f"filter must be a JSON object such as {{'must': [...]}}, got {type(raw).__name__}.",
            hint="Qdrant's filter docs show the form: {'must': [{'key': 'year', 'match': {'value': 2024}}]}.",
        )
    try:
        return models.Filter.model_validate(dict(raw))
    except Exception as exc:  # pydantic's message names the bad field
        raise RagError(
            f"not a valid Qdrant filter: {exc}".splitlines()[0],
            hint="Top-level keys are must, should and must_not, each a list of conditions.",
        ) from None


def scoped_filter(tenant: str, caller: models.Filter | None, layout: str) -> models.Filter | None:
    """AND the tenant condition with whatever the caller sent: the caller can only narrow."""
    if layout == "per_tenant":  # the collection already is the tenant
        return caller
    must: list[Any] = [tenant_condition(tenant)]
    if caller is not None:
        must.append(caller)
    return models.Filter(must=must)


class TenantVectorStore:
    """Dense index of chunks for several tenants, searched one tenant at a time."""

    def __init__(
        self,
        location: str | Path | None = None,
        *,
        layout: Layout = "shared",
        name: str = "infralab_rag",
        dim: int = DIM,
        client: QdrantClient | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise RagError(
                f"layout must be one of {LAYOUTS}, got {layout!r}.",
                hint="'shared': one collection filtered by tenant; 'per_tenant': one collection each.",
            )
        self.layout: str = layout
        self.name = name
        self.dim = dim
        self.client = client if client is not None else make_client(location)
        self.tenants: set[str] = set()
        self._next_id = 0

    def collection(self, tenant: str) -> str:
        """The collection that holds ``tenant``'s chunks in this layout."""
        return f"{self.name}_{tenant}" if self.layout == "per_tenant" else self.name

    def _ensure_collection(self, name: str) -> None:
        if self.client.collection_exists(name):
            return
        self.client.create_collection(
            name, vectors_config=models.VectorParams(size=self.dim, distance=models.Distance.COSINE)
        )
        with warnings.catch_warnings():  # local mode: "payload indexes have no effect"
            warnings.simplefilter("ignore")
            self.client.create_payload_index(
                name,
                "tenant",
                field_schema=models.KeywordIndexParams(type="keyword", is_tenant=True),
            )
            self.client.create_payload_index(name, "doc_id", field_schema="keyword")

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert chunks with their (L2-normalised) vectors."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise RagError(
                f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}.",
                hint="Embed every chunk's text with the store's embedder: one row per chunk.",
            )
        by_collection: dict[str, list[models.PointStruct]] = {}
        for chunk, vec in zip(chunks, vectors, strict=True):
            point = models.PointStruct(
                id=self._next_id,
                vector=vec.tolist(),
                payload={
                    "tenant": chunk.tenant,
                    "chunk_id": chunk.chunk_id,
                    "doc_id": chunk.doc_id,
                    "title": chunk.title,
                    "text": chunk.text,
                },
            )
            self._next_id += 1
            by_collection.setdefault(self.collection(chunk.tenant), []).append(point)
            self.tenants.add(chunk.tenant)
        for name, points in by_collection.items():
            self._ensure_collection(name)
            for start in range(0, len(points), 256):
                self.client.upsert(name, points=points[start : start + 256], wait=True)

    def search(
        self, tenant: str, vector: np.ndarray, k: int = 5, query_filter: Any = None
    ) -> list[Hit]:
        """Top-``k`` chunks of ``tenant`` only. ``tenant`` must come from authentication;
        ``query_filter`` (the caller's) can only narrow the result within that tenant."""
        if tenant not in self.tenants:
            raise TenantScopeError(f"no index for tenant {tenant!r}.")
        if not isinstance(k, int) or not 1 <= k <= 100:
            raise RagError(
                f"k must be a whole number from 1 to 100, got {k!r}.",
                hint="k is how many chunks to return, e.g. 5.",
            )
        flt = scoped_filter(tenant, parse_caller_filter(query_filter), self.layout)
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape != (self.dim,):
            raise RagError(
                f"query vector must have {self.dim} numbers, got {vec.shape[0]}.",
                hint="Embed the query with the same embedder as the documents.",
            )
        points = self.client.query_points(
            self.collection(tenant),
            query=vec.tolist(),
            query_filter=flt,
            limit=k,
            with_payload=True,
        ).points
        hits = [
            Hit(
                chunk_id=p.payload["chunk_id"],
                doc_id=p.payload["doc_id"],
                tenant=p.payload["tenant"],
                title=p.payload["title"],
                text=p.payload["text"],
                score=float(p.score),
            )
            for p in points
            if p.payload
        ]
        return [h for h in hits if h.tenant == tenant]  # re-check: never trust one layer

    def count(self) -> int:
        """Number of stored chunks over all tenants."""
        names = {self.collection(t) for t in self.tenants}
        return sum(self.client.count(n, exact=True).count for n in names)

    def close(self) -> None:
        """Release the client (a local folder is locked while open)."""
        self.client.close()


def embed_chunks(
    chunks: Sequence[Chunk], embedder: Any, cache_dir: Path | None = None, label: str = ""
) -> np.ndarray:
    """Embed chunk texts once and reuse them: a cache keyed by the texts and ``label``
    (e.g. the embedder variant) under ``cache_dir``; no cache when ``cache_dir`` is None."""
    texts = [c.embed_text for c in chunks]
    key = hashlib.sha256(("\x00".join(texts) + "\x01" + label).encode()).hexdigest()[:20]
    path = cache_dir / f"vectors-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        vecs = np.load(path)
        if vecs.shape[0] == len(texts):
            return vecs
    vecs = np.asarray(embedder.embed(texts), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
    return vecs


def allowed_chunk_ids(store: TenantVectorStore, tenant: str, query_filter: Any) -> set[str]:
    """Chunk ids of ``tenant`` that pass the caller's filter: lets the lexical side honour
    the same filter as the dense side, still inside the authenticated tenant."""
    if tenant not in store.tenants:
        raise TenantScopeError(f"no index for tenant {tenant!r}.")
    flt = scoped_filter(tenant, parse_caller_filter(query_filter), store.layout)
    ids: set[str] = set()
    offset = None
    while True:
        points, offset = store.client.scroll(
            store.collection(tenant),
            scroll_filter=flt,
            limit=1024,
            offset=offset,
            with_payload=["chunk_id", "tenant"],
            with_vectors=False,
        )
        ids.update(
            p.payload["chunk_id"] for p in points if p.payload and p.payload["tenant"] == tenant
        )
        if offset is None:
            return ids
