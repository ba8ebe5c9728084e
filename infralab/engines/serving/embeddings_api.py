"""The embeddings service's contract with its clients: OpenAI's ``/v1/embeddings`` API.

The request model, the limits and their checks, the two response encodings (float and
base64), the error wording, and the router with ``POST /v1/embeddings``, ``GET /v1/models``,
``GET /healthz`` and ``GET /metrics``. :func:`infralab.engines.serving.app.create_app` builds the
embedder and the runner, and wires this router, the middleware and the error handlers into
one app; every name here is importable from :mod:`infralab.engines.serving.app` too.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from infralab.core.errors import InfralabError
from infralab.engines.serving import api_errors
from infralab.engines.serving.batching import MicroBatcher, NaiveRunner
from infralab.engines.serving.metrics import ServiceMetrics, metrics_endpoint

try:  # a fast JSON encoder for the float form (the `orjson` dependency); json as a fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a dependency; kept for a partial install
    _orjson = None

MODEL_ID = "all-MiniLM-L6-v2"
DIM = 384
DEFAULT_MAX_ITEMS = 256
DEFAULT_MAX_CHARS = 8192
DEFAULT_MAX_TOTAL_TOKENS = 16384
ROUTES_HINT = "POST /v1/embeddings, GET /v1/models, GET /healthz and GET /metrics"


class EmbedderLike(Protocol):
    """What the service needs from an embedder (``infralab.engines.models.encoder.Embedder`` has it)."""

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


def encode_vectors(vectors: np.ndarray, encoding_format: str) -> list[Any]:
    """Each row as the OpenAI API sends it: a list of floats, or base64 of little-endian float32.

    ``base64`` is what the ``openai`` client asks for by default: 2 KB of text per 384-float
    vector, no float formatting on the server and no float parsing on the client. The float
    form keeps each value exact (float32 widened to float64, as ``tolist()`` gives).
    """
    if encoding_format == "base64":
        raw = np.ascontiguousarray(vectors, dtype="<f4")
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in raw]
    if _orjson is not None:
        return list(np.asarray(vectors, dtype=np.float64))  # rows that orjson writes directly
    return np.asarray(vectors, dtype=np.float64).tolist()


def dumps(body: Any) -> bytes:
    """JSON bytes of a response body; orjson when installed (numpy rows written natively).

    Formatting 384 floats per text with the standard library's ``json`` measured about 2 ms
    per vector on a busy 2-core machine, as long as the model's own share of a batched
    request; orjson does the same in about 1/40 of the time and parses back to identical
    values.
    """
    if _orjson is not None:
        return _orjson.dumps(body, option=_orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(body, separators=(",", ":")).encode()


class EmbeddingRequest(BaseModel):
    """The OpenAI embeddings request; fields this server does not use are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str] = Field(description="A text, or a list of texts, to embed.")
    model: str | None = Field(default=None, description=f"'{MODEL_ID}' (or omit).")
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="'float' (a JSON list) or 'base64' (little-endian float32)."
    )
    dimensions: StrictInt | None = Field(default=None, description=f"Must be {DIM} if given.")
    user: str | None = None


class _ClientError(InfralabError):
    """Bad input, answered as a 4xx with this message."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.param = message, status, param


def _error(status: int, message: str, *, param: str | None = None) -> JSONResponse:
    """An OpenAI-style error body (the shared shape of :mod:`infralab.engines.serving.api_errors`)."""
    return api_errors.error_response(status, message, param=param)


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    """Turn pydantic's error list into one sentence a person can act on."""
    errors = exc.errors()
    if not errors:
        return "The request body is not valid.", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "The request body is not valid JSON.", None
    if not loc:
        if kind in ("missing", "model_attributes_type", "dict_type"):
            return (
                'The request body must be a JSON object like {"input": "some text"}.',
                None,
            )
        return f"The request body is not valid: {first.get('msg', '')}.", None
    field = loc[0]
    if field == "input":
        if kind == "missing":
            return "'input' is missing: send a text or a list of texts.", "input"
        return (
            "'input' must be a text or a list of texts (token-id arrays are not supported here).",
            "input",
        )
    path = ".".join(loc)
    return f"'{path}': {first.get('msg', 'invalid value')}.", field


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_items: int = DEFAULT_MAX_ITEMS
    max_chars: int = DEFAULT_MAX_CHARS
    max_total_tokens: int = DEFAULT_MAX_TOTAL_TOKENS


