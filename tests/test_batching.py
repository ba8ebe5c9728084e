"""Micro-batcher: concurrent requests share model calls, answers stay in order, errors reach everyone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from infralab.engines.serving.batching import MicroBatcher, NaiveRunner


class Recorder:
    """A model that returns each text's length as its vector and records its call sizes."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[int] = []
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.fail_on is not None and self.fail_on in texts:
            raise RuntimeError("model failed")
        return np.array([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)


async def _gather(runner, requests: list[list[str]]):
    await runner.start()
    try:
        return await asyncio.gather(*(runner.submit(r) for r in requests), return_exceptions=True)
    finally:
        await runner.stop()


def test_concurrent_requests_share_one_call_and_keep_their_rows():
    model = Recorder()
    batcher = MicroBatcher(model, max_batch_size=32, max_wait_ms=50)
    requests = [["x" * (i + 1)] for i in range(10)]
    out = asyncio.run(_gather(batcher, requests))
    assert model.calls == [10]
    for i, rows in enumerate(out):
        assert rows.shape == (1, 2) and rows[0, 0] == i + 1
    stats = batcher.stats.to_dict()
    assert stats["requests"] == 10 and stats["model_calls"] == 1
    assert stats["batch_size_histogram"] == {"10": 1}


def test_batches_never_exceed_the_maximum_and_big_requests_run_alone():
    model = Recorder()
    batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=20)
    requests = [["a"], ["b", "c"], ["d", "e"], ["f"] * 9, ["g"]]
    out = asyncio.run(_gather(batcher, requests))
    assert sum(model.calls) == 15
    assert all(size <= 4 for size in model.calls if size != 9)
    assert 9 in model.calls  # the 9-text request was not split
    assert [len(rows) for rows in out] == [1, 2, 2, 9, 1]


def test_lone_request_waits_at_most_about_max_wait():
    model = Recorder()
    batcher = MicroBatcher(model, max_batch_size=32, max_wait_ms=1)
    out = asyncio.run(_gather(batcher, [["only"]]))
    assert model.calls == [1] and out[0][0, 0] == 4


def test_a_model_error_reaches_every_request_of_the_batch_and_the_batcher_survives():
    model = Recorder(fail_on="boom")
    batcher = MicroBatcher(model, max_batch_size=8, max_wait_ms=30)

    async def scenario():
        await batcher.start()
        try:
            first = await asyncio.gather(
                batcher.submit(["ok"]), batcher.submit(["boom"]), return_exceptions=True
            )
            second = await batcher.submit(["fine"])
            return first, second
        finally:
            await batcher.stop()

    first, second = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) for r in first)
    assert second[0, 0] == 4
    assert batcher.stats.errors == 2


def test_naive_runner_makes_one_call_per_request():
    model = Recorder()
    runner = NaiveRunner(model)
    out = asyncio.run(_gather(runner, [["a"], ["bb"], ["ccc"]]))
    assert model.calls == [1, 1, 1]
    assert [r[0, 0] for r in out] == [1, 2, 3]
    assert runner.stats.to_dict()["mean_batch_size"] == 1.0


@pytest.mark.parametrize(
    "kwargs", [{"max_batch_size": 0}, {"max_batch_size": 2.5}, {"max_wait_ms": -1}]
)
def test_bad_settings_are_refused_with_a_message(kwargs):
    with pytest.raises(ValueError, match="max_"):
        MicroBatcher(Recorder(), **kwargs)


# --- the chat scheduler's admission, without a model ------------------------------------
class _FakeSeq:
    def __init__(self, n: int) -> None:
        self.left, self.finish_reason, self.on_piece = n, None, None

    @property
    def done(self) -> bool:
        return self.finish_reason is not None


