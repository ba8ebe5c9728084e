"""Run a batcher on an event loop whose clock is simulated, and record what it did.

Why: "no request waits longer than max_wait" cannot be tested with a wall clock on a shared
machine (a busy CPU delays any timer). On :class:`VirtualTimeLoop` time moves only when the
loop has nothing to do: it jumps straight to the next timer. Sleeps and timeouts of asyncio
(``asyncio.sleep``, ``asyncio.wait_for``, ``loop.time()``) follow that clock exactly, and
work handed to the default executor (``asyncio.to_thread``, ``run_in_executor(None, ...)``)
runs at once, in no simulated time. A batcher written against the loop's clock therefore
behaves the same on every machine, and its waits can be measured to the microsecond.

:func:`drive_batcher` builds a batcher from its class, sends it requests at planned
(simulated) times, and returns a plain-data trace: every model call (when, which items) and
every answer (which request, what came back, when). The trace is judged elsewhere (lab 02's
check runs this in the student's kernel and judges the trace in the grader's process).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
import threading
import traceback
from typing import Any

REAL_TIMEOUT_S = 30.0  # a batcher stuck in a loop without await is given up on after this


class _VirtualSelector(selectors.DefaultSelector):
    """Real file descriptors (the loop's wake-up pipe) are polled without waiting; a wait
    for a timer advances the loop's simulated clock instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list:
        ready = super().select(0)
        if ready or self.loop is None:
            return ready
        if timeout is None:  # nothing scheduled and nothing ready: the loop would hang
            self.loop.stalled = True
            return []
        if timeout > 0:
            self.loop.now += timeout
        return []


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """The default executor of the simulated loop: runs the work at once, in no time."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting coroutine, as a thread would
            future.set_exception(exc)
        return future


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is simulated: it advances only to the next timer."""

    def __init__(self) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self.now = 0.0
        self.stalled = False
        self.set_default_executor(_InlineExecutor(max_workers=1))

    def time(self) -> float:
        return self.now


def _answer(item: int) -> str:
    return f"answer to request {item}"


def drive_batcher(batcher_class: Any, plan: dict[str, Any]) -> dict[str, Any]:
    """Run ``batcher_class(model, max_batch_size=..., max_wait_s=...)`` on simulated time.

    ``plan``: ``max_batch_size``, ``max_wait_s``, ``arrivals`` (simulated seconds, one per
    request; request ``i`` submits the item ``i``), ``bad`` (items for which the model fails:
    a model call that contains one raises ValueError). The model answers each item ``i`` with
    ``"answer to request i"``. Returns ``calls`` ([time, items] per model call), ``answers``
    ([item, "ok" or "error", value or error text, time]) and ``problem`` (None, or what went
    wrong outside the requests: the constructor failed, the batcher hung).
    """
    out: dict[str, Any] = {"calls": [], "answers": [], "problem": None}
    bad = set(plan.get("bad", ()))
    arrivals = [float(t) for t in plan["arrivals"]]

    def model(items: Any) -> list[str]:
        items = list(items)
        out["calls"].append([loop.time(), [int(i) if isinstance(i, int) else repr(i)
                                           for i in items]])  # fmt: skip
        broken = sorted(i for i in items if i in bad)
        if broken:
            # builtin on purpose: the simulated model fails the way a real model call does
            raise ValueError(f"the model cannot process item {broken[0]}")
        return [_answer(i) for i in items]

    loop = VirtualTimeLoop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                batcher = batcher_class(
                    model, max_batch_size=plan["max_batch_size"], max_wait_s=plan["max_wait_s"]
                )
            except Exception as exc:
                out["problem"] = f"building it raised {type(exc).__name__}: {exc}"
                return
            loop.run_until_complete(_requests(loop, batcher, arrivals, plan, out))
        except Exception as exc:  # the student's code broke the loop itself
            out["problem"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        finally:
            _cancel_rest(loop)
            loop.close()

    thread = threading.Thread(target=run, name="infralab-virtual-time", daemon=True)
    thread.start()
    thread.join(REAL_TIMEOUT_S)
    if thread.is_alive():
        out["problem"] = (
            f"it did not finish in {REAL_TIMEOUT_S:g} s of real time: a loop that never "
            "awaits anything?"
        )
    return {"calls": list(out["calls"]), "answers": list(out["answers"]),
            "problem": out["problem"]}  # fmt: skip


async def _requests(
    loop: VirtualTimeLoop, batcher: Any, arrivals: list[float], plan: dict, out: dict
) -> None:
    done = asyncio.Event()
    remaining = [len(arrivals)]

    async def request(item: int) -> None:
        try:
            value = await batcher.submit(item)
            out["answers"].append([item, "ok", value if isinstance(value, str) else repr(value),
                                   loop.time()])  # fmt: skip
        except Exception as exc:
            out["answers"].append([item, "error", f"{type(exc).__name__}: {exc}", loop.time()])
        finally:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    tasks: list[asyncio.Task] = []
    for item, at in enumerate(arrivals):
        loop.call_at(at, lambda i=item: tasks.append(loop.create_task(request(i))))
    if not arrivals:
        return
    horizon = max(arrivals) + 20 * float(plan["max_wait_s"]) + 1.0
    try:
        await asyncio.wait_for(done.wait(), timeout=horizon)
    except asyncio.TimeoutError:
        out["problem"] = (
            f"{remaining[0]} of {len(arrivals)} requests had no answer {horizon:g} s "
            "(simulated) after they began"
        )


def _cancel_rest(loop: VirtualTimeLoop) -> None:
    """Cancel what the batcher left running (its worker) and let it unwind."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        try:
            loop.run_until_complete(
                asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), timeout=1.0)
            )
        except Exception:  # a worker that refuses to stop: the loop closes regardless
            pass
