"""Lab 02's micro-batcher judgements: the random arrival plans a student's ``MicroBatcher`` is
driven by (simulated clock, in the student's kernel) and the rules its trace is judged by here,
in the grader. Used by ``lab02.check_micro_batcher``.
"""

from __future__ import annotations

from typing import Any

from infralab.tooling.checks import (
    CheckFailed,
    expect,
)

BATCHER_HINT = (
    "Queue each submitted item with a future; a worker task (started on the first submit) takes "
    "the oldest item, then keeps taking items until max_batch_size are in hand or max_wait_s has "
    "passed since the oldest arrived (use the loop's clock: asyncio.wait_for or loop.time()), "
    "calls fn once on the whole list, and gives each future its own answer. If the call fails, "
    "try each item alone so that only the bad one gets the error."
)


WAIT_TOLERANCE_S = 1e-6  # simulated time: a correct batcher is exact to float rounding


def _plans():
    from hypothesis import strategies as st

    def build(size: int, wait: float, gaps: list[int], bad: list[int]) -> dict[str, Any]:
        unit = wait / 7.5  # arrivals on a grid of wait / 7.5: never exactly at a deadline
        arrivals, now = [], 0.0
        for gap in gaps:
            now += gap * unit
            arrivals.append(now)
        return {"max_batch_size": size, "max_wait_s": wait, "arrivals": arrivals,
                "bad": sorted({b % len(gaps) for b in bad})}  # fmt: skip

    gaps = st.lists(st.one_of(st.just(0), st.integers(0, 3), st.integers(0, 20)), min_size=1,
                    max_size=30)  # fmt: skip
    return st.builds(build, st.integers(1, 8), st.sampled_from([0.002, 0.005, 0.02]), gaps,
                     st.lists(st.integers(0, 10_000), max_size=3))  # fmt: skip


def _first_dispatch(calls: list) -> tuple[dict[int, float], list[tuple[float, list[int]]]]:
    """When each item first went to the model, and the calls that carried new items."""
    first: dict[int, float] = {}
    groups = []
    for when, items in calls:
        new = [i for i in items if isinstance(i, int) and i not in first]
        for i in new:
            first[i] = float(when)
        if new:
            groups.append((float(when), new))
    return first, groups


def _judge_batcher(plan: dict[str, Any], trace: Any, ref: Any) -> None:
    """Fail with the first rule the batcher broke on this arrival plan, naming the plan."""
    size, wait = plan["max_batch_size"], plan["max_wait_s"]
    arrivals, bad = plan["arrivals"], set(plan["bad"])
    where = _plan_text(size, wait, arrivals, bad)
    _judge_trace_shape(trace, where)
    calls, answers = trace["calls"], trace["answers"]
    _judge_answers(calls, answers, len(arrivals), size, bad, where)
    first, groups = _first_dispatch(calls)
    _judge_waits(arrivals, first, groups, size, wait, where)
    _judge_grouping(ref, arrivals, groups, size, wait, where)


def _plan_text(size: int, wait: float, arrivals: list[float], bad: set[int]) -> str:
    """The arrival plan in words, for every failure message about it."""
    n = len(arrivals)
    return (f"max_batch_size={size}, max_wait_s={wait:g}, {n} requests arriving at "
            f"{', '.join(f'{1e3 * t:.3g}' for t in arrivals[:8])}{' ...' if n > 8 else ''} ms"
            + (f", the model failing on request {sorted(bad)}" if bad else ""))  # fmt: skip


def _judge_trace_shape(trace: Any, where: str) -> None:
    """The batcher could be driven and raised nothing (a placeholder is named as such)."""
    expect(isinstance(trace, dict) and {"calls", "answers", "problem"} <= set(trace),
           "The batcher could not be driven.", BATCHER_HINT)  # fmt: skip
    if trace["problem"]:
        if "NotImplementedError" in str(trace["problem"]):
            raise CheckFailed("MicroBatcher is still the placeholder.",
                              "Replace `raise NotImplementedError` with code.")  # fmt: skip
        raise CheckFailed(f"With {where}: {str(trace['problem'])[:300]}", BATCHER_HINT)