def _validate(req: EmbeddingRequest, limits: Limits, served_names: set[str]) -> list[str]:
    """The limits, as plain checks: each failure says which item and which limit."""
    if req.model is not None and req.model not in served_names:
        raise _ClientError(
            f"Model {req.model!r} is not served here; use {MODEL_ID!r} (or omit 'model').",
            status=404,
            param="model",
        )
    if req.dimensions is not None and req.dimensions != DIM:
        raise _ClientError(
            f"This model makes {DIM}-dimensional vectors; 'dimensions' was {req.dimensions}.",
            param="dimensions",
        )
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    if not texts:
        raise _ClientError("'input' is an empty list: send at least one text.", param="input")
    if len(texts) > limits.max_items:
        raise _ClientError(
            f"'input' has {len(texts)} texts; the limit is {limits.max_items} per request.",
            param="input",
        )
    for i, text in enumerate(texts):
        where = "'input'" if isinstance(req.input, str) else f"input[{i}]"
        if not text.strip():
            raise _ClientError(
                f"{where} is empty: every text needs some characters.", param="input"
            )
        if len(text) > limits.max_chars:
            raise _ClientError(
                f"{where} has {len(text):,} characters; the limit is {limits.max_chars:,}.",
                param="input",
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _ClientError(
                f"{where} contains a lone surrogate and is not valid Unicode text.",
                param="input",
            ) from None
    return texts


def _response_body(vectors: Any, encoding_format: str, total: int) -> bytes:
    """The OpenAI embeddings response for these vectors, as JSON bytes."""
    encoded = encode_vectors(np.asarray(vectors, dtype=np.float32), encoding_format)
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": emb} for i, emb in enumerate(encoded)
        ],
        "model": MODEL_ID,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }
    return dumps(body)


def embeddings_router(
    embedder: EmbedderLike,
    runner: MicroBatcher | NaiveRunner,
    *,
    served_variant: str,
    limits: Limits,
    batch_settings: dict[str, Any],
    startup: dict[str, Any],
    responses: Counter,
    metrics: ServiceMetrics,
) -> APIRouter:
    """``POST /v1/embeddings``, ``GET /v1/models``, ``GET /healthz`` and ``GET /metrics``."""
    router = APIRouter()
    served_names = {MODEL_ID, f"sentence-transformers/{MODEL_ID}", f"{MODEL_ID}-{served_variant}"}

    async def answer(req: EmbeddingRequest) -> Response:
        """The whole contract for a parsed request: limits, model call, encoded response."""
        texts = _validate(req, limits, served_names)
        tokens = [int(n) for n in embedder.count_tokens(texts)]
        total = sum(tokens)
        if total > limits.max_total_tokens:
            raise _ClientError(
                f"The texts make {total:,} tokens together; the limit is {limits.max_total_tokens:,} "
                "per request. Send fewer or shorter texts.",
                param="input",
            )
        try:
            vectors = await runner.submit(texts)
        except RuntimeError as exc:
            if "shutting down" in str(exc):
                return _error(503, "The server is shutting down; retry.")
            raise
        body = _response_body(vectors, req.encoding_format, total)
        return Response(body, media_type="application/json")

    @router.post("/v1/embeddings", summary="Embed texts (OpenAI-compatible)")
    async def embeddings(req: EmbeddingRequest) -> Response:
        return await answer(req)

    router.answer_embeddings = answer  # type: ignore[attr-defined] - for the fast lane
    _add_info_routes(router, runner, served_variant, startup)
    _add_metrics_route(router, runner, served_variant, batch_settings, startup, responses, metrics)
    return router


def _add_info_routes(
    router: APIRouter, runner: Any, served_variant: str, startup: dict[str, Any]
) -> None:
    """``GET /v1/models`` (OpenAI's shape) and ``GET /healthz`` (with the start-up times)."""

    @router.get("/v1/models", summary="The model this server serves (OpenAI-compatible)")
    async def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "infralab"}],
        }

    @router.get("/healthz", summary="Liveness, and when each start-up step finished")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": MODEL_ID,
            "variant": served_variant,
            "mode": runner.mode,
            "pid": os.getpid(),
            "startup": startup,
        }


def _add_metrics_route(
    router: APIRouter,
    runner: Any,
    served_variant: str,
    batch_settings: dict[str, Any],
    startup: dict[str, Any],
    responses: Counter,
    metrics: ServiceMetrics,
) -> None:
    """``GET /metrics``: Prometheus text to a scraper, a JSON summary to a plain GET."""

    def metrics_json() -> dict[str, Any]:
        """The JSON summary the launcher, benchmarks and lesson 02 read (plain GET)."""
        out: dict[str, Any] = {
            "mode": runner.mode,
            "variant": served_variant,
            **batch_settings,
            "http_responses": dict(responses),
            **runner.stats.to_dict(),
        }
        try:
            import psutil

            out["rss_mb"] = psutil.Process().memory_info().rss / 2**20
        except Exception:
            out["rss_mb"] = None
        if startup.get("ready"):
            out["uptime_s"] = time.time() - startup["ready"]
        return out

    router.add_api_route(
        "/metrics",
        metrics_endpoint(metrics, metrics_json),
        methods=["GET"],
        summary="Prometheus text to a scraper (or ?format=prometheus); a JSON summary otherwise",
    )
