"""One agent-style request against the kit's live servers: retrieval, model calls, a tool.

Why a module: lesson 10 and lab 10 measure how latency and cost compound when one question
fans out into several steps. The steps here are real calls: retrieval searches the kit's
RAG index (lesson 06), every model call goes over HTTP to the kit's chat server (lesson 04),
and the tool looks up a published price in the kit's price data. Each step returns an
:class:`~infralab.engines.serving.orchestrate.Outcome` whose USD is its measured duration billed as a
serverless function (:func:`infralab.economics.costs.billing.lambda_function`, the kit's one Lambda
formula) at the memory that buys this machine's vCPUs, so the request's cost is the sum of
its steps' bills.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infralab.economics.costs import billing, unit
from infralab.economics.costs import pricing as prices
from infralab.engines.rag import router
from infralab.engines.serving.orchestrate import Outcome, Step, StepCache, Usage, percentile

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "Live",
    "chain_sweep",
    "compose",
    "lambda_usd",
    "over_the_window",
    "request_steps",
    "routed_answer_path",
    "run_request",
    "snippet",
    "summary",
    "ttft_sweep",
]


def usable_vcpus() -> float:
    """The vCPUs this process may use (what a serverless function would need to match it)."""
    import os

    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return float(os.cpu_count() or 1)


def lambda_usd(seconds: float, vcpus: float | None = None) -> float:
    """One call of ``seconds`` (measured on ``vcpus``) billed as one Lambda invocation at
    the memory that buys those vCPUs: :func:`billing.lambda_function`, nothing new."""
    v = vcpus or usable_vcpus()
    bill = billing.lambda_function(1, seconds, unit.lambda_memory_for(v), measured_vcpus=v)
    return bill.monthly_usd


def api_usd(prompt_tokens: int, completion_tokens: int, model: str = "gpt-4o-mini") -> float:
    """The same tokens at a published API price (:func:`billing.managed_api`); another,
    much larger model, so a price comparison only."""
    row = prices.api_prices().set_index("model").loc[model]
    bill = billing.managed_api(
        1,
        prompt_tokens,
        completion_tokens,
        usd_per_1m_input=float(row["usd_per_1m_input_tokens"]),
        usd_per_1m_output=float(row["usd_per_1m_output_tokens"]),
    )
    return bill.monthly_usd


@dataclass
class Live:
    """What the steps call: the chat server's URL and model, the RAG index, a tenant."""

    base_url: str
    model: str
    index: Any
    tenant: str = "web3"
    max_tokens: int = 8
    vcpus: float = 0.0
    client: Any = None  # an httpx.AsyncClient, opened by :meth:`open`
    calls: int = 0  # model calls actually sent

    @classmethod
    def connect(cls, base_url: str, index: Any, **kwargs: Any) -> Live:
        """Ask the server for its model name; the async client opens on first use."""
        import httpx

        model = httpx.get(base_url + "/v1/models", timeout=30).json()["data"][0]["id"]
        return cls(base_url, model, index, vcpus=kwargs.pop("vcpus", 0.0) or usable_vcpus(),
                   **kwargs)  # fmt: skip

    def _client(self) -> Any:
        import httpx

        if self.client is None:
            self.client = httpx.AsyncClient(base_url=self.base_url, timeout=120)
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    # ---------------------------------------------------------------- the three kinds of step
    async def chat(self, prompt: str, max_tokens: int | None = None) -> Outcome:
        """One model call; its value is the text, its tokens and USD what it used."""
        t0 = time.perf_counter()
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens or self.max_tokens, "temperature": 0}  # fmt: skip
        reply = await self._client().post("/v1/chat/completions", json=body)
        reply.raise_for_status()
        data = reply.json()
        self.calls += 1
        seconds = time.perf_counter() - t0
        used = data["usage"]
        return Outcome(
            {"text": data["choices"][0]["message"]["content"], "ms": seconds * 1e3,
             "prompt_tokens": used["prompt_tokens"], "completion_tokens": used["completion_tokens"],
             "ttft_ms": data.get("infralab", {}).get("ttft_s", float("nan")) * 1e3},
            tokens=int(used["total_tokens"]),
            usd=lambda_usd(seconds, self.vcpus),
        )  # fmt: skip

    async def retrieve(self, question: str, k: int = 3) -> Outcome:
        """Embed the question and search the tenant's chunks (in a worker thread, so other
        steps keep running meanwhile)."""
        t0 = time.perf_counter()

        def search() -> list[Any]:
            vector = self.index.embed_query(question)
            return self.index.search(self.tenant, question, vector, mode="hybrid", k=k)

        hits = await asyncio.to_thread(search)
        seconds = time.perf_counter() - t0
        return Outcome({"hits": hits, "ms": seconds * 1e3}, 0, lambda_usd(seconds, self.vcpus))

    async def price_tool(self, tokens: int) -> Outcome:
        """The tool call: what ``tokens`` would cost at a published API price (reads the
        kit's price file, as a tool would query a service)."""
        t0 = time.perf_counter()
        usd = await asyncio.to_thread(api_usd, tokens, 0)
        seconds = time.perf_counter() - t0
        return Outcome({"api_usd": usd, "ms": seconds * 1e3}, 0, lambda_usd(seconds, self.vcpus))


