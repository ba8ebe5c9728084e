"""Checks for lab 10 (orchestrate an agent request): the longest chain, the budget rule, the
step-graph runner, and a live run that the chat server's own counters confirm.

The runner is tested on random step graphs and budgets (hypothesis) on a virtual clock
(:func:`infralab.engines.serving.orchestration_sim.simulate`, run beside the student's function), so the
schedules compare exactly and a busy machine cannot fail correct code. The references are in
``infralab.tooling.checks.references.lab10``; where they are absent (the student release) each check
tests properties instead: a chain adds up, a fan-out takes the longest, a zero budget runs
nothing. The kit's own orchestrator, handed in or called, is refused.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from infralab.engines.serving import orchestrate as orch
from infralab.engines.serving import orchestration_sim as sim
from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    expect,
    points,
    public_pass,
    refuse_kit_function,
    run_beside,
    run_student_function,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_budget_stop",
    "check_critical_path",
    "check_live_run",
    "check_run_graph",
    "check_would_exceed",
]


PATH_HINT = (
    "A step ends at its own duration plus the latest end among the steps it comes after (0 "
    "when it has none); the request ends when its last step ends: take the largest end."
)
BUDGET_HINT = (
    "Check ms first (elapsed_ms + estimate.ms), then tokens (committed.tokens + "
    "estimate.tokens), then usd; a limit of None never binds, and a total exactly equal to "
    "the limit is allowed (only '>' exceeds). Return the name of the first broken limit."
)
RUN_HINTS = {
    "error": "Run your run_graph on the small example above and read the error.",
    "kit": "The lab asks for your own runner: write it with asyncio yourself.",
    "starts": "Start a step as soon as every step in its `after` has finished (create a task "
    "for each ready step, then asyncio.wait(..., return_when=FIRST_COMPLETED)); start steps "
    "that become ready together in the order given; pass {name: value} of its dependencies.",
    "stopped": "Before starting a step, call would_exceed with the time since the start "
    "(the event loop's clock: loop.time()) and the committed tokens and USD: actual usage of "
    "finished steps plus the estimates of running ones. At the first refusal start nothing more, "
    "let the running steps finish, and report {'step': name, 'limit': limit}.",
    "spent": "spent['tokens'] and spent['usd'] add up the Outcome of every step that ran (the "
    "actual usage, not the estimates); spent['ms'] is the time from start to the end.",
    "outputs": "outputs maps every finished step's name to its Outcome's value.",
}


def _ref() -> Any:
    return checks.reference_module("lab10")


# ---------------------------------------------------------------- 1. the longest chain
def _dag(rnd: random.Random, n: int) -> tuple[dict[str, float], dict[str, list[str]]]:
    names = [f"step{i}" for i in range(n)]
    rnd.shuffle(names)
    durations = {name: float(rnd.choice([0, rnd.randint(1, 2000), rnd.random() * 500]))
                 for name in names}  # fmt: skip
    after = {}
    for i, name in enumerate(names):
        deps = sorted(rnd.sample(names[:i], rnd.randint(0, min(3, i))))
        if deps or rnd.random() < 0.5:
            after[name] = deps
    return durations, after


def _path_strategy() -> Any:
    from hypothesis import strategies as st

    return st.builds(lambda rnd, n: _dag(rnd, n), st.randoms(use_true_random=False),
                     st.integers(0, 8))  # fmt: skip


PATH_EDGES = [
    ({}, {}),
    ({"only": 120.0}, {}),
    ({"a": 100.0, "b": 50.0, "c": 30.0}, {"c": ["a", "b"]}),
    ({"a": 100.0, "b": 50.0, "c": 30.0}, {"b": ["a"], "c": ["b"]}),
    ({"x": 5.0, "y": 7.0}, {"x": [], "y": []}),
]


@points(2)
def check_critical_path(critical_path_ms: Callable[..., Any]) -> CheckPassed:
    """The request's latency when independent steps overlap: the longest chain."""
    ref = _ref()
    kit = [orch.critical_path_ms, *([ref.critical_path_ms] if ref else [])]
    refuse_kit_function(critical_path_ms, kit, name="critical_path_ms", sample_args=PATH_EDGES[2])
    if ref is None:
        return _public_path(critical_path_ms)
    tried = agrees_with_reference(
        critical_path_ms, ref.critical_path_ms, _path_strategy(), name="critical_path_ms",
        hint=PATH_HINT, edge_cases=PATH_EDGES, max_examples=60,
    )  # fmt: skip
    return CheckPassed(f"critical_path_ms is right on {tried} step graphs.")


