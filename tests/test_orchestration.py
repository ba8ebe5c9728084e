"""The step-graph runner (infralab.engines.serving.orchestrate): schedules on a virtual clock, the
cache, the budget and its error, additive costs, and agreement with lab 10's reference."""

from __future__ import annotations

import asyncio
import functools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infralab.core.errors import InfralabError
from infralab.engines.serving import orchestrate as o
from infralab.engines.serving import orchestration_sim as sim
from infralab.tooling.checks.references import lab10 as R10


def _spec(steps, budget=None):
    return {
        "steps": [
            {"name": n, "after": list(a), "seconds": s, "tokens": t, "usd": t * 2**-16,
             "actual_tokens": t, "actual_usd": t * 2**-16}
            for n, a, s, t in steps
        ],
        "budget": budget or {},
    }  # fmt: skip


KIT = functools.partial(o.run_graph, strict=False)


def test_parallel_steps_take_the_longest_not_the_sum():
    fan = _spec([("a", (), 0.5, 10), ("b", (), 0.25, 10), ("c", (), 0.125, 10)])
    out = sim.simulate(KIT, fan)
    assert out["elapsed_ms"] == 500.0  # max(500, 250, 125), not 875
    assert {name: e[0] for name, e in out["events"].items()} == {"a": 0.0, "b": 0.0, "c": 0.0}
    chain = _spec([("a", (), 0.5, 10), ("b", ("a",), 0.25, 10), ("c", ("b",), 0.125, 10)])
    out = sim.simulate(KIT, chain)
    assert out["elapsed_ms"] == 875.0
    assert out["events"]["b"][0] == out["events"]["a"][1]  # starts the moment a ends


def test_a_step_receives_its_dependencies_values():
    spec = _spec([("x", (), 0.25, 1), ("y", (), 0.5, 1), ("z", ("y", "x"), 0.125, 1)])
    out = sim.simulate(KIT, spec)
    assert out["received"]["z"] == ["x", "y"]
    assert out["report"]["outputs"]["z"] == "z(x(),y())"
    assert out["events"]["z"][0] == 500.0


def test_cost_compounds_additively_over_steps():
    spec = _spec([("a", (), 0.25, 30), ("b", ("a",), 0.25, 50), ("c", (), 0.5, 7)])
    spent = sim.simulate(KIT, spec)["report"]["spent"]
    assert spent["tokens"] == 87 and spent["usd"] == 87 * 2**-16
    assert (o.Usage(1.0, 2, 0.5) + o.Usage(2.0, 3, 0.25)) == o.Usage(3.0, 5, 0.75)


def test_a_budget_refuses_the_step_that_would_break_it_and_raises_the_kits_error():
    calls = []

    def step(name, after=(), tokens=40):
        async def run(inputs):
            calls.append(name)
            await asyncio.sleep(0.01)
            return o.Outcome(name, tokens=tokens, usd=0.0)

        return o.Step(name, run, tuple(after), o.Usage(10.0, tokens, 0.0))

    steps = [step("retrieve", tokens=0), step("draft", ["retrieve"]), step("polish", ["draft"])]
    with pytest.raises(o.BudgetExceeded) as err:
        sim.run_virtual(lambda: o.run_graph(steps, o.Budget(tokens=60)))
    assert isinstance(err.value, InfralabError) and err.value.hint
    assert err.value.report.stopped == ("polish", "tokens")
    assert err.value.report.spent.tokens == 40
    assert calls == ["retrieve", "draft"]  # the refused step never ran
    assert "polish" in str(err.value) and "tokens" in str(err.value)


def test_a_budget_exactly_met_is_not_exceeded():
    spec = _spec([("a", (), 0.25, 30), ("b", ("a",), 0.25, 30)], {"tokens": 60, "ms": 500.0})
    assert sim.simulate(KIT, spec)["report"]["stopped"] is None
    spec["budget"] = {"tokens": 59}
    assert sim.simulate(KIT, spec)["report"]["stopped"] == {"step": "b", "limit": "tokens"}
    spec["budget"] = {"ms": 499.0}
    assert sim.simulate(KIT, spec)["report"]["stopped"] == {"step": "b", "limit": "ms"}


def test_the_latency_limit_is_reported_before_tokens_and_usd():
    b = o.Budget(ms=10.0, tokens=5, usd=0.0)
    assert o.would_exceed(b, o.Usage(), 0.0, o.Usage(20.0, 10, 1.0)) == "ms"
    assert o.would_exceed(b, o.Usage(), 0.0, o.Usage(5.0, 10, 1.0)) == "tokens"
    assert o.would_exceed(b, o.Usage(), 0.0, o.Usage(5.0, 5, 1.0)) == "usd"
    assert o.would_exceed(o.Budget(), o.Usage(0, 10**9, 1e9), 1e9, o.Usage(1e9, 1, 1.0)) is None


