"""OpenAI-compatible chat completions for the kit's small LLM, batched at the decode step.

Why OpenAI's wire format: it is what every client, SDK and gateway already speaks, so the
lesson can point the official ``openai`` package at a laptop and compare the same calls with
a paid API. Why a scheduler thread: a decode step costs nearly the same for one sequence
as for four (it is bound by reading the weights), so requests that arrive while others are
decoding join the running batch between steps (continuous batching) instead of waiting.

The pieces: the request models (OpenAI's shape, the kit's limits) are
:mod:`infralab.engines.serving.chat_requests`; the decode scheduler (continuous batching, a bounded
queue served round-robin across clients, ``Retry-After`` from the measured drain rate) is
:mod:`infralab.engines.serving.chat_scheduler`; here are the routes, the streaming and the app.
A full queue answers 429 with ``Retry-After``; a client that goes away (streaming or not)
frees its row at the next step. Limits are enforced by Pydantic and by the context check, so
bad input gets a 4xx with the reason (in OpenAI's error shape,
:mod:`infralab.engines.serving.api_errors`) and never a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse

from infralab.engines.serving.api_errors import (
    DEFAULT_MAX_BODY_BYTES,
    APIError,
    ServiceGuard,
    install_error_handlers,
)
from infralab.engines.serving.chat_requests import DEFAULT_MAX_TOKENS, ChatCompletionRequest
from infralab.engines.serving.chat_scheduler import (
    DEFAULT_MAX_QUEUE,
    MAX_BATCH,
    STAT_KEYS,
    ChatMetrics,
    QueueFull,
    ScheduledRequest,
    Scheduler,
)
from infralab.engines.serving.metrics import ServiceMetrics, metrics_endpoint

MAX_QUEUE_ENV = "INFRALAB_CHAT_MAX_QUEUE"
ROUTES_HINT = "POST /v1/chat/completions, GET /v1/models, GET /healthz and GET /metrics"


def _model_id(generator: Any) -> str:
    return f"smollm2-135m-instruct-{generator.model_variant}"


def _usage(result: Any) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def _metrics(result: Any) -> dict[str, Any]:
    """Non-standard timings (clients ignore unknown fields): what the lesson prices."""
    return {
        "ttft_s": result.ttft_s,
        "prefill_tok_s": result.prefill_tok_s,
        "decode_tok_s": None if result.decode_tok_s != result.decode_tok_s else result.decode_tok_s,
        "kv_cache_bytes": result.kv_cache_bytes,
        "provider": result.provider,
    }


def client_key(request: Request) -> str:
    """Who a request is from, for fair queueing: address plus a digest of its API key."""
    host = request.client.host if request.client else "?"
    auth = request.headers.get("authorization", "")
    digest = hashlib.sha256(auth.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{host}|{digest}"


async def _disconnected(request: Request) -> None:
    """Return once the client has gone away (the ASGI server says ``http.disconnect``)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def chat_router(
    generator: Any,
    *,
    max_batch: int = MAX_BATCH,
    max_queue: int = DEFAULT_MAX_QUEUE,
    metrics: ServiceMetrics | None = None,
) -> APIRouter:
    """``POST /v1/chat/completions`` and ``GET /v1/models`` for ``generator``.

    ``router.scheduler.close()`` stops the batching thread (``create_chat_app`` does so at
    shutdown).
    """
    router = APIRouter()
    scheduler = Scheduler(
        generator,
        max_batch=max_batch,
        max_queue=max_queue,
        metrics=ChatMetrics(metrics) if metrics is not None else None,
    )
    router.scheduler = scheduler  # type: ignore[attr-defined]
    model_id = _model_id(generator)

    @router.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "infralab"}],
        }

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        _check_model(body, model_id)
        req = _submit(scheduler, generator, body, request)
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                _sse(scheduler, req, cid, created, model_id, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        value = await _wait_for_result(scheduler, req, request)
        if value is None:  # nobody is listening; the status is only logged
            raise APIError(499, "the client closed the connection")
        return _completion(cid, created, model_id, value)

    return router


def _check_model(body: ChatCompletionRequest, model_id: str) -> None:
    """404 for a model this server does not have (none, or an empty name, means its own)."""
    if body.model not in (None, "", model_id):
        raise APIError(
            404,
            f"model {body.model!r} not found; this server has {model_id!r} "
            "(GET /v1/models lists it)",
            param="model",
            code="model_not_found",
        )


def _submit(
    scheduler: Scheduler, generator: Any, body: ChatCompletionRequest, request: Request
) -> ScheduledRequest:
    """Tokenize the conversation and queue it: 400 when it does not fit the context, 429
    (with ``Retry-After``) when the queue is full, 503 when the scheduler is shut down."""
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in body.messages
    ]
    max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
    try:
        seq = generator._new_seq(
            messages, max_tokens, body.temperature, body.top_p, body.seed, body.stop
        )
    except ValueError as exc:
        raise APIError(400, str(exc), param="messages") from None
    req = ScheduledRequest(seq, asyncio.get_running_loop(), client_key(request), stream=body.stream)
    try:
        scheduler.submit(req)
    except QueueFull as exc:
        raise APIError(
            429,
            f"The server is busy: {exc.waiting} requests are already waiting (the queue "
            f"holds {scheduler.max_queue}). Retry after {exc.retry_after_s} s.",
            code="queue_full",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except RuntimeError as exc:  # SchedulerClosed, or no thread could start
        raise APIError(503, f"{exc}; retry in a moment") from None
    return req


async def _wait_for_result(scheduler: Scheduler, req: ScheduledRequest, request: Request) -> Any:
    """The finished result, or None when the client went away first (then cancelled)."""
    gone = asyncio.ensure_future(_disconnected(request))
    get = asyncio.ensure_future(req.queue.get())
    try:
        while True:
            done, _ = await asyncio.wait({get, gone}, return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                kind, value = get.result()
                if kind == "done":
                    return value
                if kind == "error":
                    raise APIError(503, f"generation failed: {value}; retry the request")
                get = asyncio.ensure_future(req.queue.get())
            else:
                return None
    finally:
        get.cancel()
        gone.cancel()
        if not req.finished:
            scheduler.cancel(req)


def _completion(cid: str, created: int, model_id: str, value: Any) -> dict[str, Any]:
    """The non-streaming answer in OpenAI's ``chat.completion`` shape, plus the kit's timings."""
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model_id,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": value.text},
                "finish_reason": value.finish_reason,
            }
        ],
        "usage": _usage(value),
        "infralab": _metrics(value),
    }


