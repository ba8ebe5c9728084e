"""Micro-batching: many small requests become one model call.

A model call has a fixed cost (framework overhead, thread start-up, weights streamed from
memory) that one short sentence does not amortise. The batcher queues requests for at most
``max_wait_ms`` or until ``max_batch_size`` texts are waiting, then runs them together. The
naive runner keeps one model call per request for comparison. Both run the model in worker
threads, so the event loop stays free to accept and answer connections.

``in_flight`` model calls may run at once (one worker thread each). On a CPU the server runs
one single-threaded call per core: while one batch is in the model the next is already
being collected and started, so no core waits for the slowest half of a split batch or for
the event loop to hand out answers (measured on 2 cores: the 2-thread split left the cores
idle about a third of the time under 32 clients).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from infralab.core.errors import InfralabError

EmbedFn = Callable[[list[str]], np.ndarray]


@dataclass
class RunnerStats:
    """What the runner did: requests, model calls, batch sizes and queue waits."""

    requests: int = 0
    texts: int = 0
    model_calls: int = 0
    errors: int = 0
    batch_sizes: Counter = field(default_factory=Counter)
    queue_s_total: float = 0.0
    queue_s_max: float = 0.0
    model_s_total: float = 0.0

    def record_batch(self, size: int, queue_waits: Sequence[float], model_s: float) -> None:
        self.model_calls += 1
        self.batch_sizes[size] += 1
        self.model_s_total += model_s
        for wait in queue_waits:
            self.queue_s_total += wait
            self.queue_s_max = max(self.queue_s_max, wait)

    def to_dict(self) -> dict:
        """JSON-ready summary for ``/metrics``."""
        done = max(self.requests - self.errors, 0)
        return {
            "requests": self.requests,
            "texts": self.texts,
            "model_calls": self.model_calls,
            "errors": self.errors,
            "batch_size_histogram": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "mean_batch_size": (self.texts / self.model_calls) if self.model_calls else 0.0,
            "queue_ms_mean": (1e3 * self.queue_s_total / done) if done else 0.0,
            "queue_ms_max": 1e3 * self.queue_s_max,
            "model_ms_mean": (1e3 * self.model_s_total / self.model_calls)
            if self.model_calls
            else 0.0,
        }


def _executor(runner: NaiveRunner | MicroBatcher) -> ThreadPoolExecutor:
    """The runner's model threads (one per call in flight), made on first use and after a stop."""
    if runner._pool is None:
        runner._pool = ThreadPoolExecutor(
            max_workers=runner.in_flight, thread_name_prefix="infralab-model"
        )
    return runner._pool


class BatchingError(ValueError, InfralabError):
    """A runner or batcher setting out of range; the message names it."""


def _check_in_flight(in_flight: int) -> int:
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
        raise BatchingError(
            f"in_flight must be a whole number >= 1, got {in_flight!r}",
            hint="in_flight is how many model calls run at once: 1, or up to your core count.",
        )
    return in_flight


