"""Retrieval quality per mode (dense, lexical, hybrid) and the abstention threshold.

Metrics are computed on documents, not chunks: a question is answered by a document, and
two chunks of the same document should not count twice. Chunk rankings are collapsed to
document rankings in order of first appearance.

* recall@k: share of the gold documents found in the top k;
* MRR: 1 / rank of the first gold document (0 when none in the top 10);
* nDCG@10: rank-discounted gain with binary relevance, 1.0 when all gold documents lead.

Unanswerable questions have no gold documents; for them the question is whether the
system abstains, which the best dense similarity decides (see :func:`calibrate_threshold`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from infralab.rag.corpus import Question
from infralab.rag.hybrid import MODES, RagIndex, fuse_hits
from infralab.rag.store import Hit


def doc_ranking(hits: Iterable[Hit]) -> list[str]:
    """Document ids in order of their first chunk."""
    return list(dict.fromkeys(h.doc_id for h in hits))


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("recall is undefined for a question without gold documents.")
    return len(gold_set & set(ranked[:k])) / len(gold_set)


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    gold_set = set(gold)
    for i, doc in enumerate(ranked[:k], start=1):
        if doc in gold_set:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("nDCG is undefined for a question without gold documents.")
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in gold_set)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold_set), k) + 1))
    return dcg / ideal


def run_retrieval(
    index: RagIndex,
    questions: Sequence[Question],
    modes: Sequence[str] = MODES,
    depth: int = 20,
    batch_size: int = 64,
) -> pd.DataFrame:
    """One row per (question, mode): ranked doc ids, metrics, best dense similarity."""
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be among {MODES}, got {mode!r}.")
    texts = [q.question for q in questions]
    vectors = (
        np.concatenate(
            [
                np.asarray(index.embedder.embed(texts[i : i + batch_size]), dtype=np.float32)
                for i in range(0, len(texts), batch_size)
            ]
        )
        if texts
        else np.zeros((0, 384), np.float32)
    )
    rows: list[dict[str, Any]] = []
    for q, vec in tqdm(list(zip(questions, vectors, strict=True)), desc="retrieval", leave=False):
        # one dense and one lexical search per question; the hybrid fuses those same lists
        dense = index.store.search(q.tenant, vec, k=depth)
        lexical = index.lexical.search(q.tenant, q.question, k=depth)
        by_mode = {"dense": dense, "lexical": lexical, "hybrid": fuse_hits(dense, lexical, k=depth)}
        best = dense[0].score if dense else 0.0
        for mode in modes:
            ranked = doc_ranking(by_mode[mode])
            row: dict[str, Any] = {
                "qid": q.qid,
                "tenant": q.tenant,
                "mode": mode,
                "answerable": q.answerable,
                "best_cosine": best,
                "ranked": ranked[:10],
            }
            if q.answerable:
                for k in (1, 3, 5, 10):
                    row[f"recall@{k}"] = recall_at_k(ranked, q.gold_doc_ids, k)
                row["mrr"] = reciprocal_rank(ranked, q.gold_doc_ids)
                row["ndcg@10"] = ndcg_at_k(ranked, q.gold_doc_ids)
            rows.append(row)
    return pd.DataFrame(rows)


def summarize(per_question: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics per mode over answerable questions (one row per mode)."""
    cols = ["recall@1", "recall@3", "recall@5", "recall@10", "mrr", "ndcg@10"]
    ans = per_question[per_question["answerable"]]
    if ans.empty:
        raise ValueError("no answerable questions to score.")
    table = ans.groupby("mode", sort=False)[cols].mean()
    table["questions"] = ans.groupby("mode", sort=False).size()
    return table


def calibrate_threshold(
    answerable_scores: Sequence[float], unanswerable_scores: Sequence[float]
) -> dict[str, float]:
    """The best-cosine threshold that best separates answerable from unanswerable
    questions (balanced accuracy), and how often each side is then handled right."""
    a = np.asarray(answerable_scores, float)
    u = np.asarray(unanswerable_scores, float)
    if a.size == 0 or u.size == 0:
        raise ValueError("need both answerable and unanswerable questions to calibrate.")
    candidates = np.unique(np.concatenate([a, u]))
    best = (-1.0, 0.0, 0.0, 0.0)
    for t in candidates:
        answered = float(np.mean(a >= t))
        abstained = float(np.mean(u < t))
        score = (answered + abstained) / 2
        if score > best[0]:
            best = (score, float(t), answered, abstained)
    return {
        "threshold": best[1],
        "balanced_accuracy": best[0],
        "answerable_answered": best[2],
        "unanswerable_abstained": best[3],
    }


