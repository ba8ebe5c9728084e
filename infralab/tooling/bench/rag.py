"""`python -m infralab bench rag`: retrieval quality, per-stage latency and the bill per
placement, through the cloud app with the kit's LLM server.

The measurements lesson 06 runs live (search time per tenant layout, the GPU generation
estimate from the recorded GPU run) live in the engine, ``infralab.engines.rag.measure``; the
retrieval metrics are ``infralab.engines.rag.evaluate``; the pricing is ``infralab.economics.costs.placement``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infralab.economics.costs.placement import placement_costs, placements
from infralab.engines.rag.evaluate import (
    calibrate_threshold,
    run_retrieval,
    stage_percentiles,
    summarize,
)
from infralab.engines.rag.hybrid import RagIndex
from infralab.engines.rag.measure import gpu_estimate, mean_usage


def main(argv: Sequence[str] | None = None) -> int:
    """Benchmark the whole pipeline: retrieval quality, per-stage latency through the cloud
    app with the kit's LLM server, and the placement bill. ``--record`` writes the kit's
    recorded reference (datasets/benchmarks/rag.json) instead of the student's results."""
    from infralab.core.assets import cache_dir
    from infralab.core.results import detail_of, save, write_recorded
    from infralab.engines.models.encoder import Embedder
    from infralab.engines.rag.corpus import load_documents, load_questions

    args = _parse_args(argv)
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
    answered, retrieved, llm_cold = _ask_through_app(args, index, questions, abstain["threshold"])
    stages = stage_percentiles(_stage_timings(answered, retrieved))
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
        **_answer_counts(answered),
        "network_delay_ms": args.delay_ms,
        "llm_cold_start_s": llm_cold,
        "gpu_generate_ms": gpu_ms.get("generate"),
        "gpu_generate_note": gpu_note,
        "mean_usage": mean_usage(answered),
        **_placement_data(costs, plan),
        "chunks": len(index.chunks),
        "documents": len(docs),
    }
    out = _envelope(args.record, data)
    typed = typed_record(out)  # the typed record lessons and readers use
    if args.record:
        path = write_recorded("rag", typed, detail_of(typed, out, ("mean_usage",)))
    else:  # the student's run: the same typed record lesson 06 saves
        path = save(typed)
    _print_tables(summary, stages, plan)
    print(f"wrote {path}")
    return 0


def _parse_args(argv: Sequence[str] | None) -> Any:
    """The command line of ``python -m infralab bench rag``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infralab bench rag")
    parser.add_argument("--generate", type=int, default=10, help="questions answered by the LLM")
    parser.add_argument("--retrieve", type=int, default=60, help="retrieval-only questions")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="injected network delay")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--record", action="store_true", help="write datasets/benchmarks/rag.json")
    return parser.parse_args(list(argv or []))


def _ask_through_app(
    args: Any, index: RagIndex, questions: Sequence[Any], threshold: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, float]]:
    """Questions through the cloud app with the LLM server: answered, retrieved, cold start."""
    from fastapi.testclient import TestClient

    from infralab.engines.rag.answer import Generator
    from infralab.engines.rag.cloud_app import ask_many, create_app
    from infralab.engines.serving.launcher import launch

    keys = {"bench-saas": "saas", "bench-law": "lawfirm", "bench-web3": "web3"}
    by_key = {
        k: [q.question for q in questions if q.tenant == t and q.answerable]
        for k, t in keys.items()
    }
    with launch(
        "infralab.engines.serving.chat:create_chat_app", factory_kwargs={"variant": "q4"}
    ) as llm:
        gen = Generator(base_url=llm.url + "/v1", max_tokens=args.max_tokens, min_score=threshold)
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
    return answered, retrieved, llm_cold


def _stage_timings(
    answered: list[dict[str, Any]], retrieved: list[dict[str, Any]]
) -> list[dict[str, float]]:
    """Per-request stage times: all stages when answered, retrieval's only when retrieved."""
    return [a["timings_ms"] for a in answered] + [
        {k: v for k, v in a["timings_ms"].items() if k in ("embed_query", "search")}
        for a in retrieved
    ]


def _answer_counts(answered: list[dict[str, Any]]) -> dict[str, Any]:
    """What the generated answers did: citations, abstentions, blocks and a few samples."""
    return {
        "cited_by_model": sum(a["cited_by_model"] for a in answered),
        "answers_with_citations": sum(bool(a["citations"]) for a in answered),
        "answered": len(answered),
        "abstained": sum(a["abstained"] for a in answered),
        "blocked": sum(a["blocked"] for a in answered),
        "sample_answers": [
            {"answer": a["answer"], "citations": a["citations"]} for a in answered[:3]
        ],
    }


def _placement_data(costs: Any, plan: Any) -> dict[str, Any]:
    """The placement bill as JSON-ready fields: costs, their price sources and the plan."""
    import json

    return {
        "placement_costs": json.loads(costs.to_json(orient="index")),
        "placement_prices": dict(costs.attrs),
        "placements": plan.to_dict(orient="index"),
    }


def _envelope(record: bool, data: dict[str, Any]) -> dict[str, Any]:
    """The run's data with when, where, which versions and which command measured it."""
    import datetime as dt
    import platform
    from importlib.metadata import version

    from infralab.core.results import machine

    return {
        "name": "rag",
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {
            p: version(p)
            for p in ("onnxruntime-gpu", "qdrant-client", "bm25s", "fastapi", "openai")
            if _installed(p)
        }
        | {"python": platform.python_version()},
        "command": "python -m infralab bench rag" + (" --record" if record else ""),
        "data": data,
    }


def _print_tables(summary: Any, stages: Any, plan: Any) -> None:
    """The retrieval summary, stage latencies and placement plan for the terminal."""
    print(summary.round(3).to_string())
    print(stages.round(1).to_string())
    print(plan.round(5).to_string())


def typed_record(out: dict[str, Any]) -> Any:
    """The typed record (``RagResult``) of one run: p50 per stage, hybrid recall@5 and the
    mean tokens per question."""
    from infralab.core.results import RagResult

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
