"""One OpenAI-style error model for the kit's three services (embeddings, chat, RAG app).

Why one module: a client (the ``openai`` package, a student's ``httpx`` call, a gateway)
should read every failure the same way, ``{"error": {"message", "type", "param", "code"}}``,
whatever the service and whatever the status. The ``openai`` client shows ``error.message``
in its exception, so every message here says what to change, not only what was wrong.

Also here, because every service needs them before its own code runs:

* :class:`ServiceGuard`, a pure ASGI middleware that bounds the request body while it is
  read (a byte counter, so a chunked body without ``Content-Length`` is bounded too), counts
  and times every answer for ``/metrics`` and turns an unhandled exception into a clean 500;
* :func:`install_error_handlers`, the FastAPI exception handlers that answer validation
  errors (400, as OpenAI does), unknown routes (404), wrong methods (405), wrong content
  types (415) and anything else (500) in that shape.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from infralab.core.errors import InfralabError

log = logging.getLogger("infralab.engines.serving")

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

# OpenAI's ``error.type`` per status (its clients map the status to an exception class).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    """The OpenAI ``error.type`` for an HTTP status."""
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(
    message: str, status: int, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """``{"error": {...}}`` as OpenAI sends it."""
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}


class _AsciiJSON(JSONResponse):
    """JSON with non-ASCII escaped: a lone surrogate echoed in a message cannot break it."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error response in the shared shape."""
    return _AsciiJSON(
        error_body(message, status, param=param, code=code), status_code=status, headers=headers
    )


class APIError(InfralabError):
    """Raise from an endpoint to answer ``status`` with ``message`` (and optional headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.code, self.headers = code, headers


class TextRejected(ValueError, InfralabError):
    """Request text that is not Unicode; a ValueError, so pydantic validators turn it into a 4xx."""

    hint = "Drop the unpaired \\ud800-\\udfff escape: text typed or read from a file never has one."


def check_text(text: str, where: str) -> None:
    """Refuse a lone surrogate (valid JSON, but not Unicode text) with a clear 400."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TextRejected(
            f"{where} contains a lone surrogate (character {exc.start}) and is not valid "
            "Unicode text; send UTF-8 text (pair every \\ud800-\\udfff escape)."
        ) from None


def _is_json(content_type: str) -> bool:
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or main.endswith("+json")


def describe_validation(exc: RequestValidationError, request: Request) -> tuple[int, str, Any]:
    """Pydantic's error list -> (status, one sentence a person can act on, param)."""
    content_type = request.headers.get("content-type", "")
    if content_type and not _is_json(content_type):
        return (
            415,
            f"The Content-Type is {content_type!r}; send the body as JSON with "
            "'Content-Type: application/json'.",
            None,
        )
    errors = exc.errors()
    if not errors:
        return 400, "The request body is not valid; send a JSON object.", None
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        why = ctx.get("error") or first.get("msg", "")
        at = f" at character {loc[0]}" if loc and loc[0].isdigit() else ""
        return (
            400,
            f"The request body is not valid JSON ({why}{at}); send one JSON object.",
            None,
        )
    if not loc:
        if kind in ("missing", "model_attributes_type", "dict_type", "model_type"):
            return 400, "The request body must be a JSON object with the documented fields.", None
        return 400, f"The request body is not valid: {first.get('msg', '')}.", None
    path = ".".join(loc)
    msg = str(first.get("msg", "invalid value"))
    if kind == "missing":
        hint = f"'{path}' is missing: add it to the request body."
    elif kind == "extra_forbidden":
        hint = f"'{path}' is not a field of this request: remove it."
    elif kind.startswith("value_error"):
        hint = f"'{path}': {msg.removeprefix('Value error, ')}"
    else:
        hint = f"'{path}': {msg}; send a value that satisfies this."
    more = len(errors) - 1
    if more:
        hint += f" ({more} more problem{'s' if more > 1 else ''} after fixing this one.)"
    return 400, hint, loc[0]


