"""`python -m infralab bench quality`: answer quality per path and configuration, the routed
mix, embedding drift and performance isolation, with latency and cost, in one run.

Sections (``--sections``, comma-separated, default all):

* ``quality``: the extractive path on every question for each retrieval configuration
  (chunk size, depth, embedder variant); the local LLM (q4 and fp32) on a stratified subset
  (``--llm-questions``; about 10 s a question on a busy 2-core machine); the routed mix;
  the price of the same prompts on hosted models (sourced list prices).
* ``drift``: :func:`infralab.engines.rag.drift.drift_report`.
* ``isolation``: :func:`infralab.engines.rag.isolation.isolation_run`.

``--record`` merges the sections run into datasets/benchmarks/quality.json (each section
keeps its own timestamp); without it the result goes to the student's results folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from collections.abc import Sequence
from typing import Any

SECTIONS = ("quality", "drift", "isolation")


def _stratified(questions: Sequence[Any], n: int) -> list[Any]:
    """``n`` questions spread over tenants, with one unanswerable per tenant when n allows."""
    by_tenant: dict[str, list[Any]] = {}
    for q in questions:
        by_tenant.setdefault(q.tenant, []).append(q)
    picked: list[Any] = []
    per = max(1, n // max(len(by_tenant), 1))
    for qs in by_tenant.values():
        una = [q for q in qs if not q.answerable][:1] if per >= 4 else []
        ans = [q for q in qs if q.answerable][: per - len(una)]
        picked += ans + una
    return picked[:n]


def quality_section(args: argparse.Namespace) -> dict[str, Any]:
    from infralab.engines.rag.corpus import load_documents, load_questions

    docs = load_documents()
    questions = load_questions(documents=docs)
    scored_all, indexes, thresholds = _extractive_runs(docs, questions)
    thr = thresholds["int8"]
    idx = indexes[("int8", 120)]
    llm_scored, cold = _local_llm_runs(args, idx, questions, thr)
    by_config, per_tenant = _extractive_summary(scored_all)
    out: dict[str, Any] = {
        "thresholds": thresholds,
        "threshold_note": "best-cosine abstention threshold calibrated on these same questions",
        "extractive_by_config": by_config.to_dict(orient="records"),
        "extractive_per_tenant": per_tenant,
        "llm_cold_start_s": cold,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if llm_scored:
        out |= _llm_summary(llm_scored, args.max_tokens)
    return out


def _extractive_runs(
    docs: Any, questions: Sequence[Any]
) -> tuple[list[Any], dict[tuple[str, int], Any], dict[str, float]]:
    """The extractive path for every retrieval configuration: scored rows, indexes, thresholds."""
    from infralab.core.assets import cache_dir
    from infralab.economics.costs import per_question
    from infralab.engines.models.encoder import Embedder
    from infralab.engines.rag import router
    from infralab.engines.rag.hybrid import RagIndex

    scored_all = []
    indexes: dict[tuple[str, int], Any] = {}
    thresholds: dict[str, float] = {}
    for variant in ("int8", "fp32"):
        emb = Embedder(variant=variant, provider="cpu", batch_size=32)
        for size in (120, 60) if variant == "int8" else (120,):
            idx = RagIndex.build(
                docs,
                emb,
                size=size,
                overlap=size // 4,
                layout="per_tenant",
                cache_dir=cache_dir() / "rag",
                label=variant,
            )
            indexes[(variant, size)] = idx
            if variant not in thresholds:  # calibrated once per embedder, at the default size
                thresholds[variant] = _calibrated_threshold(idx, questions)
            for k in (1, 3, 5) if (variant, size) == ("int8", 120) else (3,):
                label = f"embed={variant} chunk={size} k={k}"
                print(f"extractive: {label}", flush=True)
                rows = router.run_paths(idx, questions, min_score=thresholds[variant], k=k)
                sc = per_question.score_rows(rows, questions).assign(
                    config=label, embedder=variant, chunk=size, k=k, generator="extractive"
                )
                scored_all.append(sc)
    return scored_all, indexes, thresholds


def _calibrated_threshold(idx: Any, questions: Sequence[Any]) -> float:
    """The best-cosine abstention threshold that separates answerable from unanswerable."""
    from infralab.engines.rag.evaluate import calibrate_threshold, run_retrieval

    per_q = run_retrieval(idx, questions, modes=("dense",))
    first = per_q.drop_duplicates("qid")
    cal = calibrate_threshold(
        first[first.answerable].best_cosine, first[~first.answerable].best_cosine
    )
    return cal["threshold"]


def _local_llm_runs(
    args: argparse.Namespace, idx: Any, questions: Sequence[Any], thr: float
) -> tuple[list[Any], dict[str, Any]]:
    """The local LLM (q4, fp32) on a stratified subset: scored rows and cold-start seconds."""
    from infralab.economics.costs import per_question
    from infralab.engines.rag import router
    from infralab.engines.rag.answer import Generator
    from infralab.engines.serving.launcher import launch

    llm_scored = []
    cold: dict[str, Any] = {}
    for variant, n in (("q4", args.llm_questions), ("fp32", args.llm_questions_fp32)):
        if n <= 0:
            continue
        subset = _stratified(questions, n)
        print(f"local LLM {variant}: {len(subset)} questions", flush=True)
        with launch(
            "infralab.engines.serving.chat:create_chat_app",
            factory_kwargs={"variant": variant},
            ready_timeout_s=180,
        ) as llm:
            cold[variant] = {k: v for k, v in llm.cold_start.items() if isinstance(v, float)}
            gen = Generator(base_url=llm.url + "/v1", max_tokens=args.max_tokens, min_score=thr)
            rows = router.run_paths(idx, subset, min_score=thr, k=3, generator=gen)
        sc = per_question.score_rows(rows, subset).assign(
            config="embed=int8 chunk=120 k=3",
            embedder="int8",
            chunk=120,
            k=3,
            generator=variant,
        )
        sc.loc[sc.path == "local_llm", "path"] = "local_llm"
        llm_scored.append(sc)
    return llm_scored, cold


def _extractive_summary(scored_all: list[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The extractive results per configuration, and per tenant at the default configuration."""
    import pandas as pd

    from infralab.engines.rag import answer_quality

    extractive = pd.concat(scored_all, ignore_index=True)
    by_config = (
        extractive.groupby("config", sort=False)
        .agg(
            questions=("qid", "size"),
            correct=("correct", "mean"),
            p50_latency_ms=("latency_ms", "median"),
            usd_per_1k_questions=("usd_per_1k", "mean"),
        )
        .reset_index()
    )
    default = extractive[extractive.config == "embed=int8 chunk=120 k=3"]
    per_tenant = (
        answer_quality.summarize_quality(default, ["tenant"])
        .reset_index()
        .to_dict(orient="records")
    )
    return by_config, per_tenant