async def _sse(
    scheduler: Scheduler,
    req: ScheduledRequest,
    cid: str,
    created: int,
    model_id: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Server-sent events in OpenAI's chunk format, ending with ``data: [DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        while True:
            kind, value = await req.queue.get()
            if kind == "piece":
                yield chunk({"content": value})
            elif kind == "error":
                err = {"error": {"message": f"generation failed: {value}; retry the request",
                                 "type": "server_error", "param": None, "code": None}}  # fmt: skip
                yield f"data: {json.dumps(err)}\n\n"
                break
            else:
                yield chunk({}, value.finish_reason, infralab=_metrics(value))
                if include_usage:
                    usage = {"id": cid, "object": "chat.completion.chunk", "created": created,
                             "model": model_id, "choices": [], "usage": _usage(value)}  # fmt: skip
                    yield f"data: {json.dumps(usage)}\n\n"
                break
        yield "data: [DONE]\n\n"
    finally:
        if not req.finished:
            scheduler.cancel(req)


def create_chat_app(
    variant: str = "q4",
    provider: str = "cpu",
    threads: int | None = None,
    *,
    generator: Any = None,
    max_batch: int = MAX_BATCH,
    max_queue: int | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """A standalone chat service: the router, ``GET /healthz``, ``GET /metrics``, errors.

    ``generator``: a prebuilt :class:`~infralab.engines.models.text_generation.Generator` (tests share one);
    ``max_queue``: waiting requests before 429 (else ``INFRALAB_CHAT_MAX_QUEUE`` or 128).
    """
    if generator is None:
        from infralab.engines.models.text_generation import Generator

        generator = Generator(variant, provider, threads=threads)
    if max_queue is None:
        max_queue = int(os.environ.get(MAX_QUEUE_ENV, DEFAULT_MAX_QUEUE))
    metrics = ServiceMetrics("chat")
    router = chat_router(generator, max_batch=max_batch, max_queue=max_queue, metrics=metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        router.scheduler.close()  # type: ignore[attr-defined]

    app = FastAPI(title="infralab chat", lifespan=lifespan)
    app.include_router(router)
    app.state.generator = generator
    app.state.scheduler = router.scheduler  # type: ignore[attr-defined]
    app.state.metrics = metrics
    app.add_middleware(ServiceGuard, max_body_bytes=max_body_bytes, observe=metrics.observe)
    install_error_handlers(app, routes_hint=ROUTES_HINT)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": _model_id(generator), "provider": generator.device}

    def summary() -> dict[str, Any]:
        sched = router.scheduler  # type: ignore[attr-defined]
        sizes = list(sched.batch_sizes)
        return {
            "max_batch": sched.max_batch,
            "max_queue": sched.max_queue,
            "waiting": sched.n_waiting,
            "running": len(sched.running),
            "decode_steps": sched.steps,
            "mean_batch_size": sum(sizes) / len(sizes) if sizes else 0.0,
            **{k: int(sched.stats[k]) for k in STAT_KEYS},
            "prometheus": metrics.as_dict(),
        }

    app.add_api_route("/metrics", metrics_endpoint(metrics, summary), methods=["GET"])
    return app
