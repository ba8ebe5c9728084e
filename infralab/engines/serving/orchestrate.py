"""Multi-step requests: a step graph run with asyncio, a cache and a per-request budget.

Why: one user prompt to an AI product often becomes retrieval, several model calls and a
tool call. Their latencies add along every chain of dependent steps and their costs add
over all steps, so the orchestration decides both: independent steps run at the same time
(the request waits for the slowest of them, not for their sum), a repeated call is served
from a cache, and a budget refuses a step *before* it would push the request past its limit
of milliseconds, tokens or dollars (lesson 10; lab 10 builds the same runner).

The rules, exactly (the lab's checks and this module's tests rely on them):

* A step starts as soon as every step it comes ``after`` has finished; steps that become
  ready at the same moment start in the order they were given.
* Before a step starts, :func:`would_exceed` asks whether it would break the budget: the
  elapsed time plus its estimated ms, and the committed tokens and USD (actual usage of the
  finished steps plus the estimates of the running ones) plus its estimate. A limit that
  would be exactly met is not exceeded. The first limit broken, in the order ms, tokens,
  USD, is the one reported.
* Once one step is refused, no further step starts; the running ones finish (their work is
  paid for already) and the run reports what it spent and where it stopped.

:func:`simulate` runs any orchestrator on a virtual clock (asyncio with simulated time), so
tests and checks compare schedules exactly, without wall-clock thresholds.

Size: the runner, the rules it follows and the virtual clock that checks them change together
(a rule changed in one place and not the other would fail every lab 10 submission).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import selectors
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "Budget",
    "BudgetExceeded",
    "StepCache",
    "Usage",
    "critical_path_ms",
    "kv_cache_bytes",
    "percentile",
    "would_exceed",
]


LIMITS: tuple[str, ...] = ("ms", "tokens", "usd")
THREAD_WAIT_S = 2.0  # real seconds the virtual clock waits for a worker thread (to_thread)


class OrchestrationError(ValueError, InfralabError):
    """A step graph that cannot run (a missing dependency, a cycle, a duplicate name)."""

    hint = "Give each step a unique name and list in `after` only steps of the same graph."


class BudgetExceeded(InfralabError, RuntimeError):
    """A step was refused because it would break the request's budget; ``report`` holds
    what ran, what it spent and which limit stopped it."""

    hint = (
        "Raise the limit, route easy steps to a cheaper path, cache repeated calls, or run "
        "independent steps in parallel; report.spent says what the request used so far."
    )

    def __init__(self, report: RunReport) -> None:
        step, limit = report.stopped or ("?", "?")
        super().__init__(
            f"step {step!r} would exceed the {limit} budget "
            f"(spent so far: {report.spent.ms:.0f} ms, {report.spent.tokens} tokens, "
            f"{report.spent.usd:.6g} USD)"
        )
        self.report = report


@dataclass(frozen=True)
class Usage:
    """What a step (or a whole request) takes: wall time, model tokens and dollars."""

    ms: float = 0.0
    tokens: int = 0
    usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.ms + other.ms, self.tokens + other.tokens, self.usd + other.usd)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.ms - other.ms, self.tokens - other.tokens, self.usd - other.usd)


@dataclass(frozen=True)
class Budget:
    """A request's limits; None means no limit on that quantity."""

    ms: float | None = None
    tokens: int | None = None
    usd: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What a step's call returns: its value and the tokens and USD it actually used."""

    value: Any
    tokens: int = 0
    usd: float = 0.0


