"""Load generator: closed loop (N clients) and open loop (Poisson arrivals), loopback only.

A closed loop is N users who each send the next request when the last one returns: it finds
the throughput a server sustains at that concurrency. An open loop sends at a set rate
whatever the server does, like real independent users: when the server falls behind, latency
grows without bound, which a closed loop hides. Both are bounded in count and time, and
refuse any address that is not this machine.

Works from plain Python and from Jupyter (whose event loop is already running: the load
then runs on a loop of its own in a helper thread).

Size: one module because the closed loop, the open loop and the concurrency sweep share
one request path, one result type and one address guard; a few lines over 500.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "PAYLOADS",
    "TEXTS",
    "closed_loop",
]


MAX_REQUESTS = 200_000
MAX_SECONDS = 600.0
MAX_CONCURRENCY = 1024
COLUMNS = ["i", "client", "start_s", "latency_s", "status", "ok", "error_kind", "bytes"]

# Short, search-query-like texts (about 8-14 tokens each): the load an embeddings API behind
# a search box sees. Written for the kit; the serving benchmark and lesson 08 send them.
TEXTS = [
    "how do I reset my password",
    "serverless functions scale to zero when idle",
    "what does a cold start cost the first user",
    "embedding models turn sentences into vectors",
    "latency percentiles under rising concurrency",
    "the always-on instance bills every hour",
    "micro-batching trades a little wait for throughput",
    "a GPU wins when the batch is large enough",
    "which region is closest to our customers",
    "cheapest way to serve a small model",
    "refund policy for annual plans",
    "monitor p99 latency in production",
    "why is my first request slow",
    "compare per-second and per-hour billing",
    "vector search with a tenant filter",
    "keep an instance warm during office hours",
]
PAYLOADS = [{"input": t} for t in TEXTS]


def check_loopback(url: str) -> str:
    """Return ``url`` if it points at this machine; raise a clear ValueError otherwise."""
    if not isinstance(url, str):
        raise TypeError(
            f"url must be a string like 'http://127.0.0.1:8000/v1/embeddings', got {url!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http URL like 'http://127.0.0.1:8000/v1/embeddings'")
    host = parts.hostname
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            f"refusing to load-test {host!r}: this load generator only targets this machine "
            "(127.0.0.1, ::1 or localhost), so a typo cannot flood somebody else's server."
        )
    return url


@dataclass
class LoadResult:
    """Per-request rows (``df``) and a ``summary``: percentiles, throughput, errors by kind.

    Chart it with ``infralab.presentation.charts.serving.latency_timeline(result.df)`` (charts sit above
    the engines, so the engine does not draw)."""

    df: pd.DataFrame
    summary: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        s = self.summary
        return (
            f"<b>{s['requests']} requests</b>, {s['errors']} errors, "
            f"{s['throughput_rps']:.1f} req/s, p50 {s['p50_ms']:.1f} ms, "
            f"p95 {s['p95_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms"
        )


def summarize(df: pd.DataFrame, wall_s: float) -> dict[str, Any]:
    """Percentiles of successful requests, throughput over the wall time, errors by kind."""
    ok = df[df["ok"]] if len(df) else df
    lat = ok["latency_s"].to_numpy(dtype=float) * 1e3 if len(ok) else np.array([])

    def pct(q: float) -> float:
        return float(np.percentile(lat, q)) if lat.size else float("nan")

    errors = df.loc[~df["ok"], "error_kind"].value_counts().to_dict() if len(df) else {}
    return {
        "requests": int(len(df)),
        "ok": int(len(ok)),
        "errors": int(len(df) - len(ok)),
        "errors_by_kind": {str(k): int(v) for k, v in errors.items()},
        "wall_s": float(wall_s),
        "throughput_rps": float(len(ok) / wall_s) if wall_s > 0 else 0.0,
        "mean_ms": float(lat.mean()) if lat.size else float("nan"),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": float(lat.max()) if lat.size else float("nan"),
    }


class _RawConnection:
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


def _kind(exc: BaseException) -> str:
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


async def _one(client, url: str, body: bytes, i: int, who: int, t0: float) -> dict[str, Any]:
    """One POST through ``client`` (a _RawConnection or an httpx.AsyncClient): one row."""
    start = time.perf_counter()
    row: dict[str, Any] = {"i": i, "client": who, "start_s": start - t0}
    try:
        if isinstance(client, _RawConnection):
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
        row.update(status=0, ok=False, error_kind=_kind(exc), bytes=0)
    row["latency_s"] = time.perf_counter() - start
    return row


class _Clients:
    """Hands out connections: one per virtual client (raw), or one shared httpx client."""

    def __init__(self, url: str, kind: str, timeout_s: float, connections: int) -> None:
        if kind not in ("raw", "httpx"):
            raise ValueError(f"client must be 'raw' or 'httpx', got {kind!r}")
        parts = urlsplit(url)
        self.url, self.kind, self.timeout_s, self.connections = url, kind, timeout_s, connections
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        if parts.scheme == "https" and kind == "raw":
            raise ValueError("the raw client speaks plain http; use client='httpx' for https")
        self._idle: list[_RawConnection] = []
        self._httpx = None

    async def __aenter__(self) -> _Clients:
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
            self._idle.pop() if self._idle else _RawConnection(self.host, self.port, self.timeout_s)
        )

    def give(self, conn) -> None:
        if isinstance(conn, _RawConnection):
            self._idle.append(conn)


def _run(coro_factory):
    """Run a coroutine to completion, also from inside Jupyter's running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="infralab-loadgen", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _check_payloads(payloads: Sequence[Any] | Any) -> list[bytes]:
    """JSON bodies, encoded once up front so the load generator spends its CPU on sending."""
    if isinstance(payloads, dict):
        payloads = [payloads]
    if isinstance(payloads, (str, bytes)) or not isinstance(payloads, Sequence) or not payloads:
        raise ValueError(
            "payloads must be a non-empty list of JSON bodies, e.g. [{'input': 'hello'}]"
        )
    try:
        return [json.dumps(p).encode("utf-8") for p in payloads]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"every payload must be JSON-serialisable: {exc}") from None


