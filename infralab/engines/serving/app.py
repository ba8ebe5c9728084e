"""The embeddings service as one app: an OpenAI-compatible ``POST /v1/embeddings`` on FastAPI.

One app object serves three ways: as a uvicorn process (``launcher``), in-process in tests
(``TestClient``), and on AWS Lambda behind API Gateway (``lambda_handler``, through Mangum).
Every input a client can send gets a 2xx or a 4xx whose ``error.message`` says what was
wrong; a 5xx only ever means the server itself failed.

The app records when it was imported, when its heavy imports finished and when the model
was loaded, and ``GET /healthz`` reports those times, so a launcher can split a cold start
into process spawn, imports, model load and first response.

Here: :func:`create_app`, which builds the embedder and the runner and wires middleware,
state, error handlers and the router; the fast lane; the Lambda entry points. The contract
with the client (request model, limits, response encodings, routes) is
:mod:`infralab.engines.serving.embeddings_api`, whose names are importable from here too.
"""

from __future__ import annotations

import time

_MODULE_T0 = time.time()  # first line that runs: the end of "process spawn" for a cold start

import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
from collections import Counter  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from typing import Any  # noqa: E402

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from pydantic import ValidationError  # noqa: E402

from infralab.core.errors import InfralabError  # noqa: E402
from infralab.engines.models.standin import HashEmbedder  # noqa: E402, F401 - the stand-in, served here
from infralab.engines.serving import api_errors  # noqa: E402
from infralab.engines.serving.batching import MicroBatcher, NaiveRunner, RunnerStats  # noqa: E402
from infralab.engines.serving.embeddings_api import (  # noqa: E402, F401 - the contract, re-exported
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_TOTAL_TOKENS,
    DIM,
    MODEL_ID,
    ROUTES_HINT,
    EmbedderLike,
    EmbeddingRequest,
    Limits,
    _ClientError,
    _describe_validation,
    _error,
    dumps,
    embeddings_router,
    encode_vectors,
)
from infralab.engines.serving.metrics import BATCH_BUCKETS, ServiceMetrics  # noqa: E402

log = logging.getLogger("infralab.engines.serving")

DEFAULT_MAX_BODY_BYTES = api_errors.DEFAULT_MAX_BODY_BYTES
EMBEDDER_ENV = (
    "INFRALAB_EMBEDDER"  # "onnx" (default) or "hash": which embedder a bare factory builds
)


class AppSettingError(ValueError, InfralabError):
    """``create_app`` got a setting it cannot serve with (checked before any model loads)."""

    hint = "Limits are whole numbers >= 1; create_app's docstring lists each one."

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class EmbedderUnavailable(RuntimeError, InfralabError):
    """The ONNX embedder could not be imported in this environment."""

    hint = (
        "`python -m infralab doctor` says what is missing; create_app(embedder='hash') serves "
        "without a model meanwhile."
    )


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
            await self.app(scope, api_errors.replay([body], receive), send)
            return
        scope["route"] = self._route  # the metrics label, as the router would set it
        await response(scope, receive, send)


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
    _check_limits(max_items, max_chars, max_total_tokens, max_batch_size)
    embedder, served_variant, imports_done, model_loaded, in_flight = _make_embedder(
        embedder, variant, threads, batch_size, in_flight, factory_t0
    )
    if warmup:  # the first call pays for allocations: keep that out of the first request
        embedder.embed(["warm-up"])
    warmed = time.time()

    in_flight = 1 if in_flight is None else in_flight
    runner = _make_runner(embedder, batching, max_batch_size, max_wait_ms, in_flight)
    startup = _startup_record(factory_t0, imports_done, model_loaded, warmed)
    app, responses = _wire_app(embedder, runner, startup, served_variant, max_body_bytes)
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
        metrics=app.state.metrics,
    )
    app.include_router(router)
    app.state.embeddings_router = router
    return app


def _check_limits(max_items: Any, max_chars: Any, max_total_tokens: Any, max_batch_size: Any):
    """Refuse a limit that is not a whole number >= 1 (ValueError naming it)."""
    for name, value in (
        ("max_items", max_items),
        ("max_chars", max_chars),
        ("max_total_tokens", max_total_tokens),
        ("max_batch_size", max_batch_size),
    ):
        if not isinstance(value, int) or value < 1:
            raise AppSettingError(f"{name} must be a whole number >= 1, got {value!r}")


