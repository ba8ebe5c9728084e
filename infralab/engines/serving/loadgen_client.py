"""The load generator's HTTP side: a lean keep-alive client, a pool, one timed request.

Why a module of its own: what a load test measures must be the server, not the client, so
the client is built for low CPU per request (:class:`RawConnection`), and a failed request
becomes a row of data with its kind (:func:`error_kind`), never a crash of the test. The
shapes of load (closed loop, open loop, sweep) are :mod:`infralab.engines.serving.loadgen`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from infralab.core.errors import InfralabError


class LoadTestError(ValueError, InfralabError):
    """A load test asked for something it cannot do safely (checked before any request)."""

    hint = "Read the message: it names the argument and the range it must be in."

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client connection on asyncio streams.

    Why not only httpx: on a 2-core machine httpx spends about 3 ms of CPU per request
    (measured here), three times what the server spends, so the load generator rather than
    the server would set the throughput. This client spends a small fraction of that. It
    speaks just enough HTTP/1.1 for JSON APIs: Content-Length or chunked bodies.
    """

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except Exception:
                pass
        self.reader = self.writer = None

    async def _exchange(self, request: bytes) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip().lower()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
            size = len(body)
        elif headers.get("transfer-encoding") == "chunked":
            size = 0
            while True:
                chunk_len = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if chunk_len == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                size += len(await self.reader.readexactly(chunk_len + 2)) - 2
        else:
            size = len(await self.reader.read())
            headers["connection"] = "close"
        if headers.get("connection") == "close":
            await self.close()
        return status, size

    # Servers close idle keep-alive connections (uvicorn after 5 s): reopen before that, so a
    # quiet spell in an open loop does not show up as dropped connections.
    IDLE_REOPEN_S = 2.0

    async def post(self, path: str, body: bytes) -> tuple[int, int]:
        now = time.monotonic()
        if self.writer is not None and now - self.last_used > self.IDLE_REOPEN_S:
            await self.close()
        self.last_used = now
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        try:
            return await asyncio.wait_for(self._exchange(request), self.timeout_s)
        except BaseException:
            await self.close()  # the stream is in an unknown state: start afresh next time
            raise


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connect"
    if isinstance(exc, (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError)):
        return "connection_dropped"
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "connection_dropped"
    return type(exc).__name__


async def timed_post(client, url: str, body: bytes, i: int, who: int, t0: float) -> dict[str, Any]:
    """One POST through ``client`` (a RawConnection or an httpx.AsyncClient): one row."""
    start = time.perf_counter()
    row: dict[str, Any] = {"i": i, "client": who, "start_s": start - t0}
    try:
        if isinstance(client, RawConnection):
            status, size = await client.post(urlsplit(url).path or "/", body)
        else:
            r = await client.post(url, content=body, headers={"content-type": "application/json"})
            status, size = r.status_code, len(await r.aread())
        row.update(
            status=status,
            ok=status < 400,
            error_kind=None if status < 400 else f"http_{status}",
            bytes=size,
        )
    except Exception as exc:  # a failed request is data, not a crash of the test
        row.update(status=0, ok=False, error_kind=error_kind(exc), bytes=0)
    row["latency_s"] = time.perf_counter() - start
    return row


class ClientPool:
    """Hands out connections: one per virtual client (raw), or one shared httpx client."""

    def __init__(self, url: str, kind: str, timeout_s: float, connections: int) -> None:
        if kind not in ("raw", "httpx"):
            raise LoadTestError(
                f"client must be 'raw' or 'httpx', got {kind!r}",
                hint="Leave client='raw' (the lean client) unless you need httpx, e.g. for https.",
            )
        parts = urlsplit(url)
        self.url, self.kind, self.timeout_s, self.connections = url, kind, timeout_s, connections
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        if parts.scheme == "https" and kind == "raw":
            raise LoadTestError(
                "the raw client speaks plain http; use client='httpx' for https",
                hint="Pass client='httpx' to load-test an https URL.",
            )
        self._idle: list[RawConnection] = []
        self._httpx = None

    async def __aenter__(self) -> ClientPool:
        if self.kind == "httpx":
            import httpx

            limits = httpx.Limits(
                max_connections=self.connections, max_keepalive_connections=self.connections
            )
            self._httpx = httpx.AsyncClient(limits=limits, timeout=self.timeout_s, trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._httpx is not None:
            await self._httpx.aclose()
        for conn in self._idle:
            await conn.close()
        self._idle.clear()

    def take(self):
        if self._httpx is not None:
            return self._httpx
        return (
            self._idle.pop() if self._idle else RawConnection(self.host, self.port, self.timeout_s)
        )

    def give(self, conn) -> None:
        if isinstance(conn, RawConnection):
            self._idle.append(conn)