def test_running_steps_finish_after_a_refusal_and_no_new_one_starts():
    spec = _spec([("long", (), 0.5, 10), ("short", (), 0.125, 10), ("next", ("short",), 0.25, 10)],
                 {"tokens": 25})  # fmt: skip
    out = sim.simulate(KIT, spec)
    # at 125 ms: 10 used by short + 10 reserved for long + 10 for next > 25
    assert out["report"]["stopped"] == {"step": "next", "limit": "tokens"}
    assert "next" not in out["events"] and out["elapsed_ms"] == 500.0  # long still finished


def test_cache_hits_skip_the_call_and_cost_nothing():
    calls = []

    async def llm(inputs):
        calls.append(1)
        await asyncio.sleep(0.2)
        return o.Outcome("answer", tokens=50, usd=0.001)

    cache = o.StepCache()
    key = o.StepCache.key("model", "prompt", 0.0)
    steps = [o.Step("answer", llm, (), o.Usage(200.0, 50, 0.001), cache_key=key)]
    first = sim.run_virtual(lambda: o.run_graph(steps, cache=cache))
    second = sim.run_virtual(lambda: o.run_graph(steps, cache=cache))
    assert len(calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert first.spent == o.Usage(200.0, 50, 0.001)
    assert second.spent == o.Usage(0.0, 0, 0.0) and second.steps[0].cached
    assert second.outputs == first.outputs
    # a hit needs no budget: it is free
    third = sim.run_virtual(lambda: o.run_graph(steps, o.Budget(0.0, 0, 0.0), cache=cache))
    assert third.stopped is None


def test_bad_graphs_get_the_kits_error_with_a_hint():
    async def noop(inputs):
        return o.Outcome(None)

    bad = [
        [o.Step("a", noop), o.Step("a", noop)],
        [o.Step("a", noop, ("ghost",))],
        [o.Step("a", noop, ("b",)), o.Step("b", noop, ("a",))],
    ]
    for steps in bad:
        with pytest.raises(o.OrchestrationError) as err:
            sim.run_virtual(lambda s=steps: o.run_graph(s))
        assert err.value.hint


def test_a_step_that_returns_no_outcome_is_named():
    async def plain(inputs):
        return "text"

    with pytest.raises(o.OrchestrationError, match="'w'"):
        sim.run_virtual(lambda: o.run_graph([o.Step("w", plain)]))


def test_the_virtual_clock_reports_a_deadlock_instead_of_hanging():
    async def forever(inputs):
        await asyncio.get_running_loop().create_future()

    with pytest.raises(o.OrchestrationError, match="never happens"):
        sim.run_virtual(lambda: o.run_graph([o.Step("w", forever)]))


def test_the_kit_and_lab_10s_reference_agree_on_random_graphs():
    rng = random.Random(10)
    stops = 0
    for _ in range(150):
        spec = sim.random_spec(rng)
        kit, ref = sim.simulate(KIT, spec), sim.simulate(R10.run_graph, spec)
        assert kit.pop("used_kit") == "run_graph" and ref.pop("used_kit") == ""
        assert kit == ref, spec
        stops += kit["report"]["stopped"] is not None
    assert 20 < stops < 130  # the random budgets bind sometimes, not always


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from("abcdefg"), st.floats(0, 1e4), min_size=0, max_size=7),
       st.randoms(use_true_random=False))  # fmt: skip
def test_critical_path_matches_the_reference(durations, rnd):
    names = sorted(durations)
    after = {n: sorted(rnd.sample(names[:i], rnd.randint(0, i))) for i, n in enumerate(names)}
    got = o.critical_path_ms(durations, after)
    assert got == pytest.approx(R10.critical_path_ms(durations, after))
    assert got <= sum(durations.values()) + 1e-9
    assert got >= max(durations.values(), default=0.0)


def test_critical_path_refuses_a_cycle():
    with pytest.raises(o.OrchestrationError):
        o.critical_path_ms({"a": 1.0, "b": 1.0}, {"a": ["b"], "b": ["a"]})


def test_kv_cache_bytes_is_the_generators_formula():
    from infralab.engines.models import decoder

    cfg = decoder.Config(30, 576, 1536, 9, 3, 64, 49152, 1e5, 1e-5, 8192, 1, 2)
    assert (
        o.kv_cache_bytes(1, cfg.layers, cfg.kv_heads, cfg.head_dim, 4)
        == cfg.kv_bytes_per_token_fp32
    )
    assert o.kv_cache_bytes(8192, 30, 3, 64, 4) == 8192 * 46080


def test_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50):
        x = rng.exponential(size=n).tolist()
        for q in (50, 90, 99):
            assert o.percentile(x, q) == pytest.approx(float(np.percentile(x, q)))
    with pytest.raises(o.OrchestrationError):
        o.percentile([], 50)