def _llm_summary(llm_scored: list[Any], max_tokens: int) -> dict[str, Any]:
    """The local LLM's results: paths, routed sweep, variants, token prices, sample failures."""
    import pandas as pd

    from infralab.economics.costs import per_question
    from infralab.engines.rag import router

    llm = pd.concat(llm_scored, ignore_index=True)
    q4 = llm[llm.generator == "q4"]
    mix = router.routed(q4)
    sweep = _routed_sweep(q4)
    paths = router.path_summary(pd.concat([q4, mix], ignore_index=True))
    fp32 = llm[(llm.generator == "fp32") & (llm.path == "local_llm")]
    variants = (
        llm[llm.path == "local_llm"]
        .groupby("generator")
        .agg(
            questions=("qid", "size"),
            correct=("correct", "mean"),
            p50_latency_ms=("latency_ms", "median"),
            usd_per_1k_questions=("usd_per_1k", "mean"),
        )
    )
    gen_rows = q4[(q4.path == "local_llm") & (q4.prompt_tokens > 0)]
    p_tok = float(gen_rows.prompt_tokens.mean()) if len(gen_rows) else 0.0
    c_tok = float(gen_rows.completion_tokens.mean()) if len(gen_rows) else 0.0
    ladder = per_question.model_ladder(p_tok, c_tok) if p_tok else pd.DataFrame()
    gpu = _gpu_local_llm(p_tok, c_tok)
    failures = (
        q4[(q4.path == "local_llm") & ~q4.correct][["qid", "outcome", "answer"]]
        .head(8)
        .to_dict(orient="records")
    )
    return {
        "llm_questions": int((q4.path == "local_llm").sum()),
        "paths": json.loads(paths.to_json(orient="index")),
        "routed_sweep": sweep,
        "llm_variants": json.loads(variants.to_json(orient="index")),
        "llm_fp32_questions": len(fp32),
        "llm_outcomes": q4[q4.path == "local_llm"].outcome.value_counts().to_dict(),
        "llm_failures_sample": failures,
        "mean_tokens": {"prompt": p_tok, "completion": c_tok},
        "api_ladder": ladder.to_dict(orient="records"),
        "api_note": "quality not measured offline; price for the local run's token counts "
        "(the local tokenizer's counts; another model's tokenizer differs a little)",
        "gpu_local_llm": gpu,
        "max_tokens": max_tokens,
    }


