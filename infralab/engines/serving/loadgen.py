"""Load generator: closed loop (N clients) and open loop (Poisson arrivals), loopback only.

A closed loop is N users who each send the next request when the last one returns: it finds
the throughput a server sustains at that concurrency. An open loop sends at a set rate
whatever the server does, like real independent users: when the server falls behind, latency
grows without bound, which a closed loop hides. Both are bounded in count and time, and
refuse any address that is not this machine.

Works from plain Python and from Jupyter (whose event loop is already running: the load
then runs on a loop of its own in a helper thread).

The closed loop, the open loop and the concurrency sweep share one result type and one
address guard here; the HTTP client they send with (a lean keep-alive connection, the pool,
one timed request as one row) is :mod:`infralab.engines.serving.loadgen_client`.
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

from infralab.core.errors import InfralabError
from infralab.engines.serving.loadgen_client import ClientPool, LoadTestError, timed_post

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


URL_HINT = "Point it at a server on this machine, e.g. f'{server.url}/v1/embeddings'."


class LoadTargetTypeError(TypeError, InfralabError):
    """The load test's target is not a URL string."""

    hint = URL_HINT


def check_loopback(url: str) -> str:
    """Return ``url`` if it points at this machine; raise a clear ValueError otherwise."""
    if not isinstance(url, str):
        raise LoadTargetTypeError(
            f"url must be a string like 'http://127.0.0.1:8000/v1/embeddings', got {url!r}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(
            f"{url!r} is not an http URL like 'http://127.0.0.1:8000/v1/embeddings'", URL_HINT
        )
    host = parts.hostname
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise LoadTestError(
            f"refusing to load-test {host!r}: this load generator only targets this machine "
            "(127.0.0.1, ::1 or localhost), so a typo cannot flood somebody else's server.",
            "Start the server here (`launch(...)` or `serve_in_thread(...)`) and use its url.",
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
        raise LoadTestError(
            "payloads must be a non-empty list of JSON bodies, e.g. [{'input': 'hello'}]",
            "Pass a list of request bodies (dicts); the kit's PAYLOADS is one.",
        )
    try:
        return [json.dumps(p).encode("utf-8") for p in payloads]
    except (TypeError, ValueError) as exc:
        raise LoadTestError(
            f"every payload must be JSON-serialisable: {exc}",
            "Use plain values in the bodies (str, numbers, lists, dicts), not objects.",
        ) from None


def _bounded(name: str, value: float, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or not (low <= value <= high):
        raise LoadTestError(
            f"{name} must be between {low:g} and {high:g}, got {value!r}",
            f"The bounds keep a load test finite on a shared machine: pick {name} inside them.",
        )


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
    (a lean HTTP/1.1 client, the default) or ``"httpx"`` (see
    :class:`~infralab.engines.serving.loadgen_client.RawConnection` for why).
    """
    check_loopback(url)
    bodies = _check_payloads(payloads)
    _bounded("concurrency", concurrency, 1, MAX_CONCURRENCY)
    _bounded("total_requests", total_requests, 1, MAX_REQUESTS)
    _bounded("max_seconds", max_seconds, 0.01, MAX_SECONDS)
    concurrency, total_requests = int(concurrency), int(total_requests)

    rows, wall = _run(
        lambda: _closed_loop_rows(
            url, bodies, concurrency, total_requests, max_seconds, timeout_s, warmup_requests,
            progress, client,
        )
    )  # fmt: skip
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


async def _closed_loop_rows(
    url: str,
    bodies: list[bytes],
    concurrency: int,
    total_requests: int,
    max_seconds: float,
    timeout_s: float,
    warmup_requests: int,
    progress: bool,
    client: str,
) -> tuple[list[dict], float]:
    """The closed loop's rows and wall time: the warm-up first, then ``concurrency`` users
    who each send the next request when their last one returns."""
    async with ClientPool(url, client, timeout_s, concurrency) as pool:
        conn = pool.take()
        for k in range(warmup_requests):
            await timed_post(conn, url, bodies[k % len(bodies)], -1, 0, 0.0)
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
                    rows.append(await timed_post(conn, url, bodies[i % len(bodies)], i, who, t0))
                    if bar is not None:
                        bar.update(1)
            finally:
                pool.give(conn)

        await asyncio.gather(*(client_loop(w) for w in range(min(concurrency, total_requests))))
        wall = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        return rows, wall


async def _send(pool: ClientPool, body: bytes, i: int, t0: float) -> dict[str, Any]:
    conn = pool.take()
    try:
        return await timed_post(conn, pool.url, body, i, i, t0)
    finally:
        pool.give(conn)


def poisson_arrivals(rate_per_s: float, duration_s: float, seed: int) -> np.ndarray:
    """Send times (s) of a Poisson process: independent users, exponential gaps."""
    _bounded("rate_per_s", rate_per_s, 1e-3, 10_000)
    _bounded("duration_s", duration_s, 0.01, MAX_SECONDS)
    rng = np.random.default_rng(seed)
    expected = rate_per_s * duration_s
    if expected > MAX_REQUESTS:
        raise LoadTestError(
            f"{rate_per_s:g} req/s for {duration_s:g} s is about {expected:,.0f} requests; "
            f"the limit is {MAX_REQUESTS:,}.",
            "Lower the rate or the duration.",
        )
    gaps = rng.exponential(1.0 / rate_per_s, size=int(expected + 10 * np.sqrt(expected) + 10))
    times = np.cumsum(gaps)
    return times[times < duration_s]


async def _open_loop_rows(
    url: str,
    bodies: list[bytes],
    times: np.ndarray,
    label: str,
    timeout_s: float,
    max_in_flight: int,
    progress: bool,
    client: str,
) -> tuple[list[dict], float]:
    """The open loop's rows and wall time: one request at each of ``times`` (s), whatever the
    replies; a backlog past ``max_in_flight`` and requests still open at the end are rows too."""
    async with ClientPool(url, client, timeout_s, max_in_flight) as pool:
        rows: list[dict] = []
        tasks: set[asyncio.Task] = set()
        bar = _progress(len(times), label, progress)

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
            rows += await _give_up_on_stragglers(tasks, done, timeout_s)
        wall = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        return rows, wall


async def _give_up_on_stragglers(
    tasks: set[asyncio.Task], done: Any, timeout_s: float
) -> list[dict]:
    """Wait for the open requests a little past the client timeout; a ``timeout`` row for each
    one still open then (counted, not waited for forever)."""
    _, pending = await asyncio.wait(set(tasks), timeout=timeout_s + 5)
    rows = []
    for task in pending:
        task.remove_done_callback(done)
        task.cancel()
        rows.append(
            {"i": -1, "client": -1, "start_s": float("nan"), "latency_s": timeout_s}
            | {"status": 0, "ok": False, "error_kind": "timeout", "bytes": 0}
        )
    return rows


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

    rows, wall = _run(
        lambda: _open_loop_rows(
            url, bodies, times, f"{rate_per_s:g} req/s", timeout_s, max_in_flight, progress, client
        )
    )
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