def _public_path(fn: Callable[..., Any]) -> CheckPassed:
    rnd = random.Random(10)
    for _ in range(20):
        durations, _ = _dag(rnd, rnd.randint(1, 6))
        names = list(durations)
        chain = {n: [names[i - 1]] for i, n in enumerate(names) if i}
        got = call_number(fn, durations, chain, name="critical_path_ms")
        expect(math.isclose(got, sum(durations.values()), rel_tol=1e-9, abs_tol=1e-9),
               f"critical_path_ms on a chain of {len(names)} steps returned {got:g}, not the "
               "sum of their durations.", PATH_HINT)  # fmt: skip
        got = call_number(fn, durations, {}, name="critical_path_ms")
        expect(math.isclose(got, max(durations.values()), rel_tol=1e-9, abs_tol=1e-9),
               f"critical_path_ms on {len(names)} independent steps returned {got:g}, not the "
               "longest duration.", PATH_HINT)  # fmt: skip
    return public_pass("chains add up and independent steps overlap")


# ---------------------------------------------------------------- 2. the budget rule
def _budget_case(rnd: random.Random) -> tuple[Any, Any, float, Any]:
    def cap(top: int) -> Any:
        return None if rnd.random() < 0.3 else rnd.randint(0, top)

    budget = orch.Budget(
        cap(400), cap(400), None if rnd.random() < 0.3 else rnd.randint(0, 400) / 64
    )
    committed = orch.Usage(0.0, rnd.randint(0, 300), rnd.randint(0, 300) / 64)
    estimate = orch.Usage(float(rnd.randint(0, 200)), rnd.randint(0, 200), rnd.randint(0, 200) / 64)
    return budget, committed, float(rnd.randint(0, 300)), estimate


def _budget_strategy() -> Any:
    from hypothesis import strategies as st

    return st.builds(_budget_case, st.randoms(use_true_random=False))


BUDGET_EDGES = [
    (orch.Budget(), orch.Usage(), 0.0, orch.Usage(10.0, 10, 1.0)),
    (orch.Budget(100.0, 100, 1.0), orch.Usage(0.0, 60, 0.5), 60.0, orch.Usage(40.0, 40, 0.5)),
    (orch.Budget(100.0, 100, 1.0), orch.Usage(0.0, 60, 0.5), 60.0, orch.Usage(41.0, 41, 0.75)),
    (orch.Budget(None, 100, 1.0), orch.Usage(0.0, 60, 0.5), 60.0, orch.Usage(999.0, 41, 0.75)),
    (orch.Budget(None, None, 1.0), orch.Usage(0.0, 60, 0.5), 60.0, orch.Usage(999.0, 999, 0.75)),
    (orch.Budget(0.0, 0, 0.0), orch.Usage(), 0.0, orch.Usage()),
]


