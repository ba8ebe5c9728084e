"""Lesson 10's live request (infralab.economics.agent) without servers: the step graph it builds,
how it prices steps (the kit's billing functions), composed latencies, the saved record and
the charts."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from infralab.core import results
from infralab.economics import agent
from infralab.economics.costs import billing, unit
from infralab.engines.serving import orchestrate as orch
from infralab.engines.serving import orchestration_sim as sim
from infralab.presentation.charts import multistep as charts


class _Index:
    def embed_query(self, q):
        return None

    def search(self, *args, **kwargs):
        return []


def _fake_live(delay_s: float = 0.25) -> agent.Live:
    live = agent.Live("http://unused", "m", _Index(), vcpus=2.0)

    async def chat(prompt, max_tokens=None):
        await asyncio.sleep(delay_s)
        return orch.Outcome({"text": prompt[-12:], "ms": delay_s * 1e3, "prompt_tokens": 7,
                             "completion_tokens": 3}, 10, 0.001)  # fmt: skip

    live.chat = chat  # type: ignore[method-assign]
    return live


def test_a_chain_waits_for_each_call_and_a_fan_out_does_not():
    live = _fake_live()
    chain = sim.run_virtual(lambda: agent.run_request(live, "q", 3))
    fan = sim.run_virtual(lambda: agent.run_request(live, "q", 3, parallel=True))
    starts = {s.name: s.start_ms for s in fan.steps}
    assert starts["model_0"] == starts["model_1"] == starts["model_2"]
    assert chain.spent.ms >= 750.0 > fan.spent.ms >= 250.0
    assert chain.spent.tokens == fan.spent.tokens == 30  # the same calls, the same bill
    assert chain.spent.usd == pytest.approx(fan.spent.usd, rel=0.01)  # retrieval: real time


def test_steps_carry_the_estimate_and_a_cache_key_only_with_a_cache():
    live = _fake_live()
    est = orch.Usage(300.0, 50, 0.002)
    plain = agent.request_steps(live, "q", 2, estimate=est)
    assert [s.name for s in plain] == ["retrieve", "model_0", "model_1", "tool"]
    assert plain[2].after == ("retrieve", "model_0") and plain[3].after == ("model_0", "model_1")
    assert plain[1].estimate == est and all(s.cache_key is None for s in plain)
    keyed = agent.request_steps(live, "q", 2, cache=orch.StepCache())
    assert keyed[1].cache_key and keyed[1].cache_key != keyed[2].cache_key


def test_a_budget_stops_a_live_style_request_before_the_call_that_breaks_it():
    live = _fake_live()
    est = orch.Usage(250.0, 10, 0.001)
    with pytest.raises(orch.BudgetExceeded) as err:
        sim.run_virtual(
            lambda: agent.run_request(live, "q", 4, estimate=est, budget=orch.Budget(tokens=25))
        )
    assert err.value.report.stopped == ("model_2", "tokens")


def test_steps_are_priced_with_the_kits_billing_functions():
    mb = unit.lambda_memory_for(2.0)
    want = billing.lambda_function(1, 0.25, mb, measured_vcpus=2.0).monthly_usd
    assert agent.lambda_usd(0.25, 2.0) == want > 0
    assert agent.lambda_usd(0.5, 2.0) > agent.lambda_usd(0.25, 2.0)
    assert agent.api_usd(1000, 0) > 0


def test_composed_latency_sums_a_chain_and_takes_the_slowest_of_parallel_calls():
    samples = {"retrieve": [10.0], "tool": [5.0], "model": [100.0, 300.0]}
    chain = agent.compose(samples, ["retrieve", "model", "model", "tool"], False, 500)
    fan = agent.compose(samples, ["retrieve", "model", "model", "tool"], True, 500)
    assert set(chain) <= {215.0, 415.0, 615.0} and set(fan) <= {115.0, 315.0}
    assert agent.summary(chain)["p50_ms"] >= agent.summary(fan)["p50_ms"]


def test_the_multistep_record_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    mine = results.MultiStepResult(model_call_p50_ms=250.0, one_step_p50_ms=300.0,
                                   chain=[{"model_calls": 1, "latency_ms": 300.0}],
                                   command="test")  # fmt: skip
    results.save(mine)
    back = results.load("multistep", fallback=False)
    assert back.origin == "measured" and back.chain == mine.chain
    assert back.figure("model_call_p50_ms").unit == "ms"
    with pytest.raises(results.ResultError):
        results.save(results.MultiStepResult(model_call_p50_ms=0.0, one_step_p50_ms=1.0))


def test_charts_title_every_axis_with_its_unit():
    comp = pd.DataFrame({"model_calls": [1, 2], "percentile": ["p50", "p99"],
                         "source": ["measured live", "composed"], "latency_ms": [1.0, 2.0]})  # fmt: skip
    spec = charts.compounding_chart(comp).to_dict()
    text = str(spec)
    assert "request latency (ms)" in text and "model calls in the chain" in text
    cost = pd.DataFrame({"model_calls": [1], "step": ["model"], "usd_per_1k": [0.1]})
    assert "USD per 1,000 requests" in str(charts.cost_chart(cost).to_dict())
    ttft = pd.DataFrame({"prompt_tokens": [64, 256], "ttft_ms": [10.0, 40.0]})
    kv = pd.DataFrame({"tokens": [0, 8192], "kv_mb": [0.0, 377.5]})
    both = str(charts.context_chart(ttft, kv, 2048, 8192).to_dict())
    assert "time to first token (ms)" in both and "KV cache (MB)" in both