StepCall = Callable[[dict[str, Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Step:
    """One node of a request: an async call that receives its dependencies' values by name.

    ``estimate`` is what the budget check expects the step to take (from earlier
    measurements); ``cache_key``, when set, lets a :class:`StepCache` serve a repeat.
    """

    name: str
    run: StepCall
    after: tuple[str, ...] = ()
    estimate: Usage = Usage()
    cache_key: str | None = None


@dataclass
class StepCache:
    """Outcomes of earlier calls by key: a hit costs no tokens, no USD and almost no time."""

    entries: dict[str, Outcome] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0

    @staticmethod
    def key(*parts: Any) -> str:
        """A stable key from the call's inputs (model, prompt, parameters)."""
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, key: str) -> Outcome | None:
        found = self.entries.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, outcome: Outcome) -> None:
        self.entries[key] = outcome


@dataclass(frozen=True)
class StepRecord:
    """When one step ran (ms since the request started) and what it used."""

    name: str
    start_ms: float
    end_ms: float
    tokens: int
    usd: float
    cached: bool = False


@dataclass
class RunReport:
    """The request's outputs, each step's record, the total spent and where it stopped."""

    outputs: dict[str, Any]
    steps: list[StepRecord]
    spent: Usage
    stopped: tuple[str, str] | None = None  # (step, limit)

    def to_dict(self) -> dict[str, Any]:
        """The plain form the lab's runner returns too."""
        return {
            "outputs": dict(self.outputs),
            "spent": {"ms": self.spent.ms, "tokens": self.spent.tokens, "usd": self.spent.usd},
            "stopped": None
            if self.stopped is None
            else {"step": self.stopped[0], "limit": self.stopped[1]},
        }


def would_exceed(
    budget: Budget, committed: Usage, elapsed_ms: float, estimate: Usage
) -> str | None:
    """The first limit (ms, tokens, USD) that starting a step with ``estimate`` would break,
    or None. ``committed``: tokens and USD of finished steps plus running steps' estimates."""
    if budget.ms is not None and elapsed_ms + estimate.ms > budget.ms:
        return "ms"
    if budget.tokens is not None and committed.tokens + estimate.tokens > budget.tokens:
        return "tokens"
    if budget.usd is not None and committed.usd + estimate.usd > budget.usd:
        return "usd"
    return None


def check_graph(steps: Sequence[Step]) -> None:
    """Refuse duplicate names, unknown dependencies and cycles, with the step named."""
    names = [s.name for s in steps]
    seen: set[str] = set()
    for s in steps:
        if s.name in seen:
            raise OrchestrationError(f"two steps are named {s.name!r}")
        seen.add(s.name)
    for s in steps:
        unknown = [a for a in s.after if a not in seen]
        if unknown:
            raise OrchestrationError(f"step {s.name!r} comes after unknown step(s) {unknown}")
    order = planned_order(steps)
    if len(order) < len(names):
        stuck = sorted(set(names) - set(order))
        raise OrchestrationError(f"steps {stuck} depend on each other in a cycle")


def planned_order(steps: Sequence[Step]) -> list[str]:
    """Names in an order where each step follows its dependencies (cycles are left out)."""
    done: list[str] = []
    left = list(steps)
    while left:
        ready = [s for s in left if all(a in done for a in s.after)]
        if not ready:
            break
        done += [s.name for s in ready]
        left = [s for s in left if s not in ready]
    return done


def critical_path_ms(durations: dict[str, float], after: dict[str, Sequence[str]]) -> float:
    """The request's latency if every step takes ``durations[name]`` ms and starts when its
    last dependency ends: the longest chain, not the sum (parallel steps overlap)."""
    finish: dict[str, float] = {}
    for _ in range(len(durations) + 1):
        for name, ms in durations.items():
            deps = list(after.get(name, ()))
            if name not in finish and all(d in finish for d in deps):
                finish[name] = max((finish[d] for d in deps), default=0.0) + ms
    if len(finish) < len(durations):
        raise OrchestrationError("the steps' dependencies form a cycle or name unknown steps")
    return max(finish.values(), default=0.0)


async def run_graph(
    steps: Sequence[Step],
    budget: Budget | None = None,
    *,
    cache: StepCache | None = None,
    strict: bool = True,
) -> RunReport:
    """Run a step graph under the module's rules; :class:`BudgetExceeded` when a step is
    refused (``strict=False`` returns the report with ``stopped`` set instead)."""
    check_graph(steps)
    budget = budget or Budget()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    outputs: dict[str, Any] = {}
    records: dict[str, StepRecord] = {}
    running: dict[asyncio.Task[Outcome], tuple[Step, float]] = {}
    committed = Usage()
    stopped: tuple[str, str] | None = None
    pending = list(steps)

    def now_ms() -> float:
        return (loop.time() - t0) * 1000.0

    try:
        while True:
            progressed = True
            while progressed and stopped is None:  # a cache hit can make more steps ready
                progressed = False
                for step in [s for s in pending if all(a in outputs for a in s.after)]:
                    hit = cache.get(step.cache_key) if cache and step.cache_key else None
                    if hit is not None:
                        pending.remove(step)
                        outputs[step.name] = hit.value
                        records[step.name] = StepRecord(step.name, now_ms(), now_ms(), 0, 0.0, True)
                        progressed = True
                        continue
                    limit = would_exceed(budget, committed, now_ms(), step.estimate)
                    if limit is not None:
                        stopped = (step.name, limit)
                        break
                    pending.remove(step)
                    inputs = {a: outputs[a] for a in step.after}
                    task = asyncio.ensure_future(step.run(inputs))
                    running[task] = (step, now_ms())
                    committed = committed + Usage(0.0, step.estimate.tokens, step.estimate.usd)
            if not running:
                break
            finished, _ = await asyncio.wait(list(running), return_when=asyncio.FIRST_COMPLETED)
            order = {s.name: i for i, s in enumerate(steps)}
            for task in sorted(finished, key=lambda t: order[running[t][0].name]):
                step, started = running.pop(task)
                out = task.result()
                if not isinstance(out, Outcome):
                    raise OrchestrationError(
                        f"step {step.name!r} returned {type(out).__name__}, not an Outcome"
                    )
                committed = committed - Usage(0.0, step.estimate.tokens, step.estimate.usd)
                committed = committed + Usage(0.0, int(out.tokens), float(out.usd))
                outputs[step.name] = out.value
                records[step.name] = StepRecord(
                    step.name, started, now_ms(), int(out.tokens), float(out.usd)
                )
                if cache is not None and step.cache_key:
                    cache.put(step.cache_key, Outcome(out.value))
    finally:
        for task in running:  # a failed step: the others are not left running
            task.cancel()
    spent = Usage(now_ms(), committed.tokens, committed.usd)
    report = RunReport(outputs, [records[n] for n in planned_order(steps) if n in records], spent,
                       stopped)  # fmt: skip
    if stopped is not None and strict:
        raise BudgetExceeded(report)
    return report


# --------------------------------------------------------------------------- virtual clock
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


# --------------------------------------------------------------------------- models and bills
def kv_cache_bytes(
    tokens: int, layers: int, kv_heads: int, head_dim: int, bytes_per_value: int
) -> int:
    """KV-cache bytes for ``tokens`` in flight: a key and a value per layer, KV head and
    head dimension, each ``bytes_per_value`` wide (4 for float32, 2 for float16)."""
    per_token = 2 * layers * kv_heads * head_dim  # numbers cached per token, all layers
    return tokens * per_token * bytes_per_value


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation, as numpy computes it."""
    data = sorted(values)
    if not data:
        raise OrchestrationError("no values to take a percentile of")
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
