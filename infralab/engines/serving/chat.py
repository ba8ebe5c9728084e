"""OpenAI-compatible chat completions for the kit's small LLM, batched at the decode step.

Why OpenAI's wire format: it is what every client, SDK and gateway already speaks, so the
lesson can point the official ``openai`` package at a laptop and compare the same calls with
a paid API. Why a scheduler thread: a decode step costs nearly the same for one sequence
as for four (it is bound by reading the weights), so requests that arrive while others are
decoding join the running batch between steps (continuous batching) instead of waiting.

Requests beyond the batch's free rows wait in a bounded queue, served round-robin across
clients so one busy client cannot starve the others; only a full queue answers 429 with
``Retry-After``. A client that goes away (streaming or not) frees its row at the next step.
Limits are enforced by Pydantic and by the context check, so bad input gets a 4xx with the
reason (in OpenAI's error shape, :mod:`infralab.engines.serving.api_errors`) and never a 500.

Size: the request models, the decode scheduler and the routes share the batch state and its
limits; the split that fits is the one the service hardening set (errors in serving.api_errors,
metrics in serving.metrics).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from infralab.core.errors import InfralabError
from infralab.engines.serving.api_errors import (
    DEFAULT_MAX_BODY_BYTES,
    APIError,
    ServiceGuard,
    check_text,
    install_error_handlers,
)
from infralab.engines.serving.metrics import (
    BATCH_BUCKETS,
    LATENCY_BUCKETS,
    ServiceMetrics,
    metrics_endpoint,
)

MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 16_000
MAX_TOKENS_LIMIT = 1024
DEFAULT_MAX_TOKENS = 256
MAX_BATCH = 4
DEFAULT_MAX_QUEUE = 128  # waiting requests (all clients together) before 429
MAX_QUEUE_ENV = "INFRALAB_CHAT_MAX_QUEUE"
STAT_KEYS = ("submitted", "completed", "rejected", "cancelled_waiting", "cancelled_running")
ROUTES_HINT = "POST /v1/chat/completions, GET /v1/models, GET /healthz and GET /metrics"


class ContentPart(BaseModel):
    """A text part of a message (the list form of ``content`` that newer clients send)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; ``developer`` (newer OpenAI clients) is the ``system`` role."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)

    @model_validator(mode="after")
    def _characters(self) -> ChatMessage:
        text = self.text()
        if len(text) > MAX_MESSAGE_CHARS:
            raise ValueError(
                f"content has {len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,} per "
                "message: shorten it or split it over several messages"
            )
        check_text(text, "content")
        return self


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


