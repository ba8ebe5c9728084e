"""The decode scheduler: continuous batching with a bounded, fair queue.

Why: a decode step costs nearly the same for one sequence as for four (it is bound by
reading the weights), so requests that arrive while others are decoding join the running
batch between steps instead of waiting. Requests beyond the batch's free rows wait in a
bounded queue, served round-robin across clients so one busy client cannot starve the
others; a full queue refuses with :class:`QueueFull` and a ``Retry-After`` measured from how
fast the queue drains (:class:`DrainRate`). A client that goes away frees its row at the
next step.

The HTTP side (routes, streaming, error shapes) is :mod:`infralab.engines.serving.chat`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from typing import Any

from infralab.core.errors import InfralabError
from infralab.engines.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, ServiceMetrics

MAX_BATCH = 4
DEFAULT_MAX_QUEUE = 128  # waiting requests (all clients together) before 429
STAT_KEYS = ("submitted", "completed", "rejected", "cancelled_waiting", "cancelled_running")


class SchedulerClosed(RuntimeError, InfralabError):
    """The scheduler was shut down (its app is stopping): nothing more is admitted."""

    hint = "The chat server is stopping; start it again (or launch a new one) and resend."


class SchedulerSettingError(ValueError, InfralabError):
    """A scheduler setting that cannot work (checked when the scheduler is built)."""

    hint = (
        "max_queue is how many requests may wait for a row, all clients together: a whole "
        "number, 0 to refuse every request that finds the batch full (default 128)."
    )


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


class ScheduledRequest:
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
    client served least recently (round-robin across clients), one per free row, re-reading
    the free rows after each admission. At most ``max_queue`` requests wait in all;
    ``submit`` raises :class:`QueueFull` beyond that.
    """

    def __init__(
        self,
        generator: Any,
        max_batch: int = MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
        metrics: ChatMetrics | None = None,
    ) -> None:
        if not isinstance(max_queue, int) or max_queue < 0:
            raise SchedulerSettingError(f"max_queue must be a whole number >= 0, got {max_queue!r}")
        self.gen = generator
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.metrics = metrics
        self.queues: dict[str, deque[ScheduledRequest]] = {}
        self.n_waiting = 0
        self.running: list[ScheduledRequest] = []
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
    def waiting(self) -> list[ScheduledRequest]:
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

    def submit(self, req: ScheduledRequest) -> None:
        with self.cond:
            if self.closed:
                raise SchedulerClosed("the chat scheduler is shut down")
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

    def cancel(self, req: ScheduledRequest) -> None:
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

    def _next(self) -> ScheduledRequest:
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
        """The scheduler thread: drop cancelled rows, admit waiting requests, take a step."""
        engine = self.gen.engine(self.max_batch)
        while self._wait_for_work(engine):
            self._drop_cancelled(engine)
            self._admit(engine)
            engine = self._step(engine)
            self._finish_done()
        self._fail_all("the chat server is shutting down; retry in a moment")

    def _wait_for_work(self, engine: Any) -> bool:
        """Sleep until a request waits or a row is decoding; False once the scheduler closes."""
        with self.cond:
            while not self.closed and not self.n_waiting and not engine.active:
                self.cond.wait()
            return not self.closed

    def _drop_cancelled(self, engine: Any) -> None:
        """A client that went away frees its row: its sequence ends as ``cancelled``."""
        for req in self.running:
            if req.cancelled and not req.seq.done:
                req.seq.finish_reason = "cancelled"
        engine._compact()
        self._finish_done()

    def _admit(self, engine: Any) -> None:
        """One waiting request per free row (the free rows counted per admission)."""
        admit = []
        with self.cond:
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

    def _step(self, engine: Any) -> Any:
        """One decode step of the running rows; the engine to go on with. A failed step fails
        every running request and starts a fresh engine."""
        if not engine.active:
            return engine
        self.batch_sizes.append(len(engine.active))
        if self.metrics:
            self.metrics.batch_size.observe(len(engine.active))
        try:
            engine.step()
        except Exception as exc:
            for req in self.running:
                req._put(("error", str(exc)))
            self.running.clear()
            return self.gen.engine(self.max_batch)
        self.steps += 1
        return engine
