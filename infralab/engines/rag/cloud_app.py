"""The tenant-facing cloud app: API keys -> tenant, ``POST /ask``, hashed request log.

Placement is the lesson: this app is the "cloud" side (auth, product logic, the log, the
index), and it calls the "AI infra" side over HTTP: the kit's chat server for generation
and, optionally, the embeddings server for the query embedding (``embed_url``; without it
the query is embedded here, on the cloud CPU). ``network_delay_ms`` is slept before each
cross-system call to stand in for the round trip between two providers or regions, so the
response's per-stage timings show what the split costs. The delay is simulated (a sleep on
one machine) and its value an assumption the caller states, never a measured round trip.

Security rules this file enforces:

* the tenant comes from the API key, never from the request body; a caller's ``filter``
  can only narrow a search inside that tenant (see :mod:`infralab.engines.rag.vector_store`);
* a missing or unknown key gets ``401`` with a fixed body and nothing else (checked before
  the body is even read, so a 400 cannot reveal the API's shape);
* bodies are bounded while they are read (chunked ones too) and a caller's filter is bounded
  in depth and size before any filter work; errors use the kit's OpenAI-style shape
  (:mod:`infralab.engines.serving.api_errors`);
* the log keeps a sha256 of the question, never its text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from infralab.engines.rag.answer import Generator

# The API keys live in api_keys; callers (the tests, lab 06's checks) still reach them here.
from infralab.engines.rag.api_keys import API_KEYS_ENV, KeyRing, api_key_from, parse_keys
from infralab.engines.rag.hybrid import RagIndex
from infralab.engines.rag.rag_errors import RagError, RagServiceError
from infralab.engines.rag.vector_store import TenantScopeError
from infralab.engines.serving.api_errors import (
    ServiceGuard,
    check_text,
    error_body,
    error_response,
    install_error_handlers,
)
from infralab.engines.serving.metrics import LATENCY_BUCKETS, ServiceMetrics, metrics_endpoint

log = logging.getLogger("infralab.engines.rag.cloud")

UNAUTHORIZED = error_body(
    "unauthorized: send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
    401,
    code="invalid_api_key",
)
PUBLIC_PATHS = frozenset({"/healthz", "/metrics"})
ROUTES_HINT = "POST /ask, GET /requests, GET /healthz and GET /metrics"
DEFAULT_MAX_BODY_BYTES = 256 * 1024  # a 2,000-character question and a filter fit many times
MAX_FILTER_DEPTH = 12  # nested objects and lists in a filter
MAX_FILTER_NODES = 256  # objects, lists and values in a filter


def filter_shape(value: Any) -> tuple[int, int]:
    """(deepest nesting, number of nodes) of a JSON value, without recursion."""
    deepest, nodes = 0, 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_FILTER_DEPTH or nodes > MAX_FILTER_NODES:
                break  # already too big: stop counting
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest, nodes


def question_hash(question: str) -> str:
    """What the log keeps instead of the question: its sha256, hex."""
    return hashlib.sha256(question.encode("utf-8", "surrogatepass")).hexdigest()


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
    k: StrictInt = Field(default=3, ge=1, le=10, description="Chunks to retrieve.")
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Optional Qdrant filter; it can only narrow results inside your tenant.",
    )
    generate: bool = Field(default=True, description="False: retrieval only, no LLM call.")

    @field_validator("question")
    @classmethod
    def _text(cls, v: str) -> str:
        check_text(v, "question")
        if not v.strip():
            # builtin on purpose: a pydantic validator must raise ValueError (it becomes the 4xx body)
            raise ValueError("the question is empty: ask something")
        return v

    @field_validator("filter")
    @classmethod
    def _bounded(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        depth, nodes = filter_shape(v)
        if depth > MAX_FILTER_DEPTH or nodes > MAX_FILTER_NODES:
            # builtin on purpose: a pydantic validator must raise ValueError (it becomes the 4xx body)
            raise ValueError(
                f"the filter is too large (limits: {MAX_FILTER_DEPTH} levels of nesting, "
                f"{MAX_FILTER_NODES} values); use fewer nested must/should clauses"
            )
        for key in _strings(v):
            check_text(key, "filter")
        return v


def _strings(value: Any) -> list[str]:
    """Every key and string value in a (bounded) JSON value."""
    out, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.extend(k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


def _error(status: int, message: str, kind: str | None = None) -> JSONResponse:
    """The shared OpenAI-style error; ``kind`` goes to ``error.code`` (e.g. upstream_error)."""
    return error_response(status, message, code=kind)


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
    from infralab.core.assets import cache_dir
    from infralab.engines.rag.corpus import load_documents

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


class _AskHandler:
    """What ``POST /ask`` does for one tenant: embed, search, maybe generate, time each stage."""

    def __init__(
        self,
        index: RagIndex,
        generator: Generator,
        query_embedder: Any,
        *,
        remote_embed: bool,
        delay_s: float,
        metrics: ServiceMetrics,
    ) -> None:
        self.index, self.generator, self.query_embedder = index, generator, query_embedder
        self.remote_embed, self.delay_s = remote_embed, delay_s
        self.stage_seconds = metrics.histogram(
            "infralab_rag_stage_seconds",
            "Time in each /ask stage (embed_query, search, generate, network, total).",
            LATENCY_BUCKETS,
            ("stage",),
        )
        self.upstream_errors = metrics.counter(
            "infralab_rag_upstream_errors", "LLM calls across the boundary that failed."
        )

    def remote(self, call: Callable[[], Any], timings: dict[str, float], stage: str) -> Any:
        """A cross-system call: injected round trip, then the call, timed apart."""
        t0 = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        t1 = time.perf_counter()
        out = call()
        t2 = time.perf_counter()
        timings["network"] = timings.get("network", 0.0) + (t1 - t0) * 1e3
        timings[stage] = timings.get(stage, 0.0) + (t2 - t1) * 1e3
        return out

    def embed_query(self, question: str, timings: dict[str, float]) -> np.ndarray:
        """The question's vector, here or on the embeddings server (then the round trip counts)."""
        if self.remote_embed:
            vectors = self.remote(
                lambda: self.query_embedder.embed([question]), timings, "embed_query"
            )
        else:
            t0 = time.perf_counter()
            vectors = self.query_embedder.embed([question])
            timings["embed_query"] = (time.perf_counter() - t0) * 1e3
        return np.asarray(vectors, dtype=np.float32)[0]

    def generate(
        self, question: str, hits: list[Any], relevance: float, timings: dict[str, float]
    ) -> Any:
        """The answer, or a 502 when the LLM across the boundary fails (an abstention calls nothing)."""
        try:
            if self.generator.abstains(hits, relevance):  # no call across the boundary
                return self.generator.answer(question, hits, relevance)
            return self.remote(
                lambda: self.generator.answer(question, hits, relevance), timings, "generate"
            )
        except Exception as exc:  # the AI-infra side failed, not this app
            self.upstream_errors.inc()
            log.warning("LLM call failed: %s", type(exc).__name__)
            return _error(
                502,
                f"the AI-infra LLM service did not answer ({type(exc).__name__})",
                "upstream_error",
            )

    def respond(self, tenant: str, body: AskRequest, started: float) -> JSONResponse:
        """The /ask response: 404 without documents, 400 on a bad filter, else the hits (and answer)."""
        timings: dict[str, float] = {"embed_query": 0.0, "search": 0.0}
        vector = None
        if body.mode != "lexical" or body.generate:
            vector = self.embed_query(body.question, timings)
        t0 = time.perf_counter()
        try:
            hits = self.index.search(tenant, body.question, vector, mode=body.mode, k=body.k,
                                     query_filter=body.filter)  # fmt: skip
            relevance = self.index.relevance(tenant, vector) if vector is not None else 0.0
        except TenantScopeError:
            return _error(404, "your tenant has no documents indexed yet", "not_found")
        except ValueError as exc:
            return _error(400, f"filter: {exc}; send a Qdrant filter (must/should/must_not)")
        timings["search"] = (time.perf_counter() - t0) * 1e3
        result: dict[str, Any] = {"tenant": tenant, "mode": body.mode}
        if body.generate:
            answer = self.generate(body.question, hits, relevance, timings)
            if isinstance(answer, JSONResponse):
                return answer
            result.update(answer.to_dict())
        result["relevance"] = relevance
        result["chunks"] = [
            {"chunk_id": h.chunk_id, "doc_id": h.doc_id, "title": h.title, "score": h.score}
            for h in hits
        ]
        timings["total"] = (time.perf_counter() - started) * 1e3
        result["timings_ms"] = timings
        for stage, ms in timings.items():
            self.stage_seconds.labels(stage).observe(ms / 1e3)
        return JSONResponse(result)