class NaiveRunner:
    """One model call per request (like one function instance each), ``in_flight`` at once."""

    mode = "naive"

    def __init__(self, fn: EmbedFn, *, in_flight: int = 1) -> None:
        self._fn = fn
        self.in_flight = _check_in_flight(in_flight)
        self._pool: ThreadPoolExecutor | None = None
        self.stats = RunnerStats()

    async def start(self) -> None:
        """Nothing to start; present so both runners share one interface."""

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _timed(self, texts: list[str], enqueued: float) -> tuple[np.ndarray, float, float]:
        began = time.perf_counter()
        out = self._fn(texts)
        return out, began - enqueued, time.perf_counter() - began

    async def submit(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` with a model call of their own."""
        self.stats.requests += 1
        self.stats.texts += len(texts)
        loop = asyncio.get_running_loop()
        try:
            out, waited, model_s = await loop.run_in_executor(
                _executor(self), self._timed, texts, time.perf_counter()
            )
        except Exception:
            self.stats.errors += 1
            raise
        self.stats.record_batch(len(texts), [waited], model_s)
        return out


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future
    enqueued: float


class MicroBatcher:
    """Queue requests and run them together, up to ``max_batch_size`` texts or ``max_wait_ms``.

    With ``in_flight`` calls allowed at once, the ``max_batch_size`` texts are shared: each
    call takes at most ``max_batch_size / in_flight``. A call whose neighbours are idle starts
    with what is waiting (shared out among the idle slots) instead of waiting for the timer.
    A request with more texts than a call may take runs as a batch of its own (never split,
    so its answer comes from one call). While the model is busy, new requests keep queueing,
    so under load batches fill up without waiting for the timer.
    """

    mode = "batching"

    def __init__(
        self,
        fn: EmbedFn,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        in_flight: int = 1,
    ) -> None:
        self.in_flight = _check_in_flight(in_flight)
        if not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise BatchingError(
                f"max_batch_size must be a whole number >= 1, got {max_batch_size!r}",
                hint="max_batch_size is the most texts in one model call, e.g. 32 (the default).",
            )
        if not (0 <= float(max_wait_ms) <= 1000):
            raise BatchingError(
                f"max_wait_ms must be between 0 and 1000 ms, got {max_wait_ms!r}",
                hint="max_wait_ms is how long a batch waits to fill: 0 sends at once, 5 is the default.",
            )
        self._fn = fn
        self.max_batch_size = max_batch_size
        # max_batch_size texts in the model at once, shared by the calls in flight: with 32
        # clients and one call allowed all 32, the second core would wait for the first.
        self.per_call = -(-max_batch_size // self.in_flight)
        self.max_wait_s = float(max_wait_ms) / 1e3
        self._pool: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._carry: _Pending | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = 0  # batches in the model now
        self.stats = RunnerStats()

    async def start(self) -> None:
        """Start the batching loop on the running event loop (idempotent).

        If the app is now driven by another event loop (a test client without lifespan, a
        Lambda adapter that makes a loop per call), the old loop's task is abandoned and a
        new one started here; otherwise requests would wait on a loop that no longer runs.
        """
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._queue = asyncio.Queue()
            self._carry = None
            self._running = 0
            self._loop = loop
            self._task = loop.create_task(self._loop_body(), name="infralab-microbatcher")

    async def stop(self) -> None:
        if self._task is not None and self._loop is asyncio.get_running_loop():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        leftovers = [self._carry] if self._carry is not None else []
        self._carry = None
        if self._queue is not None:
            while not self._queue.empty():
                leftovers.append(self._queue.get_nowait())
            for item in leftovers:
                if not item.future.done():
                    item.future.set_exception(RuntimeError("the server is shutting down"))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def submit(self, texts: list[str]) -> np.ndarray:
        """Queue ``texts`` and wait for their rows of the batch result."""
        if self._task is None or self._task.done() or self._loop is not asyncio.get_running_loop():
            await self.start()
        assert self._queue is not None
        self.stats.requests += 1
        self.stats.texts += len(texts)
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(list(texts), future, time.perf_counter()))
        return await future

    async def _collect(self) -> list[_Pending]:
        assert self._queue is not None
        if self._carry is not None:
            first, self._carry = self._carry, None
        else:
            first = await self._queue.get()
        batch, size = [first], len(first.texts)
        idle_slots = self.in_flight - 1 - self._running
        if idle_slots > 0:
            # Other model slots are idle: share out what is already waiting and start now.
            # Waiting for more would leave cores unused; one batch taking everything would
            # leave the next slot nothing until its answers came back.
            share = -(-(1 + self._queue.qsize()) // (idle_slots + 1))
            while len(batch) < share and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if size + len(nxt.texts) > self.per_call:
                    self._carry = nxt
                    break
                batch.append(nxt)
                size += len(nxt.texts)
            return batch
        deadline = time.perf_counter() + self.max_wait_s
        while size < self.per_call:
            # Take whatever is already waiting first: under load this fills batches at once.
            if not self._queue.empty():
                nxt = self._queue.get_nowait()
            else:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                # Not wait_for(queue.get()): before Python 3.12 a timeout racing a put could
                # drop the item, and a request would then wait forever.
                getter = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait({getter}, timeout=remaining)
                if not done:
                    getter.cancel()
                    await asyncio.wait({getter})
                    if getter.cancelled():
                        break
                nxt = getter.result()
            if size + len(nxt.texts) > self.per_call:
                self._carry = nxt  # does not fit: it starts the next batch
                break
            batch.append(nxt)
            size += len(nxt.texts)
        return batch

    def _run(self, texts: list[str]) -> tuple[np.ndarray, float, float]:
        began = time.perf_counter()
        out = self._fn(texts)
        return out, began, time.perf_counter() - began

    async def _loop_body(self) -> None:
        """Collect a batch whenever a model slot is free; each batch runs as its own task."""
        slots = asyncio.Semaphore(self.in_flight)
        running: set[asyncio.Task] = set()

        def finished(task: asyncio.Task) -> None:
            running.discard(task)
            self._running -= 1
            slots.release()

        try:
            while True:
                await slots.acquire()
                try:
                    batch = await self._collect()
                except BaseException:
                    slots.release()
                    raise
                task = asyncio.get_running_loop().create_task(self._run_batch(batch))
                self._running += 1
                running.add(task)
                task.add_done_callback(finished)
        except asyncio.CancelledError:
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise

    async def _run_batch(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        texts = [t for item in batch for t in item.texts]
        try:
            out, began, model_s = await loop.run_in_executor(_executor(self), self._run, texts)
        except asyncio.CancelledError:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(RuntimeError("the server is shutting down"))
            raise
        except Exception as exc:  # the model failed: every request in the batch learns why
            self.stats.errors += len(batch)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self.stats.record_batch(len(texts), [began - item.enqueued for item in batch], model_s)
        start = 0
        for item in batch:
            rows = out[start : start + len(item.texts)]
            start += len(item.texts)
            if not item.future.done():  # the client may have gone away
                item.future.set_result(rows)
