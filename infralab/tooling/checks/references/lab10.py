"""Lab 10's references: the longest chain, the budget rule, the step-graph runner.

Written apart from ``infralab.engines.serving.orchestrate`` (a different loop shape) so that a bug in
one is not silently copied into the other; a test runs both on the same random graphs.
"""

from __future__ import annotations

import asyncio
from typing import Any


def critical_path_ms(durations: dict[str, float], after: dict[str, list[str]]) -> float:
    memo: dict[str, float] = {}

    def end(name: str) -> float:
        if name not in memo:
            memo[name] = durations[name] + max((end(d) for d in after.get(name, [])), default=0.0)
        return memo[name]

    return max((end(n) for n in durations), default=0.0)


def would_exceed(budget: Any, committed: Any, elapsed_ms: float, estimate: Any) -> str | None:
    checks = (
        ("ms", budget.ms, elapsed_ms + estimate.ms),
        ("tokens", budget.tokens, committed.tokens + estimate.tokens),
        ("usd", budget.usd, committed.usd + estimate.usd),
    )
    for limit, cap, total in checks:
        if cap is not None and total > cap:
            return limit
    return None


async def run_graph(steps: list[Any], budget: Any) -> dict[str, Any]:
    from infralab.engines.serving.orchestrate import Usage

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    outputs: dict[str, Any] = {}
    tokens, usd = 0, 0.0  # actual, finished steps
    in_flight: dict[asyncio.Task, Any] = {}
    started: set[str] = set()
    stopped = None
    while True:
        if stopped is None:
            for step in steps:
                if step.name in started or any(a not in outputs for a in step.after):
                    continue
                reserved_tokens = tokens + sum(s.estimate.tokens for s in in_flight.values())
                reserved_usd = usd + sum(s.estimate.usd for s in in_flight.values())
                elapsed = (loop.time() - t0) * 1000
                limit = would_exceed(budget, Usage(0, reserved_tokens, reserved_usd), elapsed,
                                     step.estimate)  # fmt: skip
                if limit:
                    stopped = {"step": step.name, "limit": limit}
                    break
                started.add(step.name)
                task = asyncio.create_task(step.run({a: outputs[a] for a in step.after}))
                in_flight[task] = step
        if not in_flight:
            break
        done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            step = in_flight.pop(task)
            outcome = task.result()
            outputs[step.name] = outcome.value
            tokens += outcome.tokens
            usd += outcome.usd
    return {
        "outputs": outputs,
        "spent": {"ms": (loop.time() - t0) * 1000, "tokens": tokens, "usd": usd},
        "stopped": stopped,
    }