@points(2)
def check_would_exceed(would_exceed: Callable[..., Any]) -> CheckPassed:
    """The budget rule: which limit starting a step would break, in the order ms, tokens, usd."""
    ref = _ref()
    kit = [orch.would_exceed, *([ref.would_exceed] if ref else [])]
    refuse_kit_function(would_exceed, kit, name="would_exceed", sample_args=BUDGET_EDGES[2])
    if ref is None:
        for args, want in zip(BUDGET_EDGES, [None, None, "ms", "tokens", "usd", None], strict=True):
            got = run_student_function(would_exceed, *args, name="would_exceed")
            expect(got == want, f"would_exceed{args} returned {got!r}.", BUDGET_HINT)
        return public_pass("six budgets, from none to exactly met, give the rule's answers")
    tried = agrees_with_reference(
        would_exceed, ref.would_exceed, _budget_strategy(), name="would_exceed",
        hint=BUDGET_HINT, edge_cases=BUDGET_EDGES, max_examples=100,
    )  # fmt: skip
    return CheckPassed(f"would_exceed is right on {tried} budgets.")


# ---------------------------------------------------------------- 3. the runner
def _spec(steps: list[tuple[str, list[str], float, int, int]], budget: dict[str, Any]) -> dict:
    return {
        "steps": [{"name": n, "after": a, "seconds": s, "tokens": t, "usd": t * 2**-16,
                   "actual_tokens": u, "actual_usd": u * 2**-16} for n, a, s, t, u in steps],
        "budget": budget,
    }  # fmt: skip


RUN_EDGES = [
    _spec([("only", [], 0.25, 10, 10)], {}),
    _spec([("a", [], 0.5, 10, 10), ("b", [], 0.25, 10, 10), ("c", [], 0.125, 10, 10),
           ("join", ["a", "b", "c"], 0.0625, 5, 5)], {}),
    _spec([("a", [], 0.5, 10, 10), ("b", ["a"], 0.25, 10, 10), ("c", ["b"], 0.125, 10, 10)], {}),
    _spec([("z", ["y"], 0.25, 30, 30), ("y", [], 0.5, 30, 30)], {"tokens": 60, "ms": 750.5}),
    _spec([("a", [], 0.5, 10, 10)], {"ms": 0.5}),
    _spec([("long", [], 0.5, 10, 10), ("short", [], 0.125, 10, 10), ("next", ["short"], 0.25, 10, 10)],
          {"tokens": 25}),
    _spec([("a", [], 0.125, 100, 20), ("b", ["a"], 0.125, 100, 100)], {"tokens": 130}),
    _spec([("a", [], 0.125, 10, 10), ("b", [], 0.25, 10, 10), ("c", ["a"], 0.5, 10, 10)],
          {"ms": 500.5}),
]  # fmt: skip


def _view(answer: Any) -> dict[str, Any]:
    """What the rules decide, from a simulation: starts, inputs, stop, spending, outputs."""
    if not isinstance(answer, dict):
        return {"error": f"simulate returned {type(answer).__name__}"}
    if answer.get("error"):
        return {"error": answer["error"]}
    report = answer.get("report")
    if not isinstance(report, dict):
        return {"error": f"run_graph returned {type(report).__name__}, not a dict"}
    spent = report.get("spent") if isinstance(report.get("spent"), dict) else {}
    return {
        "starts": {k: round(v[0], 6) for k, v in sorted(answer.get("events", {}).items())},
        "received": dict(sorted(answer.get("received", {}).items())),
        "stopped": report.get("stopped"),
        "spent": {"tokens": spent.get("tokens"), "usd": spent.get("usd"), "ms": spent.get("ms")},
        "outputs": report.get("outputs"),
        "elapsed_ms": answer.get("elapsed_ms"),
        "used_kit": answer.get("used_kit", ""),
    }


def _placeholder(got: dict[str, Any]) -> None:
    if str(got.get("error", "")).startswith("NotImplementedError"):
        raise CheckFailed(
            "run_graph is still the placeholder.", "Replace `raise NotImplementedError` with code."
        )