def abstention(per_question: pd.DataFrame, threshold: float) -> dict[str, float]:
    """At ``threshold``: share of answerable questions answered, unanswerable abstained."""
    first = per_question.drop_duplicates("qid")
    ans = first[first["answerable"]]["best_cosine"].to_numpy()
    una = first[~first["answerable"]]["best_cosine"].to_numpy()
    return {
        "threshold": float(threshold),
        "answerable_answered": float(np.mean(ans >= threshold)) if ans.size else float("nan"),
        "unanswerable_abstained": float(np.mean(una < threshold)) if una.size else float("nan"),
    }


# --- latency per stage and the bill per placement ---------------------------------------
STAGES: tuple[str, ...] = ("embed_query", "search", "generate", "network")


def stage_percentiles(timings: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """p50 / p95 (ms) of each stage over many ``/ask`` responses' ``timings_ms``."""
    if not timings:
        raise ValueError("no timings: ask some questions first.")
    rows = []
    for stage in (*STAGES, "total"):
        vals = [float(t[stage]) for t in timings if stage in t]
        if vals:
            rows.append(
                {
                    "stage": stage,
                    "p50_ms": float(np.percentile(vals, 50)),
                    "p95_ms": float(np.percentile(vals, 95)),
                    "n": len(vals),
                }
            )
    return pd.DataFrame(rows).set_index("stage")


def serverless_usd_per_1k(duration_ms: float, memory_gb: float = 2.0) -> float:
    """AWS Lambda price of 1,000 calls of ``duration_ms`` (``infralab.costs.serverless``
    with the published prices in datasets/pricing, no free tier): GB-seconds, each call
    rounded up to 1 ms, plus the per-request fee."""
    from infralab.costs.pricing import serverless_cpu_price
    from infralab.costs.serverless import lambda_bill

    if duration_ms < 0:
        raise ValueError(f"duration must be >= 0 ms, got {duration_ms}.")
    per_gb_s, _ = serverless_cpu_price("aws", "lambda", "compute")
    per_1m, _ = serverless_cpu_price("aws", "lambda", "requests")
    bill = lambda_bill(
        1000,
        duration_ms / 1000.0,
        memory_gb,
        price_per_gb_s=per_gb_s,
        price_per_million_requests=per_1m,
    )
    return float(bill["total_usd"])


def gpu_usd_per_hour(gpu: str = "L4") -> tuple[float, str]:
    """Cheapest on-demand price of one ``gpu`` per hour in the kit's price data, and its source."""
    from infralab.costs.pricing import gpu_hourly

    row = gpu_hourly(gpu, "on_demand").iloc[0]
    return float(row["usd_per_gpu_hour"]), f"{row['provider']} {row['instance']} ({row['as_of']})"


def gpu_usd_per_1k(duration_ms: float, usd_per_hour: float, utilization: float) -> float | None:
    """An hourly GPU serving one call at a time: cost of 1,000 calls at ``utilization``."""
    from infralab.costs.model import cost_per_1k_at_utilization

    if duration_ms <= 0:
        raise ValueError("a GPU stage needs a duration above 0 ms.")
    return cost_per_1k_at_utilization(usd_per_hour, 1000.0 / duration_ms, utilization)


def placement_costs(
    stage_ms: Mapping[str, float],
    *,
    gpu: str = "L4",
    utilization: float = 0.3,
    memory_gb: float = 2.0,
    gpu_ms: Mapping[str, float] | None = None,
    gpu_note: str = "measured",
) -> pd.DataFrame:
    """Per stage: the measured CPU time priced on serverless CPU, and what the same stage
    would cost on an hourly GPU. ``gpu_ms`` holds GPU timings you measured (or estimated
    from a recorded run: say so in ``gpu_note``); stages without one are priced at the CPU
    time (column ``gpu_time``). Either way the table gives the speed-up the GPU would need
    to break even, instead of an invented GPU number."""
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization is a share in (0, 1], got {utilization}.")
    price, source = gpu_usd_per_hour(gpu)
    gpu_ms = dict(gpu_ms or {})
    rows = []
    for stage in ("embed_query", "search", "generate"):
        if stage not in stage_ms:
            continue
        cpu_ms = float(stage_ms[stage])
        cpu_usd = serverless_usd_per_1k(cpu_ms, memory_gb)
        g_ms = float(gpu_ms.get(stage, cpu_ms))
        g_usd = gpu_usd_per_1k(max(g_ms, 1e-3), price, utilization)
        # GPU cost per call scales with its time: break even when t_gpu = t_cpu / speed-up
        at_cpu_speed = gpu_usd_per_1k(max(cpu_ms, 1e-3), price, utilization) or float("inf")
        rows.append(
            {
                "stage": stage,
                "cpu_ms": cpu_ms,
                "serverless_cpu_usd_per_1k": cpu_usd,
                "gpu_ms": g_ms,
                "gpu_time": gpu_note if stage in gpu_ms else "assumed = CPU time",
                "gpu_usd_per_1k": g_usd,
                "gpu_speedup_to_break_even": at_cpu_speed / cpu_usd if cpu_usd else float("inf"),
            }
        )
    table = pd.DataFrame(rows).set_index("stage")
    table.attrs.update(
        gpu=gpu,
        gpu_usd_per_hour=price,
        gpu_price_source=source,
        utilization=utilization,
        memory_gb=memory_gb,
    )
    return table


GPU_GENERATION_RECORD = "generation_gpu_h200.json"


def gpu_generate_ms(
    prompt_tokens: float, new_tokens: float, record: Mapping[str, Any] | None = None
) -> tuple[float, str]:
    """Generation time on a GPU estimated from the kit's *recorded* GPU run of the same
    model (datasets/benchmarks/generation_gpu_h200.json): time to first token at this
    prompt length (interpolated) plus ``new_tokens`` at the batch-1 decode rate.
    Returns (ms, where it came from); raises FileNotFoundError without a record."""
    import json

    from infralab.results import RECORDED_DIR

    if prompt_tokens < 0 or new_tokens < 0:
        raise ValueError("token counts must be >= 0.")
    if record is None:
        path = RECORDED_DIR / GPU_GENERATION_RECORD
        if not path.is_file():
            raise FileNotFoundError(f"no recorded GPU generation run at {path}.")
        record = json.loads(path.read_text())
    rows = sorted(record["ttft_vs_prompt"]["rows"], key=lambda r: r["prompt_tokens"])
    ttft_s = float(
        np.interp(prompt_tokens, [r["prompt_tokens"] for r in rows], [r["ttft_s"] for r in rows])
    )
    decode = float(record["decode_tokens_per_s"])
    gpu = record.get("machine", {}).get("gpu", "GPU").split(",")[0]
    when = str(record.get("date", record.get("measured_at", "undated")))[:10]
    return (ttft_s + new_tokens / decode) * 1e3, f"estimated from the recorded {gpu} run ({when})"


def placements(
    stage_ms: Mapping[str, float],
    costs: pd.DataFrame,
    network_ms: float,
) -> pd.DataFrame:
    """Whole-question latency and cost for the usual ways to split the stages.

    Each move of work across the cloud / AI-infra boundary adds one ``network_ms`` round
    trip; cost is the sum of the stages where they run (the network itself is not billed
    here: egress between providers is, but it is small for text)."""
    plans = {
        "all on cloud CPU (serverless)": {"embed_query": "cpu", "search": "cpu", "generate": "cpu"},
        "retrieve on cloud, generate on GPU": {
            "embed_query": "cpu",
            "search": "cpu",
            "generate": "gpu",
        },
        "all on GPU infra": {"embed_query": "gpu", "search": "gpu", "generate": "gpu"},
    }
    rows = []
    for name, plan in plans.items():
        usd = 0.0
        ms = 0.0
        for stage, where in plan.items():
            if stage not in costs.index:
                continue
            row = costs.loc[stage]
            usd += (
                row["serverless_cpu_usd_per_1k"] if where == "cpu" else (row["gpu_usd_per_1k"] or 0)
            )
            ms += row["cpu_ms"] if where == "cpu" else row["gpu_ms"]
        hops = 1 if "gpu" in plan.values() else 0  # the app on the cloud calls the AI infra once
        rows.append(
            {
                "placement": name,
                "latency_ms": ms + hops * network_ms,
                "network_hops": hops,
                "usd_per_1k_questions": usd,
            }
        )
    return pd.DataFrame(rows).set_index("placement")


def measure_layouts(
    sizes: Sequence[int] = (600, 1800, 4800),
    *,
    tenants: Sequence[str] = ("saas", "lawfirm", "web3"),
    queries: int = 10,
    dim: int = 384,
    seed: int = 0,
) -> pd.DataFrame:
    """Search time per query for the two tenant layouts at growing store sizes.

    Synthetic unit vectors: this measures the store's work, not retrieval quality. In
    qdrant-client's local mode the ``shared`` layout checks the tenant filter in Python for
    every point, so its time grows with the whole store; ``per_tenant`` searches one tenant's
    collection without a filter. (A Qdrant server would use the tenant payload index.)
    """
    import time

    from infralab.bench.harness import percentiles
    from infralab.rag.chunking import Chunk
    from infralab.rag.store import TenantVectorStore

    rng = np.random.default_rng(seed)
    rows = []
    for n in tqdm(list(sizes), desc="layouts", leave=False):
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        chunks = [
            Chunk(f"x-{i}#0", f"x-{i}", tenants[i % len(tenants)], "", "", 0) for i in range(n)
        ]
        qs = rng.standard_normal((queries, dim)).astype(np.float32)
        for layout in ("shared", "per_tenant"):
            store = TenantVectorStore(layout=layout)  # type: ignore[arg-type]
            store.add(chunks, vecs)
            samples = []
            for i, q in enumerate(qs):
                t0 = time.perf_counter()
                store.search(tenants[i % len(tenants)], q, k=5)
                samples.append(time.perf_counter() - t0)
            store.close()
            pct = percentiles(samples, (50, 95))
            rows.append(
                {
                    "layout": layout,
                    "points": n,
                    "p50_ms": pct["p50"] * 1e3,
                    "p95_ms": pct["p95"] * 1e3,
                }
            )
    return pd.DataFrame(rows)


def mean_usage(answers: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Mean prompt and completion tokens over ``/ask`` answers that called the model."""
    used = [a["usage"] for a in answers if a.get("usage")]
    if not used:
        return {}
    return {k: float(np.mean([u[k] for u in used if k in u])) for k in used[0]}


def gpu_estimate(answers: Sequence[Mapping[str, Any]]) -> tuple[dict[str, float], str]:
    """``({"generate": ms}, note)`` for these answers' mean token counts on the recorded
    GPU run, or ``({}, reason)`` when there is no usage or no record."""
    usage = mean_usage(answers)
    if "prompt_tokens" not in usage or "completion_tokens" not in usage:
        return {}, "no token counts in the answers"
    try:
        ms, note = gpu_generate_ms(usage["prompt_tokens"], usage["completion_tokens"])
    except FileNotFoundError as exc:
        return {}, str(exc)
    return {"generate": ms}, note


def main(argv: Sequence[str] | None = None) -> int:
    """Benchmark the whole pipeline: retrieval quality, per-stage latency through the cloud
    app with the kit's LLM server, and the placement bill. ``--record`` writes the kit's
    recorded reference (datasets/benchmarks/rag.json) instead of the student's results."""
    import argparse
    import datetime as dt
    import json
    import platform
    from importlib.metadata import version

    from fastapi.testclient import TestClient

    from infralab.assets import cache_dir
    from infralab.models.encoder import Embedder
    from infralab.rag.cloud_app import ask_many, create_app
    from infralab.rag.corpus import load_documents, load_questions
    from infralab.rag.generate import Generator
    from infralab.results import RECORDED_DIR, machine, save, with_record
    from infralab.serving.launcher import launch

    parser = argparse.ArgumentParser(prog="python -m infralab bench rag")
    parser.add_argument("--generate", type=int, default=10, help="questions answered by the LLM")
    parser.add_argument("--retrieve", type=int, default=60, help="retrieval-only questions")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="injected network delay")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--record", action="store_true", help="write datasets/benchmarks/rag.json")
    args = parser.parse_args(list(argv or []))

    docs = load_documents()
    questions = load_questions(documents=docs)
    embedder = Embedder(variant="int8", provider="cpu", batch_size=32)
    index = RagIndex.build(
        docs, embedder, layout="per_tenant", cache_dir=cache_dir() / "rag", label="int8"
    )
    per_question = run_retrieval(index, questions)
    summary = summarize(per_question)
    first = per_question.drop_duplicates("qid")
    abstain = calibrate_threshold(
        first[first.answerable].best_cosine, first[~first.answerable].best_cosine
    )
    keys = {"bench-saas": "saas", "bench-law": "lawfirm", "bench-web3": "web3"}
    by_key = {
        k: [q.question for q in questions if q.tenant == t and q.answerable]
        for k, t in keys.items()
    }
    with launch("infralab.serving.chat:create_chat_app", factory_kwargs={"variant": "q4"}) as llm:
        gen = Generator(
            base_url=llm.url + "/v1", max_tokens=args.max_tokens, min_score=abstain["threshold"]
        )
        app = create_app(keys, index=index, generator=gen, network_delay_ms=args.delay_ms)
        with TestClient(app) as client:
            answered: list[dict[str, Any]] = []
            retrieved: list[dict[str, Any]] = []
            for i, key in enumerate(keys):
                n_gen = args.generate // len(keys) + (i < args.generate % len(keys))
                answered += ask_many(client, key, by_key[key][:n_gen])
                retrieved += ask_many(
                    client,
                    key,
                    by_key[key][n_gen : n_gen + args.retrieve // len(keys)],
                    generate=False,
                )
            llm_cold = {k: v for k, v in llm.cold_start.items() if isinstance(v, float)}
    timings = [a["timings_ms"] for a in answered] + [
        {k: v for k, v in a["timings_ms"].items() if k in ("embed_query", "search")}
        for a in retrieved
    ]
    stages = stage_percentiles(timings)
    stage_ms = stages["p50_ms"].to_dict()
    gpu_ms, gpu_note = gpu_estimate(answered)
    costs = placement_costs(stage_ms, gpu="H200", utilization=0.3, gpu_ms=gpu_ms, gpu_note=gpu_note)
    plan = placements(stage_ms, costs, network_ms=args.delay_ms)
    data = {
        "recall_at_5": summary["recall@5"].to_dict(),
        "mrr": summary["mrr"].to_dict(),
        "ndcg_at_10": summary["ndcg@10"].to_dict(),
        "questions": {
            "answerable": int(first.answerable.sum()),
            "unanswerable": int((~first.answerable).sum()),
        },
        "abstention": abstain,
        "stage_ms": stages.to_dict(orient="index"),
        "cited_by_model": sum(a["cited_by_model"] for a in answered),
        "answers_with_citations": sum(bool(a["citations"]) for a in answered),
        "answered": len(answered),
        "abstained": sum(a["abstained"] for a in answered),
        "blocked": sum(a["blocked"] for a in answered),
        "sample_answers": [
            {"answer": a["answer"], "citations": a["citations"]} for a in answered[:3]
        ],
        "network_delay_ms": args.delay_ms,
        "llm_cold_start_s": llm_cold,
        "gpu_generate_ms": gpu_ms.get("generate"),
        "gpu_generate_note": gpu_note,
        "mean_usage": mean_usage(answered),
        "placement_costs": json.loads(costs.to_json(orient="index")),
        "placement_prices": dict(costs.attrs),
        "placements": plan.to_dict(orient="index"),
        "chunks": len(index.chunks),
        "documents": len(docs),
    }
    record = with_record(
        "rag",
        {
            "name": "rag",
            "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "versions": {
                p: version(p)
                for p in ("onnxruntime-gpu", "qdrant-client", "bm25s", "fastapi", "openai")
                if _installed(p)
            }
            | {"python": platform.python_version()},
            "command": "python -m infralab bench rag" + (" --record" if args.record else ""),
            "data": data,
        },
    )
    if args.record:
        path = RECORDED_DIR / "rag.json"
        path.write_text(json.dumps(record, indent=2, default=float) + "\n")
    else:  # the student's run: the same typed record lesson 06 saves
        from infralab.results import RagResult, from_dict

        typed = from_dict(record["record"])
        assert isinstance(typed, RagResult)
        path = save(typed)
    print(summary.round(3).to_string())
    print(stages.round(1).to_string())
    print(plan.round(5).to_string())
    print(f"wrote {path}")
    return 0


def _installed(package: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(package)
    except PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
