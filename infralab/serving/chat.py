"""OpenAI-compatible chat completions for the kit's small LLM, batched at the decode step.

Why OpenAI's wire format: it is what every client, SDK and gateway already speaks, so the
lesson can point the official ``openai`` package at a laptop and compare the same calls with
a paid API. Why a scheduler thread: a decode step costs nearly the same for one sequence
as for four (it is bound by reading the weights), so requests that arrive while others are
decoding join the running batch between steps (continuous batching) instead of waiting.

Limits are enforced by Pydantic and by the context check, so bad input gets a 4xx with the
reason and never a 500.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 16_000
MAX_TOKENS_LIMIT = 1024
DEFAULT_MAX_TOKENS = 256
MAX_BATCH = 4


class ContentPart(BaseModel):
    """A text part of a message (the list form of ``content`` that newer clients send)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str = Field(max_length=MAX_MESSAGE_CHARS)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] = Field(max_length=MAX_MESSAGE_CHARS)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request that a local model can honour; other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4 or any(not s or len(s) > 64 for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings of at most 64 characters")
        return v

    @field_validator("messages")
    @classmethod
    def _has_content(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and m.text().strip() for m in v):
            raise ValueError("messages need at least one user message with text")
        return v


class _Request:
    """One request in the scheduler: its sequence and the queue its pieces go to."""

    def __init__(self, seq: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.seq = seq
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.cancelled = False
        self.finished = False
        seq.on_piece = lambda piece: self._put(("piece", piece))

    def _put(self, item: tuple[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Scheduler:
    """A thread that admits waiting requests into free rows and runs decode steps."""

    def __init__(self, generator: Any, max_batch: int = MAX_BATCH) -> None:
        self.gen = generator
        self.max_batch = max_batch
        self.waiting: list[_Request] = []
        self.running: list[_Request] = []
        self.cond = threading.Condition()
        self.closed = False
        self.thread: threading.Thread | None = None
        self.steps = 0
        self.batch_sizes: list[int] = []

    def submit(self, req: _Request) -> None:
        with self.cond:
            if self.closed:
                raise RuntimeError("the chat scheduler is shut down")
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._loop, name="chat-scheduler", daemon=True
                )
                self.thread.start()
            self.waiting.append(req)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _finish_done(self) -> None:
        for req in list(self.running):
            if req.seq.done:
                self.running.remove(req)
                req.finished = True
                req._put(("done", self.gen._result(req.seq)))

    def _loop(self) -> None:
        engine = self.gen.engine(self.max_batch)
        while True:
            with self.cond:
                while not self.closed and not self.waiting and not engine.active:
                    self.cond.wait()
                if self.closed:
                    return
                admit = []
                while self.waiting and engine.free:
                    admit.append(self.waiting.pop(0))
            for req in self.running:  # a client that went away frees its row
                if req.cancelled and not req.seq.done:
                    req.seq.finish_reason = "cancelled"
            engine._compact()
            self._finish_done()
            for req in admit:
                self.running.append(req)
                try:
                    engine.admit(req.seq)
                except Exception as exc:  # never leave a client hanging
                    self.running.remove(req)
                    req._put(("error", str(exc)))
            self._finish_done()
            if engine.active:
                self.batch_sizes.append(len(engine.active))
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


def chat_router(generator: Any, *, max_batch: int = MAX_BATCH) -> APIRouter:
    """``POST /v1/chat/completions`` and ``GET /v1/models`` for ``generator``.

    ``router.scheduler.close()`` stops the batching thread (``create_chat_app`` does so at
    shutdown).
    """
    router = APIRouter()
    scheduler = Scheduler(generator, max_batch=max_batch)
    router.scheduler = scheduler  # type: ignore[attr-defined]
    model_id = _model_id(generator)

    @router.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "infralab"}],
        }

    @router.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        if body.model not in (None, "", model_id):
            raise HTTPException(
                404, f"model {body.model!r} not found; this server has {model_id!r}"
            )
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
        try:
            seq = generator._new_seq(
                messages, max_tokens, body.temperature, body.top_p, body.seed, body.stop
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        req = _Request(seq, asyncio.get_running_loop())
        try:
            scheduler.submit(req)
        except RuntimeError as exc:
            raise HTTPException(503, str(exc)) from None
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                _sse(req, cid, created, model_id, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        try:
            while True:
                kind, value = await req.queue.get()
                if kind == "done":
                    break
                if kind == "error":
                    raise HTTPException(503, f"generation failed: {value}")
        finally:
            req.cancelled = not req.finished
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
    req: _Request, cid: str, created: int, model_id: str, include_usage: bool
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
                err = {"error": {"message": f"generation failed: {value}", "type": "server_error"}}
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
        req.cancelled = not req.finished


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}, status
    )


def create_chat_app(
    variant: str = "q4", provider: str = "cpu", threads: int | None = None
) -> FastAPI:
    """A standalone chat service: the router, ``GET /healthz`` and OpenAI-style errors."""
    from infralab.models.generate import Generator

    generator = Generator(variant, provider, threads=threads)
    router = chat_router(generator)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        router.scheduler.close()  # type: ignore[attr-defined]

    app = FastAPI(title="infralab chat", lifespan=lifespan)
    app.include_router(router)
    app.state.generator = generator
    app.state.scheduler = router.scheduler  # type: ignore[attr-defined]

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": _model_id(generator), "provider": generator.device}

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return _error(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(RequestValidationError)  # 400 as OpenAI answers, with the field
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        return _error(400, "; ".join(parts) or "invalid request", "invalid_request_error")

    return app
