"""Retry-After comes from the measured drain rate (issue #25, item 6): during a burst the
advice is within a factor of two of the time the queue really takes to drain, and it stays
in a sane range. The scheduler runs a stand-in engine (fixed time per decode step), so the
test needs no model and its drain time is known."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

from infralab.engines.serving.chat_scheduler import (
    DrainRate,
    QueueFull,
    ScheduledRequest,
    Scheduler,
)

STEP_S = 0.01  # one decode step
STEPS = 20  # steps per request: 0.2 s each, two rows -> 10 requests/s


class _Seq:
    def __init__(self) -> None:
        self.done, self.finish_reason, self.steps = False, None, 0


class _Engine:
    def __init__(self, max_batch: int) -> None:
        self.max_batch, self.active = max_batch, []

    @property
    def free(self) -> int:
        return self.max_batch - len(self.active)

    def _compact(self) -> None:
        self.active = [s for s in self.active if not s.done]

    def admit(self, seq: _Seq) -> None:
        self.active.append(seq)

    def step(self) -> None:
        time.sleep(STEP_S)
        for seq in self.active:
            seq.steps += 1
            if seq.steps >= STEPS:
                seq.done, seq.finish_reason = True, "length"


class _Generator:
    def engine(self, max_batch: int) -> _Engine:
        return _Engine(max_batch)

    def _result(self, seq: _Seq) -> SimpleNamespace:
        # total_s as the old advice saw it: grows with the time spent queued in a burst
        return SimpleNamespace(total_s=30.0, prompt_tokens=1, completion_tokens=1, ttft_s=0.0)


def _wait(check, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never reached: {what}")
        time.sleep(0.005)


def test_burst_advice_is_within_a_factor_of_two_of_the_real_drain_time() -> None:
    loop = asyncio.new_event_loop()  # only collects the scheduler's messages
    sched = Scheduler(_Generator(), max_batch=2, max_queue=40)
    try:

        def submit(i: int) -> None:
            sched.submit(ScheduledRequest(_Seq(), loop, client=f"c{i % 7}", stream=False))

        for i in range(42):  # a burst: two rows busy, the queue full
            try:
                submit(i)
            except QueueFull:  # the scheduler had not admitted the first two yet
                pass
        _wait(lambda: sched.stats["completed"] >= 8, "some requests complete")
        i = 42
        while sched.n_waiting < sched.max_queue:  # the clients keep it full
            submit(i)
            i += 1
        with pytest.raises(QueueFull) as refused:
            submit(i)
        advised, t0 = refused.value.retry_after_s, time.monotonic()
        _wait(lambda: sched.n_waiting == 0, "the queue drains")
        drained = time.monotonic() - t0
        assert drained > 2.0  # long enough for a factor to mean something
        assert drained / 2 <= advised <= drained * 2, (advised, drained)
        # the old advice (mean request time x rounds ahead) was far out
        old = sched._mean_request_s * (sched.max_queue + 1) / sched.max_batch
        assert old > 4 * drained
    finally:
        sched.close()
        loop.close()


def test_drain_rate_is_bounded_and_falls_back_before_the_first_completion() -> None:
    now = [0.0]
    rate = DrainRate(window_s=30, min_s=1, max_s=300, clock=lambda: now[0])
    rate.busy()
    assert rate.retry_after_s(10, fallback_s=7.2) == 8  # nothing measured yet
    assert rate.retry_after_s(10, fallback_s=1e9) == 300
    for _ in range(20):  # 2 completions per second for 10 s
        now[0] += 0.5
        rate.completed()
    assert rate.per_s() == pytest.approx(2.0)
    assert rate.retry_after_s(100, fallback_s=0) == 50
    assert rate.retry_after_s(1, fallback_s=0) == 1
    assert rate.retry_after_s(10**6, fallback_s=0) == 300
    # a stall: no completion for 40 s, so the window holds none: the fallback answers
    now[0] += 40
    assert rate.per_s() is None
    # quiet before a burst does not count: idle resets, the next burst measures afresh
    rate.idle()
    now[0] += 1000
    rate.busy()
    now[0] += 10
    rate.completed()  # one completion in 10 s busy
    assert rate.retry_after_s(5, fallback_s=0) == 50


def test_scheduler_thread_safety_smoke() -> None:
    """Completions recorded from the scheduler thread while requests are submitted."""
    loop = asyncio.new_event_loop()
    sched = Scheduler(_Generator(), max_batch=2, max_queue=1000)
    try:
        threads = [
            threading.Thread(
                target=lambda k=k: [
                    sched.submit(ScheduledRequest(_Seq(), loop, client=f"t{k}", stream=False))
                    for _ in range(5)
                ]
            )
            for k in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        _wait(lambda: sched.stats["completed"] == 20, "all complete")
        _wait(lambda: sched.drain.busy_since is None, "idle again")
        assert 1 <= sched.retry_after_s() <= 300
    finally:
        sched.close()
        loop.close()
