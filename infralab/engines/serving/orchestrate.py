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

The virtual clock that checks these rules exactly (:func:`simulate`, which runs any
orchestrator with simulated time, so tests and checks compare schedules without wall-clock
thresholds) is :mod:`infralab.engines.serving.orchestration_sim`; a rule changed here is a rule its
checks hold every lab 10 submission to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
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
    run = _GraphRun(steps, budget or Budget(), cache, asyncio.get_running_loop())
    try:
        while True:
            run.start_ready()
            if not run.running:
                break
            finished, _ = await asyncio.wait(list(run.running), return_when=asyncio.FIRST_COMPLETED)
            run.collect(finished)
    finally:
        for task in run.running:  # a failed step: the others are not left running
            task.cancel()
    report = run.report()
    if report.stopped is not None and strict:
        raise BudgetExceeded(report)
    return report


class _GraphRun:
    """The state of one :func:`run_graph` call: what is pending, running and done, and the
    usage committed so far (finished steps' actual usage plus running steps' estimates)."""

    def __init__(
        self,
        steps: Sequence[Step],
        budget: Budget,
        cache: StepCache | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.steps, self.budget, self.cache, self.loop = steps, budget, cache, loop
        self.t0 = loop.time()
        self.order = {s.name: i for i, s in enumerate(steps)}
        self.outputs: dict[str, Any] = {}
        self.records: dict[str, StepRecord] = {}
        self.running: dict[asyncio.Task[Outcome], tuple[Step, float]] = {}
        self.committed = Usage()
        self.stopped: tuple[str, str] | None = None
        self.pending = list(steps)

    def now_ms(self) -> float:
        return (self.loop.time() - self.t0) * 1000.0

    def start_ready(self) -> None:
        """Serve ready steps from the cache and start the rest, in the given order, until a
        step is refused (then nothing more starts); a cache hit can make more steps ready."""
        progressed = True
        while progressed and self.stopped is None:
            progressed = False
            for step in [s for s in self.pending if all(a in self.outputs for a in s.after)]:
                if self._serve_from_cache(step):
                    progressed = True
                    continue
                limit = would_exceed(self.budget, self.committed, self.now_ms(), step.estimate)
                if limit is not None:
                    self.stopped = (step.name, limit)
                    break
                self._start(step)

    def _serve_from_cache(self, step: Step) -> bool:
        hit = self.cache.get(step.cache_key) if self.cache and step.cache_key else None
        if hit is None:
            return False
        self.pending.remove(step)
        self.outputs[step.name] = hit.value
        self.records[step.name] = StepRecord(step.name, self.now_ms(), self.now_ms(), 0, 0.0, True)
        return True

    def _start(self, step: Step) -> None:
        self.pending.remove(step)
        inputs = {a: self.outputs[a] for a in step.after}
        task = asyncio.ensure_future(step.run(inputs))
        self.running[task] = (step, self.now_ms())
        self.committed = self.committed + Usage(0.0, step.estimate.tokens, step.estimate.usd)

    def collect(self, finished: set[asyncio.Task[Outcome]]) -> None:
        """Record finished steps (in the given order): their actual usage replaces their
        estimate in what is committed, and a cacheable outcome goes into the cache."""
        for task in sorted(finished, key=lambda t: self.order[self.running[t][0].name]):
            step, started = self.running.pop(task)
            out = task.result()
            if not isinstance(out, Outcome):
                raise OrchestrationError(
                    f"step {step.name!r} returned {type(out).__name__}, not an Outcome"
                )
            self.committed = self.committed - Usage(0.0, step.estimate.tokens, step.estimate.usd)
            self.committed = self.committed + Usage(0.0, int(out.tokens), float(out.usd))
            self.outputs[step.name] = out.value
            self.records[step.name] = StepRecord(
                step.name, started, self.now_ms(), int(out.tokens), float(out.usd)
            )
            if self.cache is not None and step.cache_key:
                self.cache.put(step.cache_key, Outcome(out.value))

    def report(self) -> RunReport:
        spent = Usage(self.now_ms(), self.committed.tokens, self.committed.usd)
        done = [self.records[n] for n in planned_order(self.steps) if n in self.records]
        return RunReport(self.outputs, done, spent, self.stopped)


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
