"""The tenant-facing cloud app: API keys -> tenant, ``POST /ask``, hashed request log.

Placement is the lesson: this app is the "cloud" side (auth, product logic, the log, the
index), and it calls the "AI infra" side over HTTP: the kit's chat server for generation
and, optionally, the embeddings server for the query embedding (``embed_url``; without it
the query is embedded here, on the cloud CPU). ``network_delay_ms`` is slept before each
cross-system call to stand in for the round trip between two providers or regions, so the
response's per-stage timings show what the split costs.

Security rules this file enforces:

* the tenant comes from the API key, never from the request body; a caller's ``filter``
  can only narrow a search inside that tenant (see :mod:`infralab.rag.store`);
* a missing or unknown key gets ``401`` with a fixed body and nothing else (checked before
  the body is even read, so a 422 cannot reveal the API's shape);
* the log keeps a sha256 of the question, never its text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from infralab.rag.generate import Generator
from infralab.rag.hybrid import RagIndex
from infralab.rag.store import TenantScopeError

log = logging.getLogger("infralab.rag.cloud")

UNAUTHORIZED = {"error": {"message": "unauthorized", "type": "unauthorized"}}
PUBLIC_PATHS = frozenset({"/healthz"})
API_KEYS_ENV = "INFRALAB_RAG_KEYS"  # "key1=saas,key2=lawfirm" when no keys are passed


def question_hash(question: str) -> str:
    """What the log keeps instead of the question: its sha256, hex."""
    return hashlib.sha256(question.encode("utf-8", "surrogatepass")).hexdigest()


def parse_keys(spec: str) -> dict[str, str]:
    """``"key=tenant,key2=tenant2"`` -> ``{key: tenant}``."""
    keys: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, tenant = part.partition("=")
        if not sep or not key.strip() or not tenant.strip():
            raise ValueError(f"API key entry {part!r} must look like key=tenant.")
        keys[key.strip()] = tenant.strip()
    return keys


class KeyRing:
    """API keys stored as sha256 digests; lookup compares every digest in constant time."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        if not keys:
            raise ValueError(f"no API keys: pass api_keys={{key: tenant}} or set {API_KEYS_ENV}.")
        self._digests = [(hashlib.sha256(k.encode()).digest(), t) for k, t in keys.items()]

    def tenant(self, key: str | None) -> str | None:
        if not key:
            return None
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for d, tenant in self._digests:  # no early exit: timing does not say which key
            if hmac.compare_digest(d, digest):
                found = tenant
        return found


def api_key_from(request: Request) -> str | None:
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


class RemoteEmbedder:
    """Query embeddings from the AI-infra embeddings server (OpenAI-compatible)."""

    def __init__(self, base_url: str) -> None:
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0)

    def embed(self, texts: list[str]) -> np.ndarray:
        resp = self.client.embeddings.create(input=texts, model="all-MiniLM-L6-v2")
        return np.asarray([d.embedding for d in resp.data], dtype=np.float32)


class AskRequest(BaseModel):
    """The body of ``POST /ask``. There is no tenant field: the key decides the tenant."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=2000, description="The user's question.")
    mode: Literal["dense", "lexical", "hybrid"] = Field(default="hybrid")
    k: int = Field(default=3, ge=1, le=10, description="Chunks to retrieve.")
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Optional Qdrant filter; it can only narrow results inside your tenant.",
    )
    generate: bool = Field(default=True, description="False: retrieval only, no LLM call.")


def _error(status: int, message: str, kind: str = "invalid_request") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def build_index(
    *,
    corpus_dir: str | None,
    embedder: Any,
    layout: str,
    size: int,
    overlap: int,
    label: str,
) -> RagIndex:
    """The index the app serves, with corpus vectors from the kit's cache when present."""
    from infralab.assets import cache_dir
    from infralab.rag.corpus import load_documents

    docs = load_documents(corpus_dir)
    return RagIndex.build(
        docs,
        embedder,
        size=size,
        overlap=overlap,
        layout=layout,
        cache_dir=cache_dir() / "rag",
        label=label,
    )