def _make_embedder(
    embedder: EmbedderLike | str | None,
    variant: str,
    threads: int | None,
    batch_size: int,
    in_flight: int | None,
    factory_t0: float,
) -> tuple[Any, str, float, float, int | None]:
    """The embedder create_app serves, with its variant, its start-up times and in_flight.

    Returns (embedder, served_variant, imports_done, model_loaded, in_flight).
    """
    if embedder is None:
        embedder = os.environ.get(EMBEDDER_ENV, "onnx").strip().lower() or "onnx"
    if not isinstance(embedder, str):
        served_variant = getattr(embedder, "variant", "custom")
        return embedder, served_variant, factory_t0, factory_t0, in_flight
    if embedder == "hash":
        done = time.time()
        return HashEmbedder(), "hash", done, done, in_flight
    if embedder != "onnx":
        raise AppSettingError(
            f"embedder must be an object, 'onnx' or 'hash', got {embedder!r}",
            "Pass 'onnx' (the real model), 'hash' (the model-free stand-in) or an object with "
            "embed(texts) and count_tokens(texts).",
        )
    try:
        from infralab.engines.models.encoder import Embedder
    except ImportError as exc:
        raise EmbedderUnavailable(
            "The ONNX embedder (infralab.engines.models.encoder) could not be imported: "
            f"{exc}. Use create_app(embedder='hash') to serve without a model."
        ) from exc
    from infralab.core.runtime import physical_cores

    imports_done = time.time()
    if in_flight is None:  # one single-threaded call per core, batches side by side
        in_flight = physical_cores() if threads is None else 1
    # Spinning off on purpose: ORT's idle threads would otherwise busy-wait and take
    # CPU from the event loop that accepts and answers requests (2 cores here).
    onnx_embedder = Embedder(
        variant=variant,
        provider="cpu",
        batch_size=batch_size,
        threads=1 if threads is None else threads,
        workers=1,
        spinning=False,
    )
    return onnx_embedder, variant, imports_done, time.time(), in_flight


def _make_runner(
    embedder: Any, batching: bool, max_batch_size: int, max_wait_ms: float, in_flight: int
) -> MicroBatcher | NaiveRunner:
    """The micro-batcher, or one model call per request when ``batching`` is off."""
    if batching:
        return MicroBatcher(
            embedder.embed,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            in_flight=in_flight,
        )
    return NaiveRunner(embedder.embed, in_flight=in_flight)


def _startup_record(
    factory_t0: float, imports_done: float, model_loaded: float, warmed: float
) -> dict[str, Any]:
    """When each start-up step finished (``GET /healthz``); ``ready`` is set by the lifespan."""
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
    return startup


def _wire_app(
    embedder: Any,
    runner: MicroBatcher | NaiveRunner,
    startup: dict[str, Any],
    served_variant: str,
    max_body_bytes: int,
) -> tuple[FastAPI, Counter]:
    """The FastAPI app: lifespan, state, metrics, middleware and error handlers (no routes).

    Returns the app and the counter of responses by status that the middleware fills.
    """

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
    responses: Counter = Counter()

    def observe(route: str, method: str, status: int, seconds: float) -> None:
        responses[str(status)] += 1
        metrics.observe(route, method, status, seconds)

    app.add_middleware(FastLane, router=lambda: app.state.embeddings_router)
    app.add_middleware(api_errors.ServiceGuard, max_body_bytes=max_body_bytes, observe=observe)
    _install_error_handlers(app)
    return app, responses


def _install_error_handlers(app: FastAPI) -> None:
    """The shared handlers, then the embeddings wording for a bad body and a refused request."""
    api_errors.install_error_handlers(app, routes_hint=ROUTES_HINT)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = api_errors.describe_validation(exc, request)
        json_broken = any(e.get("type") == "json_invalid" for e in exc.errors())
        if status == 400 and not json_broken:  # embeddings wording names 'input' and its forms
            message, param = _describe_validation(exc)
        return _error(status, message, param=param)  # OpenAI answers 400 to malformed requests

    @app.exception_handler(_ClientError)
    async def on_client(request: Request, exc: _ClientError) -> JSONResponse:
        return _error(exc.status, exc.message, param=exc.param)


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