class _FakeEngine:
    """Rows like the real engine: ``admit`` raises when no row is free (the old 503)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.active, self.peak = capacity, [], 0

    @property
    def free(self) -> int:
        return self.capacity - len(self.active)

    def admit(self, seq) -> None:
        if not self.free:
            raise RuntimeError("no free row in this batch")
        self.active.append(seq)
        self.peak = max(self.peak, len(self.active))

    def step(self) -> int:
        for s in self.active:
            s.left -= 1
            if s.left <= 0:
                s.finish_reason = "length"
        self._compact()
        return len(self.active)

    def _compact(self) -> None:
        self.active = [s for s in self.active if not s.done]


class _FakeGen:
    def __init__(self) -> None:
        self.engines: list[_FakeEngine] = []

    def engine(self, capacity: int) -> _FakeEngine:
        self.engines.append(_FakeEngine(capacity))
        return self.engines[-1]

    def _result(self, seq):
        from types import SimpleNamespace

        return SimpleNamespace(total_s=0.0, finish_reason=seq.finish_reason)


def test_scheduler_admits_one_request_per_free_row():
    """Ten requests waiting at once, two rows: all complete, none is refused a row."""
    from infralab.engines.serving.chat_scheduler import ScheduledRequest, Scheduler

    async def main() -> list[tuple[str, object]]:
        loop = asyncio.get_running_loop()
        gen = _FakeGen()
        sched = Scheduler(gen, max_batch=2, max_queue=10)
        reqs = [
            ScheduledRequest(_FakeSeq(3), loop, client=f"c{i % 3}", stream=False) for i in range(10)
        ]
        with sched.cond:  # all ten are queued before the loop looks at them
            for r in reqs:
                sched.submit(r)
        outcomes = [await asyncio.wait_for(r.queue.get(), 60) for r in reqs]
        sched.close()
        assert gen.engines[0].peak == 2 and sched.stats["completed"] == 10
        return outcomes

    outcomes = asyncio.run(main())
    assert [kind for kind, _ in outcomes] == ["done"] * 10


class Meeting:
    """A model whose calls wait for each other: only calls that overlap in time can finish."""

    def __init__(self, parties: int, timeout: float = 10) -> None:
        import threading

        self.barrier = threading.Barrier(parties, timeout=timeout)
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.barrier.wait()  # raises BrokenBarrierError if the other call never comes
        return np.array([[float(t)] for t in texts], dtype=np.float32)


def test_two_calls_in_flight_run_at_the_same_time_and_keep_their_rows():
    model = Meeting(2)
    batcher = MicroBatcher(model, max_batch_size=4, max_wait_ms=20, in_flight=2)
    requests = [[str(i)] for i in range(4)]
    out = asyncio.run(_gather(batcher, requests))
    assert not any(isinstance(r, BaseException) for r in out), out
    assert [float(r[0, 0]) for r in out] == [0.0, 1.0, 2.0, 3.0]
    assert sorted(len(c) for c in model.calls) == [2, 2]  # 4 texts in flight: 2 a call


def test_one_call_in_flight_never_overlaps():
    model = Meeting(2, timeout=0.3)
    batcher = MicroBatcher(model, max_batch_size=1, max_wait_ms=1, in_flight=1)
    out = asyncio.run(_gather(batcher, [["1"], ["2"]]))
    assert all(isinstance(r, Exception) for r in out)  # the barrier broke: calls were serial


@pytest.mark.parametrize("in_flight", [2, 3, 4])
def test_texts_in_flight_stay_within_the_maximum_on_random_loads(in_flight):
    rng = np.random.default_rng(in_flight)
    model = Recorder()
    batcher = MicroBatcher(model, max_batch_size=12, max_wait_ms=2, in_flight=in_flight)
    requests = [["t"] * int(rng.integers(1, 4)) for _ in range(40)]
    out = asyncio.run(_gather(batcher, requests))
    per_call = -(-12 // in_flight)
    assert all(size <= per_call for size in model.calls)
    assert sum(model.calls) == sum(len(r) for r in requests)
    assert [len(rows) for rows in out] == [len(r) for r in requests]


def test_idle_slots_share_what_is_waiting_instead_of_one_taking_all():
    model = Recorder()
    batcher = MicroBatcher(model, max_batch_size=32, max_wait_ms=200, in_flight=2)

    async def run():
        await batcher.start()
        try:
            # six requests already queued when the loop first looks: two calls of three
            tasks = [asyncio.ensure_future(batcher.submit(["x"])) for _ in range(6)]
            return await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
        finally:
            await batcher.stop()

    asyncio.run(run())
    assert model.calls[:2] == [3, 3]


def test_stop_fails_every_batch_in_flight_with_a_clear_error():
    import threading

    release = threading.Event()

    def slow(texts: list[str]) -> np.ndarray:
        release.wait(5)
        return np.zeros((len(texts), 1), dtype=np.float32)

    batcher = MicroBatcher(slow, max_batch_size=2, max_wait_ms=1, in_flight=2)

    async def run():
        await batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit([str(i)])) for i in range(2)]
        await asyncio.sleep(0.1)  # both calls are now in the model
        await batcher.stop()
        release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    out = asyncio.run(run())
    assert all(isinstance(r, RuntimeError) and "shutting down" in str(r) for r in out), out


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_in_flight_must_be_a_whole_number_of_calls(bad):
    with pytest.raises(ValueError, match="in_flight"):
        MicroBatcher(Recorder(), in_flight=bad)
    with pytest.raises(ValueError, match="in_flight"):
        NaiveRunner(Recorder(), in_flight=bad)