def create_app(
    api_keys: Mapping[str, str] | None = None,
    *,
    llm_url: str | None = None,
    embed_url: str | None = None,
    network_delay_ms: float = 0.0,
    corpus_dir: str | None = None,
    layout: str = "auto",
    chunk_size: int = 120,
    chunk_overlap: int = 30,
    variant: str = "int8",
    embedder: Any = None,
    index: RagIndex | None = None,
    generator: Generator | None = None,
    min_score: float | None = None,
    max_tokens: int = 48,
    log_size: int = 1000,
) -> FastAPI:
    """Build the cloud app; every argument is JSON-able except the injectable objects.

    ``api_keys`` maps key -> tenant (else ``INFRALAB_RAG_KEYS``). ``llm_url``: the chat
    server's OpenAI base URL (``.../v1``; else ``OPENAI_BASE_URL``). ``embed_url``: embed
    queries on the embeddings server instead of here. ``embedder``: an object with
    ``embed``, ``"hash"`` for the model-free stand-in, or None for the ONNX ``variant``.
    ``index`` / ``generator``: pass prebuilt ones (tests, notebooks).
    """
    if layout == "auto":  # local mode filters in Python: one collection per tenant is faster
        layout = "shared" if os.environ.get("QDRANT_URL") else "per_tenant"
    if network_delay_ms < 0:
        raise ValueError(f"network_delay_ms must be >= 0, got {network_delay_ms}.")
    keys = KeyRing(
        api_keys if api_keys is not None else parse_keys(os.environ.get(API_KEYS_ENV, ""))
    )
    delay_s = network_delay_ms / 1000.0

    if index is None:
        if embedder is None:
            from infralab.models.encoder import Embedder

            embedder, label = Embedder(variant=variant, provider="cpu", batch_size=32), variant
        elif embedder == "hash":
            from infralab.serving.app import HashEmbedder

            embedder, label = HashEmbedder(), "hash"
        else:
            label = getattr(embedder, "variant", type(embedder).__name__)
        index = build_index(
            corpus_dir=corpus_dir,
            embedder=embedder,
            layout=layout,
            size=chunk_size,
            overlap=chunk_overlap,
            label=label,
        )
    query_embedder = RemoteEmbedder(embed_url) if embed_url else index.embedder
    if generator is None:
        kwargs: dict[str, Any] = {"base_url": llm_url, "max_tokens": max_tokens}
        if min_score is not None:
            kwargs["min_score"] = min_score
        generator = Generator(**kwargs)
    request_log: deque[dict[str, Any]] = deque(maxlen=log_size)

    app = FastAPI(title="infralab RAG cloud app", version="1")
    app.state.request_log = request_log
    app.state.index = index

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if request.url.path in PUBLIC_PATHS:
            return await call_next(request)
        tenant = keys.tenant(api_key_from(request))
        if tenant is None:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        request.state.tenant = tenant
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "http_error")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "chunks": len(index.chunks)}

    def remote(call, timings: dict[str, float], stage: str):
        """A cross-system call: injected round trip, then the call, timed apart."""
        t0 = time.perf_counter()
        if delay_s:
            time.sleep(delay_s)
        t1 = time.perf_counter()
        out = call()
        t2 = time.perf_counter()
        timings["network"] = timings.get("network", 0.0) + (t1 - t0) * 1e3
        timings[stage] = timings.get(stage, 0.0) + (t2 - t1) * 1e3
        return out

    @app.post("/ask")
    def ask(body: AskRequest, request: Request) -> JSONResponse:
        tenant: str = request.state.tenant  # set by authentication, never by the body
        started = time.perf_counter()
        timings: dict[str, float] = {"embed_query": 0.0, "search": 0.0}
        status = 200
        try:
            if not body.question.strip():
                status = 422
                return _error(422, "question: the question is empty")
            vector = None
            if body.mode != "lexical" or body.generate:
                if embed_url:
                    vectors = remote(
                        lambda: query_embedder.embed([body.question]), timings, "embed_query"
                    )
                else:
                    t0 = time.perf_counter()
                    vectors = query_embedder.embed([body.question])
                    timings["embed_query"] = (time.perf_counter() - t0) * 1e3
                vector = np.asarray(vectors, dtype=np.float32)[0]
            t0 = time.perf_counter()
            try:
                hits = index.search(
                    tenant,
                    body.question,
                    vector,
                    mode=body.mode,
                    k=body.k,
                    query_filter=body.filter,
                )
                relevance = index.relevance(tenant, vector) if vector is not None else 0.0
            except TenantScopeError:
                status = 404
                return _error(404, "your tenant has no documents indexed yet", "not_found")
            except ValueError as exc:
                status = 422
                return _error(422, f"filter: {exc}")
            timings["search"] = (time.perf_counter() - t0) * 1e3
            result: dict[str, Any] = {"tenant": tenant, "mode": body.mode}
            if body.generate:
                try:
                    if generator.abstains(hits, relevance):  # no call across the boundary
                        answer = generator.answer(body.question, hits, relevance)
                    else:
                        answer = remote(
                            lambda: generator.answer(body.question, hits, relevance),
                            timings,
                            "generate",
                        )
                except Exception as exc:  # the AI-infra side failed, not this app
                    status = 502
                    log.warning("LLM call failed: %s", type(exc).__name__)
                    return _error(
                        502,
                        f"the AI-infra LLM service did not answer ({type(exc).__name__})",
                        "upstream_error",
                    )
                result.update(answer.to_dict())
            result["relevance"] = relevance
            result["chunks"] = [
                {"chunk_id": h.chunk_id, "doc_id": h.doc_id, "title": h.title, "score": h.score}
                for h in hits
            ]
            timings["total"] = (time.perf_counter() - started) * 1e3
            result["timings_ms"] = timings
            return JSONResponse(result)
        finally:
            entry = {
                "ts": time.time(),
                "tenant": tenant,
                "question_sha256": question_hash(body.question),
                "mode": body.mode,
                "status": status,
                "latency_ms": (time.perf_counter() - started) * 1e3,
            }
            request_log.append(entry)
            log.info("ask %s", entry)

    @app.get("/requests")
    def requests_log(request: Request) -> dict[str, Any]:
        """This tenant's recent requests as logged: hashes, not questions."""
        tenant = request.state.tenant
        return {"requests": [e for e in request_log if e["tenant"] == tenant]}

    return app


def ask_many(
    client: Any, key: str, questions: list[str], *, progress: bool = True, **body: Any
) -> list[dict[str, Any]]:
    """POST each question to ``/ask`` with ``key`` (an ``httpx.Client`` with a base URL or a
    FastAPI ``TestClient``); returns the JSON bodies, failing loudly on a non-200."""
    from tqdm.auto import tqdm

    out = []
    for q in tqdm(questions, desc="asking", leave=False, disable=not progress):
        resp = client.post("/ask", headers={"X-API-Key": key}, json={"question": q, **body})
        if resp.status_code != 200:
            raise RuntimeError(f"/ask answered {resp.status_code}: {resp.text[:300]}")
        out.append(resp.json())
    return out