def _log_request(
    request_log: deque[dict[str, Any]], tenant: str, body: AskRequest, status: int, started: float
) -> None:
    """Keep a request in the log by its hash, never its text (``GET /requests`` shows it)."""
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


def rag_router(
    index: RagIndex,
    generator: Generator,
    query_embedder: Any,
    *,
    remote_embed: bool,
    delay_s: float,
    request_log: deque[dict[str, Any]],
    metrics: ServiceMetrics,
) -> APIRouter:
    """``POST /ask``, ``GET /requests``, ``GET /healthz`` and ``GET /metrics``.

    The tenant comes from ``request.state.tenant``, which the app's authentication gate sets
    before the body is read; nothing in a body can set it.
    """
    handler = _AskHandler(index, generator, query_embedder, remote_embed=remote_embed,
                          delay_s=delay_s, metrics=metrics)  # fmt: skip
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "chunks": len(index.chunks)}

    router.add_api_route("/metrics", metrics_endpoint(metrics), methods=["GET"])

    @router.post("/ask")
    def ask(body: AskRequest, request: Request) -> JSONResponse:
        tenant: str = request.state.tenant  # set by authentication, never by the body
        started = time.perf_counter()
        response = None
        try:
            response = handler.respond(tenant, body, started)
            return response
        finally:  # logged even when the request fails
            status = 200 if response is None else response.status_code
            _log_request(request_log, tenant, body, status, started)

    @router.get("/requests")
    def requests_log(request: Request) -> dict[str, Any]:
        """This tenant's recent requests as logged: hashes, not questions."""
        tenant = request.state.tenant
        return {"requests": [e for e in request_log if e["tenant"] == tenant]}

    return router