def snippet(hits: Sequence[Any], i: int, words: int = 24) -> str:
    """The first ``words`` words of hit ``i`` (short prompts keep each call fast)."""
    if not hits:
        return ""
    return " ".join(hits[i % len(hits)].text.split()[:words])


def request_steps(
    live: Live,
    question: str,
    model_calls: int,
    *,
    parallel: bool = False,
    estimate: Usage | None = None,
    cache: StepCache | None = None,
) -> list[Step]:
    """One request: retrieve, then ``model_calls`` model calls (a chain, each reading the
    previous answer; or, with ``parallel``, one per retrieved chunk, independent), then the
    price tool over the tokens used. ``estimate`` is each model call's expected usage;
    with ``cache``, model calls carry a key so a repeat is served from it."""
    est = estimate or Usage()

    async def retrieve(inputs: dict[str, Any]) -> Outcome:
        return await live.retrieve(question)

    def model_step(i: int) -> Callable[[dict[str, Any]], Any]:
        async def call(inputs: dict[str, Any]) -> Outcome:
            hits = inputs["retrieve"]["hits"]
            before = inputs.get(f"model_{i - 1}", {}).get("text", "") if not parallel else ""
            prompt = (f"Context: {snippet(hits, i)}\n{('Draft: ' + before) if before else ''}\n"
                      f"Question: {question}\nAnswer in one short sentence.")  # fmt: skip
            return await live.chat(prompt)

        return call

    async def tool(inputs: dict[str, Any]) -> Outcome:
        used = sum(v.get("prompt_tokens", 0) + v.get("completion_tokens", 0)
                   for k, v in inputs.items() if k.startswith("model_"))  # fmt: skip
        return await live.price_tool(used)

    steps = [Step("retrieve", retrieve)]
    names = []
    for i in range(model_calls):
        after = ("retrieve",) if parallel or i == 0 else ("retrieve", f"model_{i - 1}")
        key = StepCache.key(live.model, question, i, parallel) if cache is not None else None
        steps.append(Step(f"model_{i}", model_step(i), after, est, key))
        names.append(f"model_{i}")
    steps.append(Step("tool", tool, tuple(names)))
    return steps


def routed_answer_path(index: Any, tenant: str, question: str) -> tuple[str, Any]:
    """The kit's router (lesson 09): ``extractive`` (no model) when the best retrieved
    sentence covers the question's words, else ``local_llm``."""
    hits = index.search(tenant, question, index.embed_query(question), mode="hybrid", k=3)
    path, extract = router.route(question, hits, relevance=1.0, min_score=0.0)
    return path, (hits, extract)