def _differs(got: dict[str, Any], want: dict[str, Any]) -> str | None:
    _placeholder(got)
    if got.get("used_kit"):
        return "kit"
    if "error" in got:
        return "error"
    if got["starts"] != want["starts"] or got["received"] != want["received"]:
        return "starts"
    if got["stopped"] != want["stopped"]:
        return "stopped"
    for key in ("tokens", "usd", "ms"):
        g, w = got["spent"][key], want["spent"][key]
        if not (isinstance(g, (int, float)) and math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-9)):
            return "spent"
    if got["outputs"] != want["outputs"]:
        return "outputs"
    return None


def _describe(spec: dict[str, Any], got: dict[str, Any], kind: str) -> str:
    graph = ", ".join(f"{s['name']}({s['seconds'] * 1000:g} ms, {s['tokens']} tok"
                      f"{', after ' + '+'.join(s['after']) if s['after'] else ''})"
                      for s in spec["steps"])  # fmt: skip
    budget = {k: v for k, v in spec["budget"].items() if v is not None} or "none"
    if kind == "error":
        return f"On steps [{graph}] with budget {budget}, run_graph raised {got['error']}."
    if kind == "kit":
        return "run_graph calls the kit's own orchestrator (infralab.engines.serving.orchestrate)."
    shown = {"starts": f"started steps at {got.get('starts')} ms",
             "stopped": f"reported stopped = {got.get('stopped')}",
             "spent": f"reported spent = {got.get('spent')}",
             "outputs": f"returned outputs {str(got.get('outputs'))[:160]}"}[kind]  # fmt: skip
    return (
        f"On steps [{graph}] with budget {budget}, your run_graph {shown}: not what the rules give."
    )


def _compare(fn: Any, reference: Any, spec: dict[str, Any]) -> None:
    got = _view(run_beside(fn, sim.simulate, fn, spec))
    want = _view(sim.simulate(reference, spec))
    kind = _differs(got, want)
    if kind is not None:
        raise CheckFailed(_describe(spec, got, kind), RUN_HINTS[kind])


