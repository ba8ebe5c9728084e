"""Run an orchestrator on a virtual clock: exact schedules for tests and lab 10's checks.

Why: "the parallel steps took the longest, not the sum" cannot be checked with a wall clock
on a shared machine. On the loop here time moves only when every task waits, so
``asyncio.sleep(0.5)`` takes no real time and a schedule comes out exact. :func:`simulate`
runs any orchestrator (the kit's :func:`~infralab.engines.serving.orchestrate.run_graph`, the lab's
reference, a student's) on fake steps and hands back plain data; :func:`random_spec` makes
step graphs whose timings never tie. The rules those runs follow are
:mod:`infralab.engines.serving.orchestrate`.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from infralab.engines.serving.orchestrate import (
    Budget,
    BudgetExceeded,
    OrchestrationError,
    Outcome,
    RunReport,
    Step,
    StepCall,
    Usage,
    critical_path_ms,
    run_graph,
    would_exceed,
)

THREAD_WAIT_S = 2.0  # real seconds the virtual clock waits for a worker thread (to_thread)


class _VirtualSelector(selectors.SelectSelector):
    """A selector that never blocks: waiting for ``timeout`` moves the virtual clock."""

    def __init__(self, clock: list[float], max_s: float) -> None:
        super().__init__()
        self.clock = clock
        self.max_s = max_s

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:  # nothing scheduled: only a worker thread can still wake the loop
            events = super().select(THREAD_WAIT_S)
            if not events:
                raise OrchestrationError(
                    "the orchestration waits for something that never happens (no step is "
                    "running and none is scheduled)"
                )
            return events
        self.clock[0] += max(timeout, 0.0)
        if self.clock[0] > self.max_s:
            raise OrchestrationError(f"the orchestration ran past {self.max_s:g} simulated s")
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, max_s: float) -> None:
        self.clock = [0.0]
        super().__init__(_VirtualSelector(self.clock, max_s))

    def time(self) -> float:
        return self.clock[0]


def run_virtual(
    make: Callable[[], Awaitable[Any]], max_s: float = 3600.0, watch: Any = None
) -> Any:
    """Run ``make()`` on an event loop whose clock only moves when every task waits, so
    ``asyncio.sleep(0.5)`` takes no real time and schedules are exact. It runs in its own
    thread, so it works inside Jupyter's running loop too. ``watch``: a profile function
    for that thread (``sys.setprofile``)."""
    box: dict[str, Any] = {}

    def main() -> None:
        if watch is not None:
            sys.setprofile(watch)  # this thread only: which code the run enters
        loop = _VirtualLoop(max_s)
        try:
            box["value"] = loop.run_until_complete(make())
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc
        finally:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            try:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            except Exception:  # a task that will not end: the loop is closed regardless
                pass
            loop.close()

    worker = threading.Thread(target=main, name="infralab-virtual-clock")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def simulate(orchestrator: Callable[..., Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``orchestrator(steps, budget)`` on fake steps with a virtual clock; plain data back.

    ``spec``: ``{"steps": [{"name", "after", "seconds", "tokens", "usd", "actual_tokens",
    "actual_usd"}], "budget": {"ms", "tokens", "usd"}}``. Each fake step sleeps ``seconds``
    and returns its name applied to its inputs (so the outputs show what was passed where).
    The answer lists each step's start and end (virtual ms), the orchestrator's report in
    plain form (a :class:`RunReport` or the lab's dict), or the error it raised.
    """
    events: dict[str, list[float]] = {}
    received: dict[str, list[str]] = {}

    def fake(s: dict[str, Any]) -> StepCall:
        async def call(inputs: dict[str, Any]) -> Outcome:
            loop = asyncio.get_running_loop()
            received[s["name"]] = sorted(inputs)
            events[s["name"]] = [loop.time() * 1000.0]
            await asyncio.sleep(float(s["seconds"]))
            events[s["name"]].append(loop.time() * 1000.0)
            args = ",".join(str(inputs[k]) for k in sorted(inputs))
            return Outcome(f"{s['name']}({args})", int(s["actual_tokens"]), float(s["actual_usd"]))

        return call

    steps = [
        Step(s["name"], fake(s), tuple(s["after"]),
             Usage(float(s["seconds"]) * 1000.0, int(s["tokens"]), float(s["usd"])))
        for s in spec["steps"]
    ]  # fmt: skip
    b = spec.get("budget") or {}
    budget = Budget(b.get("ms"), b.get("tokens"), b.get("usd"))

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            out = await orchestrator(steps, budget)
        except BudgetExceeded as exc:
            out = exc.report
        return out, (loop.time() - t0) * 1000.0

    kit_code = {run_graph.__code__, would_exceed.__code__, critical_path_ms.__code__}
    entered: list[str] = []

    def watch(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in kit_code and not entered:
            entered.append(frame.f_code.co_name)

    answer: dict[str, Any] = {"events": events, "received": received}
    try:
        report, elapsed = run_virtual(main, watch=watch)
        answer["used_kit"] = entered[0] if entered else ""
    except Exception as exc:  # the orchestrator's own error, reported as data
        answer["error"] = f"{type(exc).__name__}: {exc}"[:500]
        return answer
    if isinstance(report, RunReport):
        report = report.to_dict()
    answer["report"] = _plain(report)
    answer["elapsed_ms"] = elapsed
    return answer


def _plain(value: Any, depth: int = 0) -> Any:
    """Built-in types only (what the grader can copy out of a kernel)."""
    if depth > 20:
        return repr(value)[:200]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return repr(value)[:200]


def random_spec(rng: Any, *, max_steps: int = 7) -> dict[str, Any]:
    """A random step graph and budget whose timings never tie (durations are distinct powers
    of two of 1/1024 s, so every chain ends at its own moment) and whose sums are exact."""
    n = rng.randint(1, max_steps)
    powers = rng.sample(range(10), n)
    steps = []
    for i in range(n):
        earlier = [f"s{j}" for j in range(i)]
        after = sorted(rng.sample(earlier, rng.randint(0, min(3, len(earlier)))))
        tokens = rng.randint(0, 200)
        actual = max(0, tokens + rng.randint(-tokens // 2, tokens // 2))
        steps.append({"name": f"s{i}", "after": after, "seconds": 2 ** powers[i] / 1024,
                      "tokens": tokens, "usd": tokens * 2**-16,
                      "actual_tokens": actual, "actual_usd": actual * 2**-16})  # fmt: skip
    rng.shuffle(steps)  # the given order is not always a dependency order
    path_ms = critical_path_ms({s["name"]: s["seconds"] * 1000 for s in steps},
                               {s["name"]: s["after"] for s in steps})  # fmt: skip
    total_tokens = sum(s["tokens"] for s in steps)
    unit_ms = 1000 / 1024
    top = int(1.6 * total_tokens) + 2
    budget = {
        "ms": None if rng.random() < 0.4 else (rng.randint(0, int(1.6 * path_ms / unit_ms)) + 0.5) * unit_ms,
        "tokens": None if rng.random() < 0.4 else rng.randint(0, top),
        "usd": None if rng.random() < 0.6 else rng.randint(0, top) * 2**-16,
    }  # fmt: skip
    return {"steps": steps, "budget": budget}
