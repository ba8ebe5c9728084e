"""`python -m infralab bench rag`: retrieval quality, per-stage latency and the bill per
placement, through the cloud app with the kit's LLM server.

Also the measurements lesson 06 runs live: search time per tenant layout
(:func:`measure_layouts`) and the GPU generation estimate from the recorded GPU run
(:func:`gpu_estimate`). The retrieval metrics are ``infralab.rag.evaluate``; the pricing is
``infralab.costs.placement``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from infralab.costs.placement import placement_costs, placements
from infralab.rag.evaluate import calibrate_threshold, run_retrieval, stage_percentiles, summarize
from infralab.rag.hybrid import RagIndex

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "gpu_estimate",
    "mean_usage",
    "measure_layouts",
]


GPU_GENERATION_RECORD = "generation_gpu_h200"  # a recorded run, read by results.recorded


def gpu_generate_ms(
    prompt_tokens: float, new_tokens: float, record: Mapping[str, Any] | None = None
) -> tuple[float, str]:
    """Generation time on a GPU estimated from the kit's *recorded* GPU run of the same
    model (datasets/benchmarks/generation_gpu_h200.json): time to first token at this
    prompt length (interpolated) plus ``new_tokens`` at the batch-1 decode rate.
    Returns (ms, where it came from); raises FileNotFoundError without a record."""
    from infralab import results

    if prompt_tokens < 0 or new_tokens < 0:
        raise ValueError("token counts must be >= 0.")
    if record is None:
        record = results.recorded(GPU_GENERATION_RECORD)
    rows = sorted(record["ttft_vs_prompt"]["rows"], key=lambda r: r["prompt_tokens"])
    ttft_s = float(
        np.interp(prompt_tokens, [r["prompt_tokens"] for r in rows], [r["ttft_s"] for r in rows])
    )
    decode = float(record["decode_tokens_per_s"])
    gpu = record.get("machine", {}).get("gpu", "GPU").split(",")[0]
    when = str(record.get("date", record.get("measured_at", "undated")))[:10]
    return (ttft_s + new_tokens / decode) * 1e3, f"estimated from the recorded {gpu} run ({when})"


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

    from infralab.rag.chunking import Chunk
    from infralab.rag.store import TenantVectorStore
    from infralab.timing import percentiles

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
    from infralab.results import detail_of, machine, save, write_recorded
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
    out = {
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
    }
    typed = typed_record(out)  # the typed record lessons and readers use
    if args.record:
        path = write_recorded("rag", typed, detail_of(typed, out, ("mean_usage",)))
    else:  # the student's run: the same typed record lesson 06 saves
        path = save(typed)
    print(summary.round(3).to_string())
    print(stages.round(1).to_string())
    print(plan.round(5).to_string())
    print(f"wrote {path}")
    return 0


def typed_record(out: dict[str, Any]) -> Any:
    """The typed record (``RagResult``) of one run: p50 per stage, hybrid recall@5 and the
    mean tokens per question."""
    from infralab.results import RagResult

    d = out["data"]
    stage = {k: v["p50_ms"] for k, v in d["stage_ms"].items()}
    usage = d.get("mean_usage") or {}
    return RagResult(
        date=out["measured_at"],
        machine=out["machine"],
        command=out["command"],
        retrieval_ms=float(stage["embed_query"] + stage["search"]),
        embed_query_ms=float(stage["embed_query"]),
        search_ms=float(stage["search"]),
        generate_ms=stage.get("generate"),
        network_ms=stage.get("network"),
        recall_at_5=(d.get("recall_at_5") or {}).get("hybrid"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
    )


def _installed(package: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(package)
    except PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