def _bounded(name: str, value: float, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or not (low <= value <= high):
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


def _progress(total: int | None, desc: str, show: bool):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="req", leave=False)


def closed_loop(
    url: str,
    payloads: Sequence[Any] | dict,
    concurrency: int,
    *,
    total_requests: int,
    max_seconds: float,
    timeout_s: float = 30.0,
    warmup_requests: int = 0,
    progress: bool = False,
    client: str = "raw",
) -> LoadResult:
    """``concurrency`` clients, each POSTing the next payload as soon as its last one returns.

    Stops after ``total_requests`` requests or ``max_seconds``, whichever comes first.
    ``warmup_requests`` are sent first and left out of the result. ``client``: ``"raw"``
    (a lean HTTP/1.1 client, the default) or ``"httpx"`` (see ``_RawConnection`` for why).
    """
    check_loopback(url)
    bodies = _check_payloads(payloads)
    _bounded("concurrency", concurrency, 1, MAX_CONCURRENCY)
    _bounded("total_requests", total_requests, 1, MAX_REQUESTS)
    _bounded("max_seconds", max_seconds, 0.01, MAX_SECONDS)
    concurrency, total_requests = int(concurrency), int(total_requests)

    async def main() -> tuple[list[dict], float]:
        async with _Clients(url, client, timeout_s, concurrency) as pool:
            conn = pool.take()
            for k in range(warmup_requests):
                await _one(conn, url, bodies[k % len(bodies)], -1, 0, 0.0)
            pool.give(conn)
            counter = itertools.count()
            rows: list[dict] = []
            bar = _progress(total_requests, f"{concurrency} clients", progress)
            t0 = time.perf_counter()
            deadline = t0 + max_seconds

            async def client_loop(who: int) -> None:
                conn = pool.take()  # one connection per user, kept alive
                try:
                    while time.perf_counter() < deadline:
                        i = next(counter)
                        if i >= total_requests:
                            return
                        rows.append(await _one(conn, url, bodies[i % len(bodies)], i, who, t0))
                        if bar is not None:
                            bar.update(1)
                finally:
                    pool.give(conn)

            await asyncio.gather(*(client_loop(w) for w in range(min(concurrency, total_requests))))
            wall = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            return rows, wall

    rows, wall = _run(main)
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("i", ignore_index=True)
    params = {
        "mode": "closed",
        "url": url,
        "concurrency": concurrency,
        "label": f"{concurrency} clients",
    }
    return LoadResult(
        df=df, summary={**summarize(df, wall), "concurrency": concurrency}, params=params
    )


async def _send(pool: _Clients, body: bytes, i: int, t0: float) -> dict[str, Any]:
    conn = pool.take()
    try:
        return await _one(conn, pool.url, body, i, i, t0)
    finally:
        pool.give(conn)


