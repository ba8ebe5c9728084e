"""The embeddings service: an OpenAI-compatible ``POST /v1/embeddings`` on FastAPI.

One app object serves three ways: as a uvicorn process (``launcher``), in-process in tests
(``TestClient``), and on AWS Lambda behind API Gateway (``lambda_handler``, through Mangum).
Every input a client can send gets a 2xx or a 4xx whose ``error.message`` says what was
wrong; a 5xx only ever means the server itself failed.

The app records when it was imported, when its heavy imports finished and when the model
was loaded, and ``GET /healthz`` reports those times, so a launcher can split a cold start
into process spawn, imports, model load and first response.

Size: one module because the request model, its limits, the two response encodings and the
routes are one contract with the client (the OpenAI embeddings API); the shared pieces
(errors, batching, metrics, the stand-in embedder) already live in their own modules.
"""

from __future__ import annotations

import time

_MODULE_T0 = time.time()  # first line that runs: the end of "process spawn" for a cold start

import base64  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from collections import Counter  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, Literal, Protocol  # noqa: E402

import numpy as np  # noqa: E402
from fastapi import APIRouter, FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError  # noqa: E402

from infralab.errors import InfralabError  # noqa: E402
from infralab.models.standin import HashEmbedder  # noqa: E402, F401 - the stand-in, served here
from infralab.serving import errors  # noqa: E402
from infralab.serving.batching import MicroBatcher, NaiveRunner, RunnerStats  # noqa: E402
from infralab.serving.metrics import BATCH_BUCKETS, ServiceMetrics, metrics_endpoint  # noqa: E402

try:  # a fast JSON encoder for the float form (the `orjson` dependency); json as a fallback
    import orjson as _orjson  # noqa: E402
except ImportError:  # pragma: no cover - orjson is a dependency; kept for a partial install
    _orjson = None

log = logging.getLogger("infralab.serving")

MODEL_ID = "all-MiniLM-L6-v2"
DIM = 384
DEFAULT_MAX_ITEMS = 256
DEFAULT_MAX_CHARS = 8192
DEFAULT_MAX_TOTAL_TOKENS = 16384
DEFAULT_MAX_BODY_BYTES = errors.DEFAULT_MAX_BODY_BYTES
ROUTES_HINT = "POST /v1/embeddings, GET /v1/models, GET /healthz and GET /metrics"
EMBEDDER_ENV = (
    "INFRALAB_EMBEDDER"  # "onnx" (default) or "hash": which embedder a bare factory builds
)


class EmbedderLike(Protocol):
    """What the service needs from an embedder (``infralab.models.encoder.Embedder`` has it)."""

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
    """An OpenAI-style error body (the shared shape of :mod:`infralab.serving.errors`)."""
    return errors.error_response(status, message, param=param)


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


class _RunnerCollector:
    """Prometheus view of the runner's own counters, read at scrape time (no double count)."""

    def __init__(self, stats: RunnerStats) -> None:
        self.stats = stats

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        st = self.stats
        sizes = sorted(st.batch_sizes.items())
        buckets = [
            (str(float(bound)), sum(n for size, n in sizes if size <= bound))
            for bound in BATCH_BUCKETS
        ]
        buckets.append(("+Inf", sum(n for _, n in sizes)))
        hist = HistogramMetricFamily(
            "infralab_embed_batch_size", "Texts in each model call (the batch size)."
        )
        hist.add_metric([], buckets, sum_value=float(sum(k * n for k, n in sizes)))
        yield hist
        done = max(st.requests - st.errors, 0)
        queue = SummaryMetricFamily(
            "infralab_embed_queue_seconds", "Time requests waited before their model call."
        )
        queue.add_metric([], count_value=done, sum_value=st.queue_s_total)
        yield queue
        yield CounterMetricFamily(
            "infralab_embed_texts", "Texts embedded (tokens in).", value=st.texts
        )
        yield CounterMetricFamily(
            "infralab_embed_model_calls", "Calls to the model.", value=st.model_calls
        )