TokenCount = Annotated[StrictInt, Field(ge=1, le=MAX_TOKENS_LIMIT)]


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request that a local model can honour; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: TokenCount | None = None
    max_completion_tokens: TokenCount | None = None
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: StrictInt = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: StrictInt | None = None
    user: str | None = Field(default=None, max_length=256)

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4 or any(not s or len(s) > 64 for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings of at most 64 characters")
        for s in stops:
            check_text(s, "stop")
        return v

    @field_validator("messages")
    @classmethod
    def _has_content(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and m.text().strip() for m in v):
            raise ValueError("messages need at least one user message with text")
        return v


class QueueFull(InfralabError):
    """The waiting queue is at its bound: answer 429 with ``Retry-After``."""

    def __init__(self, waiting: int, retry_after_s: int) -> None:
        super().__init__(f"{waiting} requests are waiting")
        self.waiting, self.retry_after_s = waiting, retry_after_s


class DrainRate:
    """How fast the queue drains, measured: completions per second over the last
    ``window_s`` of busy time; ``Retry-After`` is the queue ahead of a new request divided by
    that rate, bounded to [``min_s``, ``max_s``].

    Why measured: the old advice multiplied a mean request time (which, in a burst, grows
    with the time spent queued) by the rounds ahead, and said 1,553 s for a burst that
    drained in 337 s. The rate counts only completions since the server last became busy,
    over the time it has been busy (within the window), so a quiet spell before a burst
    does not flatter it.
    """

    def __init__(
        self,
        window_s: float = 30.0,
        min_s: int = 1,
        max_s: int = 300,
        clock: Any = time.monotonic,
    ) -> None:
        self.window_s, self.min_s, self.max_s, self.clock = window_s, min_s, max_s, clock
        self.done: deque[float] = deque()
        self.busy_since: float | None = None

    def busy(self) -> None:
        """Work arrived: start measuring from now unless already busy."""
        if self.busy_since is None:
            self.busy_since = self.clock()

    def idle(self) -> None:
        """Nothing running or waiting: the next burst measures afresh."""
        self.busy_since = None
        self.done.clear()

    def completed(self) -> None:
        self.done.append(self.clock())
        self._trim(self.done[-1])

    def _trim(self, now: float) -> None:
        start = now - self.window_s
        if self.busy_since is not None:
            start = max(start, self.busy_since)
        while self.done and self.done[0] < start:
            self.done.popleft()

    def per_s(self) -> float | None:
        """Completions per second while busy (within the window), None before the first."""
        now = self.clock()
        self._trim(now)
        if not self.done:
            return None
        start = max(now - self.window_s, self.busy_since if self.busy_since is not None else now)
        span = max(now - start, 1e-3)
        return len(self.done) / span

    def retry_after_s(self, ahead: int, fallback_s: float) -> int:
        """Seconds until ``ahead`` more completions at the measured rate (``fallback_s``
        before any completion), bounded."""
        rate = self.per_s()
        seconds = ahead / rate if rate else fallback_s
        return int(min(self.max_s, max(self.min_s, math.ceil(seconds))))


class _Request:
    """One request in the scheduler: its sequence, its client and the queue its pieces go to."""

    def __init__(
        self, seq: Any, loop: asyncio.AbstractEventLoop, client: str = "", stream: bool = True
    ) -> None:
        self.seq = seq
        self.loop = loop
        self.client = client
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.state = "new"  # new -> waiting -> running -> finished | cancelled
        self.cancelled = False
        self.finished = False
        self.enqueued = 0.0
        if stream:
            seq.on_piece = lambda piece: self._put(("piece", piece))

    def _put(self, item: tuple[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class ChatMetrics:
    """What the chat scheduler reports to Prometheus (no prompt text, only counts and times)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.batch_size = metrics.histogram(
            "infralab_chat_batch_size", "Rows in each decode step.", BATCH_BUCKETS
        )
        self.queue_s = metrics.histogram(
            "infralab_chat_queue_seconds",
            "Time a request waited for a free row.",
            LATENCY_BUCKETS,
        )
        self.ttft_s = metrics.histogram(
            "infralab_chat_time_to_first_token_seconds",
            "Request arrival to first generated token (queue + tokenize + prefill).",
            LATENCY_BUCKETS,
        )
        self.prompt_tokens = metrics.counter(
            "infralab_chat_prompt_tokens", "Prompt tokens of completed requests."
        )
        self.completion_tokens = metrics.counter(
            "infralab_chat_completion_tokens", "Generated tokens of completed requests."
        )
        self.completed = metrics.counter(
            "infralab_chat_completions", "Requests whose generation finished."
        )
        self.rejected = metrics.counter(
            "infralab_chat_rejected", "Requests refused with 429 because the queue was full."
        )
        self.cancelled = metrics.counter(
            "infralab_chat_cancelled",
            "Requests whose client went away, by where they were (waiting or running).",
            ("where",),
        )
        self.waiting = metrics.gauge("infralab_chat_waiting", "Requests waiting for a row.")
        self.running = metrics.gauge("infralab_chat_running", "Requests in the running batch.")


class Scheduler:
    """A thread that admits waiting requests into free rows and runs decode steps.

    Waiting requests sit in one queue per client; admission takes the next request of the
    client served least recently (round-robin across clients), one per free row, re-reading the free rows after each admission. At most
    ``max_queue`` requests wait in all; ``submit`` raises :class:`QueueFull` beyond that.
    """

    def __init__(
        self,
        generator: Any,
        max_batch: int = MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
        metrics: ChatMetrics | None = None,
    ) -> None:
        if not isinstance(max_queue, int) or max_queue < 0:
            raise ValueError(f"max_queue must be a whole number >= 0, got {max_queue!r}")
        self.gen = generator
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.metrics = metrics
        self.queues: dict[str, deque[_Request]] = {}
        self.n_waiting = 0
        self.running: list[_Request] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread: threading.Thread | None = None
        self.steps = 0
        self.batch_sizes: deque[int] = deque(maxlen=10_000)
        self.stats: Counter[str] = Counter()
        self.admitted: deque[str] = deque(maxlen=1000)  # client keys, in admission order
        self._served: dict[str, int] = {}  # client -> ticket of its last admission
        self._ticket = 0
        self._mean_request_s = 2.0  # refined by each finished request (Retry-After fallback)
        self.drain = DrainRate()

    @property
    def waiting(self) -> list[_Request]:
        """The waiting requests, client by client (a snapshot)."""
        with self.cond:
            return [r for q in self.queues.values() for r in q]

    def retry_after_s(self) -> int:
        """When a row frees up for one more request: the requests ahead of it (all waiting,
        plus itself) over the measured drain rate (:class:`DrainRate`), 1-300 s. Before the
        first completion of a burst: mean request time x queued rounds."""
        ahead = self.n_waiting + 1
        fallback = self._mean_request_s * ahead / max(self.max_batch, 1)
        return self.drain.retry_after_s(ahead, fallback)

    def submit(self, req: _Request) -> None:
        with self.cond:
            if self.closed:
                raise RuntimeError("the chat scheduler is shut down")
            if self.n_waiting >= self.max_queue:
                self.stats["rejected"] += 1
                if self.metrics:
                    self.metrics.rejected.inc()
                raise QueueFull(self.n_waiting, self.retry_after_s())
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._loop, name="chat-scheduler", daemon=True
                )
                self.thread.start()
            req.state, req.enqueued = "waiting", time.perf_counter()
            self.drain.busy()
            self.queues.setdefault(req.client, deque()).append(req)
            self.n_waiting += 1
            self.stats["submitted"] += 1
            self._gauges()
            self.cond.notify()

    def cancel(self, req: _Request) -> None:
        """The client went away: drop a waiting request now, a running one at the next step."""
        with self.cond:
            if req.finished or req.cancelled:
                return
            req.cancelled = True
            if req.state == "waiting":
                queue = self.queues.get(req.client)
                if queue is not None and req in queue:
                    queue.remove(req)
                    self.n_waiting -= 1
                    if not queue:
                        del self.queues[req.client]
                req.state = "cancelled"
                self.stats["cancelled_waiting"] += 1
                if self.metrics:
                    self.metrics.cancelled.labels("waiting").inc()
                self._gauges()
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _gauges(self) -> None:
        if self.metrics:
            self.metrics.waiting.set(self.n_waiting)
            self.metrics.running.set(len(self.running))

    def _next(self) -> _Request:
        """The head of the queue of the client served least recently (never served first)."""
        client = min(self.queues, key=lambda c: self._served.get(c, -1))
        queue = self.queues[client]
        req = queue.popleft()
        req.state = "running"  # under the lock: a cancel from now on stops it at a step
        if not queue:
            del self.queues[client]
        self.n_waiting -= 1
        self._ticket += 1
        self._served[client] = self._ticket
        if len(self._served) > 10_000:  # forget clients with nothing waiting
            self._served = {c: t for c, t in self._served.items() if c in self.queues}
        return req

    def _finish_done(self) -> None:
        for req in list(self.running):
            if not req.seq.done:
                continue
            self.running.remove(req)
            if req.seq.finish_reason == "cancelled":
                req.state = "cancelled"
                self.stats["cancelled_running"] += 1
                if self.metrics:
                    self.metrics.cancelled.labels("running").inc()
                continue
            req.finished, req.state = True, "finished"
            result = self.gen._result(req.seq)
            self.stats["completed"] += 1
            self._mean_request_s = 0.8 * self._mean_request_s + 0.2 * max(result.total_s, 0.0)
            with self.cond:
                self.drain.completed()
            if self.metrics:
                self.metrics.completed.inc()
                self.metrics.prompt_tokens.inc(result.prompt_tokens)
                self.metrics.completion_tokens.inc(result.completion_tokens)
                if result.completion_tokens:
                    self.metrics.ttft_s.observe(max(result.ttft_s, 0.0))
            req._put(("done", result))
        with self.cond:
            if not self.running and not self.n_waiting:
                self.drain.idle()
        self._gauges()

    def _fail_all(self, message: str) -> None:
        with self.cond:
            waiting = [r for q in self.queues.values() for r in q]
            self.queues.clear()
            self.n_waiting = 0
        for req in [*self.running, *waiting]:
            req._put(("error", message))
        self.running.clear()
        self._gauges()

    def _loop(self) -> None:
        engine = self.gen.engine(self.max_batch)
        while True:
            with self.cond:
                while not self.closed and not self.n_waiting and not engine.active:
                    self.cond.wait()
                if self.closed:
                    break
            for req in self.running:  # a client that went away frees its row
                if req.cancelled and not req.seq.done:
                    req.seq.finish_reason = "cancelled"
            engine._compact()
            self._finish_done()
            admit = []
            with self.cond:  # one request per free row, the free rows counted per admission
                while self.n_waiting and len(admit) < engine.free:
                    admit.append(self._next())
            for req in admit:
                self.admitted.append(req.client)
                if self.metrics:
                    self.metrics.queue_s.observe(time.perf_counter() - req.enqueued)
                self.running.append(req)
                try:
                    engine.admit(req.seq)
                except Exception as exc:  # never leave a client hanging
                    self.running.remove(req)
                    req._put(("error", str(exc)))
            self._finish_done()
            self._gauges()
            if engine.active:
                self.batch_sizes.append(len(engine.active))
                if self.metrics:
                    self.metrics.batch_size.observe(len(engine.active))
                try:
                    engine.step()
                except Exception as exc:
                    for req in self.running:
                        req._put(("error", str(exc)))
                    self.running.clear()
                    engine = self.gen.engine(self.max_batch)
                    continue
                self.steps += 1
            self._finish_done()
        self._fail_all("the chat server is shutting down; retry in a moment")


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

    async def wait_for_result(req: _Request, request: Request) -> Any:
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

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        if body.model not in (None, "", model_id):
            raise APIError(
                404,
                f"model {body.model!r} not found; this server has {model_id!r} "
                "(GET /v1/models lists it)",
                param="model",
                code="model_not_found",
            )
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
        req = _Request(seq, asyncio.get_running_loop(), client_key(request), stream=body.stream)
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
        except RuntimeError as exc:
            raise APIError(503, f"{exc}; retry in a moment") from None
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                _sse(scheduler, req, cid, created, model_id, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        value = await wait_for_result(req, request)
        if value is None:  # nobody is listening; the status is only logged
            raise APIError(499, "the client closed the connection")
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

    return router


async def _sse(
    scheduler: Scheduler,
    req: _Request,
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