def install_error_handlers(app: FastAPI, *, routes_hint: str) -> None:
    """Answer every error of ``app`` in the shared shape; ``routes_hint`` lists its routes."""

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = describe_validation(exc, request)
        return error_response(status, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 404 and exc.detail in ("Not Found", None, ""):
            message = f"No route {request.url.path!r}: this service has {routes_hint}."
        elif status == 405:
            message = (
                f"{request.method} is not allowed on {request.url.path!r}: "
                f"this service has {routes_hint}."
            )
        else:
            message = str(exc.detail) if exc.detail else f"HTTP {status}"
        headers = dict(exc.headers) if getattr(exc, "headers", None) else None
        return error_response(status, message, headers=headers)

    @app.exception_handler(APIError)
    async def on_api(request: Request, exc: APIError) -> JSONResponse:
        return error_response(
            exc.status, exc.message, param=exc.param, code=exc.code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def on_any(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return error_response(500, "The server failed while answering; see its log.")


_GONE = object()  # the client disconnected before its body arrived


class ServiceGuard:
    """Pure ASGI middleware: body-size limit, per-route counts and latency, 500 safety net.

    The body is read here, counting bytes as they arrive, up to ``max_body_bytes``; a larger
    body (declared by ``Content-Length`` or found while reading a chunked one) gets 413
    before the app parses anything. Written at the ASGI level because ``@app.middleware``
    costs a noticeable share of a millisecond per request, which a 2-core server feels.
    ``observe(route, method, status, seconds)`` is called once per answered request;
    ``gate(scope)`` runs before the body is read and may answer instead (authentication).
    """

    def __init__(
        self,
        app: Any,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        observe: Callable[[str, str, int, float], None] | None = None,
        gate: Callable[[dict], Any] | None = None,
    ) -> None:
        self.app, self.max_body_bytes, self.observe = app, max_body_bytes, observe
        self.gate = gate

    def _too_large(self, size: str) -> JSONResponse:
        return error_response(
            413,
            f"The request body is {size} bytes; the limit is {self.max_body_bytes:,}. "
            "Send fewer or shorter texts per request.",
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status_seen: list[int] = []

        async def tracking_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_seen.append(int(message["status"]))
            await send(message)

        try:
            early = self.gate(scope) if self.gate is not None else None
            if early is None:
                early = await self._read_body(scope, receive)
            if early is _GONE:
                return  # nobody to answer; counted as 499 below
            if isinstance(early, JSONResponse):
                await early(scope, receive, tracking_send)
            else:
                await self.app(scope, early, tracking_send)
        except Exception:  # a server fault: say so, never leak a traceback
            log.exception("unhandled error on %s", scope.get("path"))
            if not status_seen:
                await error_response(500, "The server failed while answering; see its log.")(
                    scope, receive, tracking_send
                )
        finally:
            if self.observe is not None:
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                status = status_seen[0] if status_seen else 499  # client went away first
                self.observe(path, scope.get("method", ""), status, time.perf_counter() - t0)

    async def _read_body(self, scope: dict, receive: Any) -> Any:
        """The body, counted as it arrives; a replaying ``receive`` or a 413 response."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                size = -1
            if size < 0:
                return error_response(400, "The Content-Length header is not a whole number.")
            if size > self.max_body_bytes:
                return self._too_large(f"{size:,}")
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # gone while sending the body
                return _GONE
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body_bytes:
                return self._too_large(f"more than {self.max_body_bytes:,}")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return replay(chunks, receive)


def replay(chunks: list[bytes], receive: Any) -> Any:
    """A ``receive`` that hands over the body read whole, then the real channel."""
    pending: list[dict] = [{"type": "http.request", "body": b"".join(chunks)}]

    async def replay() -> dict:
        if pending:
            return pending.pop()
        return await receive()

    return replay