class FastLane:
    """``POST /v1/embeddings`` with a well-formed JSON body, answered without FastAPI's routing.

    Why: on 2 cores the service's own Python per request (routing, dependency solving, the
    handler's wrappers) cost about as much as a bare ASGI server's whole request, and a
    fifth of what the model spends on a short text. The lane parses the body with pydantic
    directly and calls the same ``answer`` as the route. Anything it is not sure of (another
    route, a body that does not validate, a request the limits refuse) goes down the normal
    path, so every error is worded by the one set of handlers.
    """

    PATH = "/v1/embeddings"

    def __init__(self, app: Any, router: Any) -> None:
        self.app, self._router = app, router
        self._answer: Any = None
        self._route: Any = None

    def _bind(self) -> None:
        router = self._router()
        self._answer = router.answer_embeddings
        self._route = next(r for r in router.routes if getattr(r, "path", None) == self.PATH)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.PATH
            or (dict(scope["headers"]).get(b"content-type") or b"").split(b";")[0].strip()
            != b"application/json"
        ):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if self._answer is None:
            self._bind()
        try:
            response = await self._answer(EmbeddingRequest.model_validate_json(body))
        except (ValidationError, _ClientError):  # the full path words the error
            await self.app(scope, errors.replay([body], receive), send)
            return
        scope["route"] = self._route  # the metrics label, as the router would set it
        await response(scope, receive, send)


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_items: int = DEFAULT_MAX_ITEMS
    max_chars: int = DEFAULT_MAX_CHARS
    max_total_tokens: int = DEFAULT_MAX_TOTAL_TOKENS


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

    def validate(req: EmbeddingRequest) -> list[str]:
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

    async def answer(req: EmbeddingRequest) -> Response:
        """The whole contract for a parsed request: limits, model call, encoded response."""
        texts = validate(req)
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
        encoded = encode_vectors(np.asarray(vectors, dtype=np.float32), req.encoding_format)
        body = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": emb}
                for i, emb in enumerate(encoded)
            ],
            "model": MODEL_ID,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }
        return Response(dumps(body), media_type="application/json")

    @router.post("/v1/embeddings", summary="Embed texts (OpenAI-compatible)")
    async def embeddings(req: EmbeddingRequest) -> Response:
        return await answer(req)

    router.answer_embeddings = answer  # type: ignore[attr-defined] - for the fast lane

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
    return router