def _routed_sweep(q4: Any) -> list[dict[str, float]]:
    """The routed mix at each minimum overlap: quality, share sent to the LLM, price, latency."""
    from infralab.engines.rag import router

    sweep = []
    for m in (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.01):
        r = router.routed(q4, min_overlap=m)
        sweep.append(
            {
                "min_overlap": m,
                "correct": float(r.correct.mean()),
                "share_to_llm": float((r.chosen == "local_llm").mean()),
                "usd_per_1k_questions": float(r.usd_per_1k.mean()),
                "p50_latency_ms": float(r.latency_ms.median()),
            }
        )
    return sweep


def _gpu_local_llm(p_tok: float, c_tok: float) -> dict[str, Any]:
    """The same generation's time and price on a rented GPU, or why it cannot be estimated."""
    from infralab.economics.costs.placement import gpu_usd_per_1k, gpu_usd_per_hour
    from infralab.engines.rag.measure import gpu_generate_ms

    try:
        ms, note = gpu_generate_ms(p_tok, c_tok)
        price, source = gpu_usd_per_hour("H200")
        return {
            "generate_ms": ms,
            "note": note,
            "usd_per_1k_at_30pct": gpu_usd_per_1k(ms, price, 0.3),
            "price_source": source,
        }
    except FileNotFoundError as exc:
        return {"note": str(exc)}


def _write(data: dict[str, Any], record: bool) -> Any:
    from infralab.core.results import machine, recorded, save_result, write_recorded

    if not record:
        return save_result("quality", data)
    try:  # merge: the sections not run this time stay as recorded
        rec = dict(recorded("quality").detail)
    except FileNotFoundError:
        rec = {"name": "quality"}
    rec["machine"] = machine()
    rec["command"] = "python -m infralab bench quality --record"
    rec["data"] = {**rec.get("data", {}), **data}
    return write_recorded("quality", None, rec)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infralab bench quality")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--llm-questions", type=int, default=24, help="q4 LLM subset size")
    parser.add_argument("--llm-questions-fp32", type=int, default=9)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--record", action="store_true", help="merge into quality.json")
    args = parser.parse_args(list(argv or []))
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in wanted if s not in SECTIONS]
    if bad:
        parser.error(f"unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    data: dict[str, Any] = {}
    path = None
    for name in wanted:
        t0 = time.perf_counter()
        if name == "quality":
            section = quality_section(args)
        elif name == "drift":
            from infralab.engines.rag.drift import drift_report

            section = drift_report()
        else:
            from infralab.engines.rag.isolation import isolation_run

            section = isolation_run()
        section["measured_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        section["seconds"] = round(time.perf_counter() - t0, 1)
        section["load_average_1m"] = round(os.getloadavg()[0], 2)
        data[name] = section
        print(json.dumps(section, indent=1, default=float)[:3000], flush=True)
        path = _write(data, args.record)  # after each section: a later failure keeps it
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