def _serving_index(
    corpus_dir: str | None, embedder: Any, variant: str, layout: str, size: int, overlap: int
) -> RagIndex:
    """Build the index the app serves with the chosen embedder (ONNX, hash stand-in or given)."""
    if embedder is None:
        from infralab.engines.models.encoder import Embedder

        embedder, label = Embedder(variant=variant, provider="cpu", batch_size=32), variant
    elif embedder == "hash":
        from infralab.engines.models.standin import HashEmbedder

        embedder, label = HashEmbedder(), "hash"
    else:
        label = getattr(embedder, "variant", type(embedder).__name__)
    return build_index(corpus_dir=corpus_dir, embedder=embedder, layout=layout,
                       size=size, overlap=overlap, label=label)  # fmt: skip


def _tenant_gate(keys: KeyRing) -> Callable[[dict], JSONResponse | None]:
    """The authentication gate the guard runs before the body is read."""

    def authenticate(scope: dict) -> JSONResponse | None:
        """Runs before the body is read: 401 unless the key names a tenant."""
        if scope.get("path") in PUBLIC_PATHS:
            return None
        tenant = keys.tenant(api_key_from(Request(scope)))
        if tenant is None:
            return JSONResponse(UNAUTHORIZED, status_code=401)
        scope.setdefault("state", {})["tenant"] = tenant
        return None

    return authenticate


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
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """Build the cloud app; every argument is JSON-able except the injectable objects.

    ``api_keys`` maps key -> tenant (else ``INFRALAB_RAG_KEYS``). ``llm_url``: the chat
    server's OpenAI base URL (``.../v1``; else ``OPENAI_BASE_URL``). ``embed_url``: embed
    queries on the embeddings server instead of here. ``embedder``: an object with
    ``embed``, ``"hash"`` for the model-free stand-in, or None for the ONNX ``variant``.
    ``index`` / ``generator``: pass prebuilt ones (tests, notebooks). ``max_body_bytes``
    bounds a request body (counted as it arrives).
    """
    if layout == "auto":  # local mode filters in Python: one collection per tenant is faster
        layout = "shared" if os.environ.get("QDRANT_URL") else "per_tenant"
    if network_delay_ms < 0:
        raise RagError(
            f"network_delay_ms must be >= 0, got {network_delay_ms}.",
            hint="network_delay_ms simulates a round trip to a remote store; 0 means none.",
        )
    keys = KeyRing(
        api_keys if api_keys is not None else parse_keys(os.environ.get(API_KEYS_ENV, ""))
    )
    if index is None:
        index = _serving_index(corpus_dir, embedder, variant, layout, chunk_size, chunk_overlap)
    query_embedder = RemoteEmbedder(embed_url) if embed_url else index.embedder
    if generator is None:
        kwargs: dict[str, Any] = {"base_url": llm_url, "max_tokens": max_tokens}
        if min_score is not None:
            kwargs["min_score"] = min_score
        generator = Generator(**kwargs)
    request_log: deque[dict[str, Any]] = deque(maxlen=log_size)
    metrics = ServiceMetrics("rag")
    app = FastAPI(title="infralab RAG cloud app", version="1")
    app.state.request_log = request_log
    app.state.index = index
    app.state.metrics = metrics
    app.add_middleware(ServiceGuard, max_body_bytes=max_body_bytes, observe=metrics.observe,
                       gate=_tenant_gate(keys))  # fmt: skip
    install_error_handlers(app, routes_hint=ROUTES_HINT)
    router = rag_router(index, generator, query_embedder, remote_embed=bool(embed_url),
                        delay_s=network_delay_ms / 1000.0, request_log=request_log,
                        metrics=metrics)  # fmt: skip
    app.include_router(router)
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
            raise RagServiceError(f"/ask answered {resp.status_code}: {resp.text[:300]}")
        out.append(resp.json())
    return out