def _judge_answers(
    calls: list, answers: list, n: int, size: int, bad: set[int], where: str
) -> None:
    """Calls within max_batch_size; each request answered once, with its own answer or error."""
    for _when, items in calls:
        expect(1 <= len(items) <= size,
               f"With {where}: a model call carried {len(items)} items.",
               "A call takes at least one item and at most max_batch_size.")  # fmt: skip
    got = {}
    for item, kind, value, _when in answers:
        expect(item not in got, f"With {where}: request {item} was answered twice.",
               BATCHER_HINT)  # fmt: skip
        got[item] = (kind, value)
    for i in range(n):
        expect(i in got, f"With {where}: request {i} never got an answer.", BATCHER_HINT)
        kind, value = got[i]
        if i in bad:
            expect(kind == "error",
                   f"With {where}: request {i}, which the model cannot process, got {value!r} "
                   "instead of an error.",
                   "A request whose item fails should see the model's exception.")  # fmt: skip
        else:
            expect(kind == "ok",
                   f"With {where}: request {i} got {value[:80]!r}"
                   + (" although only another request's item was bad." if bad else "."),
                   BATCHER_HINT)  # fmt: skip
            expect(value == f"answer to request {i}",
                   f"With {where}: request {i} got {value[:80]!r}, not its own answer.",
                   "Answers come back in the order of the items you gave fn: give the k-th "
                   "answer to the k-th item's future.")  # fmt: skip


def _judge_waits(
    arrivals: list[float],
    first: dict[int, float],
    groups: list[tuple[float, list[int]]],
    size: int,
    wait: float,
    where: str,
) -> None:
    """No request waits past max_wait; a call that is not full waited max_wait and took all."""
    for i, arrived in enumerate(arrivals):
        waited = first[i] - arrived
        expect(waited <= wait + WAIT_TOLERANCE_S,
               f"With {where}: request {i} waited {1e3 * waited:.4g} ms before its model call, "
               f"more than max_wait ({1e3 * wait:g} ms).",
               "The clock starts when the oldest item of a batch arrives, and it is the "
               "event loop's clock (loop.time()), not time.time(). " + BATCHER_HINT)  # fmt: skip
    for when, new in groups:
        if len(new) >= size:
            continue
        oldest = min(arrivals[i] for i in new)
        expect(when >= oldest + wait - WAIT_TOLERANCE_S,
               f"With {where}: a call of {len(new)} item(s) went after "
               f"{1e3 * (when - oldest):.3g} ms, neither full nor at max_wait.",
               "A batch that is not full waits until its oldest item has waited max_wait: "
               "that wait is what lets other requests join. " + BATCHER_HINT)  # fmt: skip
        left = [i for i, t in enumerate(arrivals)
                if t < when - WAIT_TOLERANCE_S and first[i] > when + WAIT_TOLERANCE_S]  # fmt: skip
        expect(not left,
               f"With {where}: a call at {1e3 * when:.4g} ms had room but left request "
               f"{left[:1]} waiting.",
               "When a call goes, take every waiting item, up to max_batch_size.")  # fmt: skip


def _judge_grouping(
    ref: Any,
    arrivals: list[float],
    groups: list[tuple[float, list[int]]],
    size: int,
    wait: float,
    where: str,
) -> None:
    """With the hidden reference present: the first calls are grouped as the rule groups them."""
    if ref is not None:
        want = ref.batch_plan(arrivals, size, wait)
        mine = [(when, len(new)) for when, new in groups]
        same = len(mine) == len(want) and all(
            abs(a[0] - b[0]) <= WAIT_TOLERANCE_S and a[1] == b[1]
            for a, b in zip(mine, want, strict=True)
        )
        expect(same, f"With {where}: your batcher made {len(mine)} first calls of sizes "
                     f"{[m[1] for m in mine][:12]}, which is not how the rule groups them.",
               BATCHER_HINT)  # fmt: skip