@points(4)
def check_run_graph(run_graph: Callable[..., Any]) -> CheckPassed:
    """The runner on random step graphs and budgets, on a virtual clock, against the rules."""
    if not callable(run_graph):
        raise CheckFailed("run_graph should be an async function.", "Define it with `async def`.")
    ref = _ref()
    refuse_kit_function(run_graph, [orch.run_graph, *([ref.run_graph] if ref else [])],
                        name="run_graph")  # fmt: skip
    if ref is None:
        return _public_run(run_graph)
    for spec in RUN_EDGES:
        _compare(run_graph, ref.run_graph, spec)
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    tried = [len(RUN_EDGES)]

    @settings(max_examples=40, deadline=None, derandomize=not checks._GRADING.get(),
              database=None, print_blob=False, suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(st.randoms(use_true_random=False))
    def random_graphs(rnd: random.Random) -> None:
        tried[0] += 1
        _compare(run_graph, ref.run_graph, sim.random_spec(rnd))

    try:
        random_graphs()
    except CheckFailed as exc:
        raise CheckFailed(exc.problem, exc.hint) from None
    return CheckPassed(f"run_graph schedules, stops and adds up like the rules on {tried[0]} "
                       "step graphs and budgets.")  # fmt: skip


def _public_run(fn: Any) -> CheckPassed:
    """Properties with answers any reader of the rules can work out by hand."""

    def view(spec: dict[str, Any]) -> dict[str, Any]:
        got = _view(run_beside(fn, sim.simulate, fn, spec))
        _placeholder(got)
        if got.get("used_kit"):
            raise CheckFailed(_describe(spec, got, "kit"), RUN_HINTS["kit"])
        if "error" in got:
            raise CheckFailed(_describe(spec, got, "error"), RUN_HINTS["error"])
        return got

    fan = view(RUN_EDGES[1])
    expect(fan["starts"] == {"a": 0.0, "b": 0.0, "c": 0.0, "join": 500.0},
           f"Three independent steps and a join: your run started them at {fan['starts']} ms.",
           RUN_HINTS["starts"])  # fmt: skip
    expect(fan["received"].get("join") == ["a", "b", "c"],
           f"The join step received {fan['received'].get('join')}.", RUN_HINTS["starts"])  # fmt: skip
    chain = view(RUN_EDGES[2])
    expect(chain["starts"] == {"a": 0.0, "b": 500.0, "c": 750.0},
           f"A chain of three: your run started them at {chain['starts']} ms.", RUN_HINTS["starts"])  # fmt: skip
    expect(chain["spent"]["tokens"] == 30 and chain["stopped"] is None,
           f"A chain of three steps of 10 tokens, no budget: you report {chain['spent']} and "
           f"stopped = {chain['stopped']}.", RUN_HINTS["spent"])  # fmt: skip
    zero = view(RUN_EDGES[4])
    expect(zero["starts"] == {} and zero["stopped"] == {"step": "a", "limit": "ms"},
           f"A 500 ms step under a 0.5 ms budget: your run started {list(zero['starts'])} and "
           f"reported stopped = {zero['stopped']}.", RUN_HINTS["stopped"])  # fmt: skip
    return public_pass("a fan-out overlaps, a chain adds up, a tiny budget runs nothing")


# ---------------------------------------------------------------- 4. the live run
def _counted(metrics: Any) -> tuple[float, float]:
    prom = metrics.get("prometheus", {}) if isinstance(metrics, dict) else {}
    tokens = prom.get("infralab_chat_prompt_tokens_total", 0.0) + prom.get(
        "infralab_chat_completion_tokens_total", 0.0
    )
    return float(tokens), float(prom.get("infralab_chat_completions_total", 0.0))


@points(2)
def check_live_run(report: Any, before: Any, after: Any) -> CheckPassed:
    """Your runner's live request against what the chat server itself counted."""
    return _live(report, before, after)


@points(1)
def check_budget_stop(report: Any, before: Any, after: Any) -> CheckPassed:
    """The live request your budget stopped: it says where, and the server saw no more."""
    if isinstance(report, dict) and report.get("stopped") is None and "spent" in report:
        raise CheckFailed("Your run_graph ran the whole request: stopped is None.",
                          RUN_HINTS["stopped"])  # fmt: skip
    stop = report.get("stopped") if isinstance(report, dict) else None
    if isinstance(stop, dict) and stop.get("step") in (report.get("outputs") or {}):
        raise CheckFailed(f"Your report says {stop.get('step')!r} was refused, yet lists its "
                          "output.", RUN_HINTS["stopped"])  # fmt: skip
    passed = _live(report, before, after)
    return CheckPassed(f"stopped before {stop.get('step')!r} ({stop.get('limit')}); {passed}")


def _live(report: Any, before: Any, after: Any) -> CheckPassed:
    if not isinstance(report, dict) or not isinstance(report.get("spent"), dict):
        raise CheckFailed(
            "report should be the dict your run_graph returned for the live request.",
            "Run the live cell with your run_graph and pass its result.",
        )
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise CheckFailed("Pass the server's metrics before and after the request.",
                          "llm.metrics() before and after the cell that runs it.")  # fmt: skip
    tokens0, calls0 = _counted(before)
    tokens1, calls1 = _counted(after)
    model_steps = [k for k in (report.get("outputs") or {}) if str(k).startswith("model_")]
    reported = report["spent"].get("tokens")
    expect(calls1 - calls0 == len(model_steps) and model_steps,
           f"The server answered {calls1 - calls0:.0f} model calls during the request; your report "
           f"lists {len(model_steps)} model steps.",
           "Run the request once between the two metrics() calls, with your run_graph.")  # fmt: skip
    expect(isinstance(reported, (int, float)) and reported == tokens1 - tokens0,
           f"Your report says {reported!r} tokens; the server counted a different number.",
           RUN_HINTS["spent"])  # fmt: skip
    return CheckPassed(f"{len(model_steps)} model calls and {reported:.0f} tokens, as the server "
                       "counted them.")  # fmt: skip