def compose(samples: dict[str, list[float]], plan: list[str], parallel: bool, draws: int,
            seed: int = 0) -> list[float]:  # fmt: skip
    """Request latencies composed from measured step latencies: each draw picks one measured
    sample per step and adds them (a chain) or, for the model steps of a parallel plan, takes
    the slowest of them. How tails compound, from this machine's own samples."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(draws):
        model = [rng.choice(samples["model"]) for p in plan if p == "model"]
        other = sum(rng.choice(samples[p]) for p in plan if p != "model")
        out.append(other + ((max(model) if model else 0.0) if parallel else sum(model)))
    return out


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of a list of milliseconds."""
    return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}


async def run_request(live: Live, question: str, model_calls: int, **kwargs: Any) -> Any:
    """Build and run one request; the :class:`~infralab.engines.serving.orchestrate.RunReport`.
    ``budget`` and ``cache`` go to the runner, the rest to :func:`request_steps`."""
    from infralab.engines.serving.orchestrate import run_graph

    budget = kwargs.pop("budget", None)
    strict = kwargs.pop("strict", True)
    steps = request_steps(live, question, model_calls, cache=kwargs.get("cache"), **{
        k: v for k, v in kwargs.items() if k != "cache"})  # fmt: skip
    return await run_graph(steps, budget, cache=kwargs.get("cache"), strict=strict)


def kind_of(step: str) -> str:
    """``retrieve``, ``model`` or ``tool`` from a step's name."""
    return "model" if step.startswith("model_") else step


async def chain_sweep(
    live: Live, questions: Sequence[str], max_calls: int, repeats: int, progress: bool = True
) -> tuple[list[dict[str, Any]], dict[str, list[float]]]:
    """Requests with 1..``max_calls`` chained model calls, ``repeats`` each (questions taken
    in turn): one row per request, and every step's measured ms by kind."""
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    samples: dict[str, list[float]] = {"retrieve": [], "model": [], "tool": []}
    plan = [(n, r) for n in range(1, max_calls + 1) for r in range(repeats)]
    for i, (n, r) in enumerate(tqdm(plan, desc="chained requests", disable=not progress)):
        report = await run_request(live, questions[i % len(questions)], n)
        usd = {"retrieve": 0.0, "model": 0.0, "tool": 0.0}
        for rec in report.steps:
            samples[kind_of(rec.name)].append(rec.end_ms - rec.start_ms)
            usd[kind_of(rec.name)] += rec.usd
        rows.append({"model_calls": n, "repeat": r, "latency_ms": report.spent.ms,
                     "tokens": report.spent.tokens, "usd": report.spent.usd,
                     **{f"usd_{k}": v for k, v in usd.items()}})  # fmt: skip
    return rows, samples


async def ttft_sweep(
    live: Live, lengths: Sequence[int], progress: bool = True
) -> list[dict[str, Any]]:
    """Time to first token (the server's own measurement, and the call's wall time) for
    prompts of about ``lengths`` tokens, one model call each with one new token."""
    from tqdm.auto import tqdm

    rows = []
    for n in tqdm(list(lengths), desc="prompt lengths", disable=not progress):
        words = max(1, n - 30)  # the chat template adds about 30 tokens
        out = await live.chat(" ".join(["data"] * words), max_tokens=1)
        rows.append({"prompt_tokens": out.value["prompt_tokens"], "ttft_ms": out.value["ttft_ms"],
                     "call_ms": out.value["ms"]})  # fmt: skip
    return rows


async def over_the_window(live: Live, tokens: int) -> dict[str, Any]:
    """Send a prompt of about ``tokens`` tokens and return the server's status and reason."""
    body = {"model": live.model, "max_tokens": 1,
            "messages": [{"role": "user", "content": " ".join(["data"] * tokens)}]}  # fmt: skip
    reply = await live._client().post("/v1/chat/completions", json=body)
    detail = reply.json().get("error", {}).get("message", "") if reply.status_code >= 400 else ""
    return {"status": reply.status_code, "reason": detail}