def poisson_arrivals(rate_per_s: float, duration_s: float, seed: int) -> np.ndarray:
    """Send times (s) of a Poisson process: independent users, exponential gaps."""
    _bounded("rate_per_s", rate_per_s, 1e-3, 10_000)
    _bounded("duration_s", duration_s, 0.01, MAX_SECONDS)
    rng = np.random.default_rng(seed)
    expected = rate_per_s * duration_s
    if expected > MAX_REQUESTS:
        raise ValueError(
            f"{rate_per_s:g} req/s for {duration_s:g} s is about {expected:,.0f} requests; "
            f"the limit is {MAX_REQUESTS:,}."
        )
    gaps = rng.exponential(1.0 / rate_per_s, size=int(expected + 10 * np.sqrt(expected) + 10))
    times = np.cumsum(gaps)
    return times[times < duration_s]


def open_loop(
    url: str,
    payloads: Sequence[Any] | dict,
    rate_per_s: float,
    *,
    duration_s: float,
    seed: int = 0,
    timeout_s: float = 30.0,
    max_in_flight: int = 512,
    progress: bool = False,
    client: str = "raw",
) -> LoadResult:
    """Send at Poisson times with mean ``rate_per_s`` for ``duration_s``, whatever the replies.

    A request due while ``max_in_flight`` are still open is not sent and counts as error kind
    ``client_backlog`` (the server has fallen behind the offered load). Requests still open
    ``timeout_s`` after the last send count as ``timeout``. ``client`` as in :func:`closed_loop`.
    """
    check_loopback(url)
    bodies = _check_payloads(payloads)
    _bounded("max_in_flight", max_in_flight, 1, 4096)
    times = poisson_arrivals(rate_per_s, duration_s, seed)

    async def main() -> tuple[list[dict], float]:
        async with _Clients(url, client, timeout_s, max_in_flight) as pool:
            rows: list[dict] = []
            tasks: set[asyncio.Task] = set()
            bar = _progress(len(times), f"{rate_per_s:g} req/s", progress)

            def done(t: asyncio.Task) -> None:
                tasks.discard(t)
                if not t.cancelled():
                    rows.append(t.result())
                if bar is not None:
                    bar.update(1)

            t0 = time.perf_counter()
            for i, due in enumerate(times):
                delay = t0 + due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if len(tasks) >= max_in_flight:
                    rows.append(
                        {"i": i, "client": i, "start_s": float(due), "latency_s": 0.0, "status": 0}
                        | {"ok": False, "error_kind": "client_backlog", "bytes": 0}
                    )
                    continue
                task = asyncio.create_task(_send(pool, bodies[i % len(bodies)], i, t0))
                tasks.add(task)
                task.add_done_callback(done)
            if tasks:
                _, pending = await asyncio.wait(set(tasks), timeout=timeout_s + 5)
                for task in pending:  # past the client timeout: count, do not wait forever
                    task.remove_done_callback(done)
                    task.cancel()
                    rows.append(
                        {"i": -1, "client": -1, "start_s": float("nan"), "latency_s": timeout_s}
                        | {"status": 0, "ok": False, "error_kind": "timeout", "bytes": 0}
                    )
            wall = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            return rows, wall

    rows, wall = _run(main)
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("i", ignore_index=True)
    summary = {**summarize(df, wall), "offered_rps": float(rate_per_s)}
    params = {
        "mode": "open",
        "url": url,
        "rate_per_s": rate_per_s,
        "label": f"{rate_per_s:g} req/s offered",
    }
    return LoadResult(df=df, summary=summary, params=params)


def concurrency_sweep(
    url: str,
    payloads: Sequence[Any] | dict,
    levels: Sequence[int],
    *,
    requests_per_level: int,
    max_seconds_per_level: float,
    progress: bool = True,
) -> pd.DataFrame:
    """One closed loop per concurrency level: a row of summary per level."""
    rows = []
    levels = list(levels)
    iterator = levels
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(levels, desc="concurrency sweep", unit="level", leave=False)
    for level in iterator:
        result = closed_loop(
            url,
            payloads,
            level,
            total_requests=requests_per_level,
            max_seconds=max_seconds_per_level,
            warmup_requests=min(level, 8),
        )
        rows.append({k: v for k, v in result.summary.items() if k != "errors_by_kind"})
    return pd.DataFrame(rows)