def create_app(
    embedder: EmbedderLike | str | None = None,
    *,
    batching: bool = True,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    variant: str = "int8",
    threads: int | None = None,
    batch_size: int = 32,
    max_items: int = DEFAULT_MAX_ITEMS,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_total_tokens: int = DEFAULT_MAX_TOTAL_TOKENS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    warmup: bool = True,
    in_flight: int | None = None,
) -> FastAPI:
    """Build the embeddings service.

    ``embedder``: an object with ``embed`` and ``count_tokens``; ``"hash"`` for the
    model-free stand-in; ``None`` for the real ONNX embedder (``variant``, ``threads``,
    ``batch_size`` go to it), or whatever ``INFRALAB_EMBEDDER`` names. ``batching`` picks
    the micro-batcher (``max_batch_size`` texts, ``max_wait_ms``) or one model call per
    request. The limits bound what one request may ask for.

    ``in_flight``: model calls that may run at once. The ONNX embedder without ``threads``
    runs one single-threaded call per physical core (the default here); with ``threads``,
    one call at a time on that many threads. Other embedders get 1 unless told.
    """
    factory_t0 = time.time()
    for name, value in (
        ("max_items", max_items),
        ("max_chars", max_chars),
        ("max_total_tokens", max_total_tokens),
        ("max_batch_size", max_batch_size),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")

    if embedder is None:
        embedder = os.environ.get(EMBEDDER_ENV, "onnx").strip().lower() or "onnx"
    if isinstance(embedder, str):
        if embedder == "hash":
            embedder, served_variant = HashEmbedder(), "hash"
            imports_done = model_loaded = time.time()
        elif embedder == "onnx":
            try:
                from infralab.models.encoder import Embedder
            except ImportError as exc:
                raise RuntimeError(
                    "The ONNX embedder (infralab.models.encoder) could not be imported: "
                    f"{exc}. Use create_app(embedder='hash') to serve without a model."
                ) from exc
            from infralab.runtime import physical_cores

            imports_done = time.time()
            if in_flight is None:  # one single-threaded call per core, batches side by side
                in_flight = physical_cores() if threads is None else 1
            # Spinning off on purpose: ORT's idle threads would otherwise busy-wait and take
            # CPU from the event loop that accepts and answers requests (2 cores here).
            embedder = Embedder(
                variant=variant,
                provider="cpu",
                batch_size=batch_size,
                threads=1 if threads is None else threads,
                workers=1,
                spinning=False,
            )
            served_variant = variant
            model_loaded = time.time()
        else:
            raise ValueError(f"embedder must be an object, 'onnx' or 'hash', got {embedder!r}")
    else:
        served_variant = getattr(embedder, "variant", "custom")
        imports_done = model_loaded = factory_t0
    if warmup:  # the first call pays for allocations: keep that out of the first request
        embedder.embed(["warm-up"])
    warmed = time.time()

    in_flight = 1 if in_flight is None else in_flight
    runner: MicroBatcher | NaiveRunner = (
        MicroBatcher(
            embedder.embed,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            in_flight=in_flight,
        )
        if batching
        else NaiveRunner(embedder.embed, in_flight=in_flight)
    )
    responses: Counter = Counter()
    startup: dict[str, Any] = {
        "module_imported": _MODULE_T0,
        "factory_called": factory_t0,
        "imports_done": imports_done,
        "model_loaded": model_loaded,
        "warmed_up": warmed,
        "ready": None,
    }
    try:
        import psutil

        startup["process_created"] = psutil.Process().create_time()
    except Exception:  # psutil is optional here; the launcher can do without it
        startup["process_created"] = None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runner.start()
        startup["ready"] = time.time()
        yield
        await runner.stop()

    app = FastAPI(
        title="infralab embeddings",
        version="1.0",
        description=f"OpenAI-compatible embeddings from {MODEL_ID} ({served_variant}).",
        lifespan=lifespan,
        # The service's metrics are Prometheus (/metrics). FastAPI's OpenTelemetry hooks,
        # left on, look up their providers on every request: about 25 µs each, measured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.embedder = embedder
    app.state.runner = runner
    app.state.startup = startup
    metrics = ServiceMetrics("embeddings")
    metrics.registry.register(_RunnerCollector(runner.stats))
    app.state.metrics = metrics

    def observe(route: str, method: str, status: int, seconds: float) -> None:
        responses[str(status)] += 1
        metrics.observe(route, method, status, seconds)

    app.add_middleware(FastLane, router=lambda: app.state.embeddings_router)
    app.add_middleware(errors.ServiceGuard, max_body_bytes=max_body_bytes, observe=observe)
    errors.install_error_handlers(app, routes_hint=ROUTES_HINT)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = errors.describe_validation(exc, request)
        json_broken = any(e.get("type") == "json_invalid" for e in exc.errors())
        if status == 400 and not json_broken:  # embeddings wording names 'input' and its forms
            message, param = _describe_validation(exc)
        return _error(status, message, param=param)  # OpenAI answers 400 to malformed requests

    @app.exception_handler(_ClientError)
    async def on_client(request: Request, exc: _ClientError) -> JSONResponse:
        return _error(exc.status, exc.message, param=exc.param)

    router = embeddings_router(
        embedder,
        runner,
        served_variant=served_variant,
        limits=Limits(max_items, max_chars, max_total_tokens),
        batch_settings={
            "max_batch_size": max_batch_size if batching else 1,
            "max_wait_ms": max_wait_ms if batching else 0.0,
            "in_flight": in_flight,
        },
        startup=startup,
        responses=responses,
        metrics=metrics,
    )
    app.include_router(router)
    app.state.embeddings_router = router
    return app


def make_lambda_handler(app: FastAPI | None = None):
    """An AWS Lambda handler (API Gateway HTTP API events) for ``app``.

    Lambda gives each instance one request at a time, so batching has nothing to batch:
    the default app runs one model call per request.
    """
    from mangum import Mangum

    return Mangum(app if app is not None else create_app(batching=False), lifespan="off")


_LAMBDA_HANDLER = None


def lambda_handler(event: dict, context: Any) -> dict:
    """Lambda entry point; the first call builds the app (that is the Lambda cold start)."""
    global _LAMBDA_HANDLER
    if _LAMBDA_HANDLER is None:
        _LAMBDA_HANDLER = make_lambda_handler()
    return _LAMBDA_HANDLER(event, context)


def api_gateway_event(method: str, path: str, body: Any = None) -> dict:
    """A minimal API Gateway HTTP API (payload 2.0) event, as Lambda would receive it."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "example.execute-api.us-east-1.amazonaws.com",
        },
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "infralab",
            },
            "requestId": "local",
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def invoke_locally(handler: Any, event: dict, context: Any = None) -> dict:
    """Call a Lambda handler the way Lambda does: in a thread with an event loop of its own.

    Why: Mangum runs the app on the thread's event loop, and in Jupyter that loop is already
    busy running the notebook.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    def run() -> dict:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            return handler(event, context)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()
