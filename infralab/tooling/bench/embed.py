"""`python -m infralab bench embed`: the embedding engine measured, as ratios in one run.

What it measures, all in the same process so that a busy shared machine slows every side
alike: sentences/s of the kit's ONNX encoder (fp32 fused, fp32 plain ops, int8; fp16 and
fp32 on CUDA when asked) against sentence-transformers on PyTorch when that is installed,
on ~15-token sentences and on 120-150-token passages of the kit's corpus; the RAG index build
(every corpus chunk) as its own line; achieved GFLOP/s at sequence 128, batch 32 against the
best of several numpy float32 matmul runs measured here (the roofline; the median is reported
beside it); a batch x sequence sweep; and the synthetic-MLP crossover where a GPU overtakes
the CPU. ``--out`` writes everything as JSON with the machine, versions and date.

The measurements beyond the engine's sweeps (passages, the index build, single-thread
ratios, quality) are :mod:`infralab.tooling.bench.embed_measures`; this module interleaves them with
the rest in :func:`run`, one named step each, and records the run. A command-line tool only: what lesson and lab 03 call lives in the engines and the results
(``infralab.engines.models.throughput``: ``sweep``, ``crossover``, ``predict_crossover``, ...;
``infralab.engines.models.sentence_transformers_model``; ``infralab.core.results.latest_gpu_run`` and
``provenance``); this module runs and records them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.results import EmbeddingResult
from infralab.engines.models.pytorch_peer import sentence_transformers_model
from infralab.engines.models.throughput import (
    ST_NAME,
    compare,
    crossover,
    crossover_point,
    matmul_peak,
    sample_sentences,
    sweep,
    throughput_summary,
)
from infralab.tooling.bench.embed_measures import (
    corpus_chunks,
    cpu_time_ratios,
    index_build,
    quality,
    reference_items,
    sample_passages,
)


# ---------------------------------------------------------------- provenance
def machine_info(threads: int | None = None) -> dict[str, Any]:
    """:func:`infralab.core.results.machine` (the kit's one machine description), plus the keys
    this benchmark's recorded files have always carried (cpu, threads, CPU flags)."""
    from infralab.core.results import machine
    from infralab.core.runtime import physical_cores

    info = machine(threads or physical_cores())
    info["cpu"] = info["cpu_model"]
    info["logical_cpus"] = info["cpus"]
    info["physical_cores_used"] = physical_cores()
    info["load_average_1m_at_start"] = info.pop("load_average_1m", None)
    try:
        from infralab.core import env

        keep = {"avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}
        info["cpu_flags"] = sorted(f for f in env.cpu_flags() if f in keep)
        info["gpus"] = env.gpu_info()
    except Exception:
        info["gpus"] = []
    return info


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("onnxruntime-gpu", "onnxruntime", "onnx", "numpy", "tokenizers", "torch",
                 "sentence-transformers", "transformers"):  # fmt: skip
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def typed_record(out: dict[str, Any]) -> EmbeddingResult:
    """The typed record of one run of this bench (the output :func:`run` returns)."""
    from infralab.core.results import vcpus_used

    d, m = out["data"], out["machine"]
    engine = d.get("best_engine", "")
    quality = (out.get("quality") or {}).get("vs_cpu_fp32", {}).get(engine, {})
    gpus = m.get("gpus") or []
    provider = out.get("provider", "cpu")
    if provider == "cpu":
        device = f"CPU ({m.get('cpu_model')}, {int(vcpus_used(m))} threads)"
    else:
        device = (gpus[0].get("name") if gpus and isinstance(gpus[0], dict) else str(gpus)) or ""
    return EmbeddingResult(
        date=out["measured_at"],
        machine=m,
        command=out["benchmark"],
        sentences_per_s=float(d["sentences_per_s"]),
        engine=engine,
        provider=provider,
        device=device,
        batch_size=int(d.get("batch_size", 32)),
        cpu_vcpus=vcpus_used(m),
        mean_tokens_per_sentence=d.get("mean_tokens_per_sentence"),
        min_cosine_vs_fp32=quality.get("min_cosine", 1.0 if engine.endswith("fp32") else None),
    )


# ---------------------------------------------------------------- the run
def _say(msg: str) -> None:
    print(msg, flush=True)


def _table(df: Any, digits: int = 1) -> str:
    return df.to_string(index=False, float_format=lambda x: f"{x:.{digits}f}")


@dataclass
class _Tables:
    """What one run measured, in the order it measured it (the steps of :func:`run`)."""

    peaks: dict[str, Any]
    sentences: list[str]
    tokens: list[int]
    compare: Any  # DataFrame: every engine on the sentences
    passages: list[str] = field(default_factory=list)
    passage_tokens: list[int] = field(default_factory=list)
    passage_compare: Any = None
    chunks: list[str] = field(default_factory=list)
    index: Any = None
    single_thread: dict[str, float] = field(default_factory=dict)
    roofline: Any = None
    sweep: Any = None
    crossover: Any = None


def _header(provider: str, quick: bool, threads: int | None) -> dict[str, Any]:
    """The record's provenance (machine, versions, date), printed as it is taken."""
    record: dict[str, Any] = {
        "name": "embedding",
        "benchmark": "python -m infralab bench embed",
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(threads),
        "versions": versions(),
        "provider": provider,
        "quick": quick,
    }
    m = record["machine"]
    _say(f"machine: {m['cpu']}, {m['threads']} threads, load {m.get('load_average_1m_at_start')}")
    for g in m.get("gpus") or []:
        _say(f"gpu: {g}")
    _say("versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()))
    return record


def _variants(provider: str, progress: bool) -> list[tuple[str, str]]:
    """The encoder variants this run compares, built (cached after the first time)."""
    from infralab.engines.models import encoder

    _say("building the encoder variants (cached after the first time) ...")
    variants = [("fp32", "cpu"), ("int8", "cpu"), ("int8-mixed", "cpu"), ("fp32-unfused", "cpu")]
    if provider == "cuda":
        variants = [("fp16", "cuda"), ("fp32", "cuda"), *variants]
    for v in {v for v, _ in variants}:
        encoder.build(v, quiet=not progress)
    return variants


def _matmul_peak(quick: bool) -> dict[str, Any]:
    _say("measuring numpy float32 matmul (the CPU roofline) ...")
    peaks = matmul_peak(2048, repeats=3 if quick else 5)
    _say(f"  numpy matmul: best {peaks['best_gflops']:.1f} GFLOP/s (the peak), median "
         f"{peaks['median_gflops']:.1f} of {peaks['runs']} runs")  # fmt: skip
    return peaks


def _embedders(variants: list[tuple[str, str]], batch: int, threads: int | None) -> dict[str, Any]:
    from infralab.engines.models import encoder

    embedders = {}
    for v, p in variants:
        opt = "basic" if v == "fp32-unfused" else "all"  # plain ops, without ORT's own fusions
        embedders[f"{p}/{v}"] = encoder.Embedder(
            v, p, batch_size=batch, threads=threads, opt_level=opt
        )
    return embedders


def _quality(embedders: dict[str, Any], sentences: list[str]) -> dict[str, Any]:
    """Each variant's cosine to cpu/fp32, and cpu/fp32's to the reference embeddings."""
    from infralab.engines.models import encoder

    embs = {key: e.embed(sentences) for key, e in embedders.items()}
    qual: dict[str, Any] = {"vs_cpu_fp32": quality(embs, base="cpu/fp32")}
    ref = reference_items()
    if ref is not None:
        refs = np.array([it["embedding"] for it in ref], dtype=np.float32)
        mine = embedders["cpu/fp32"].embed([it["text"] for it in ref])
        qual["fp32_vs_reference"] = {
            "min_cosine": float(encoder.cosine(mine, refs).min()),
            "max_abs_diff": float(np.abs(mine - refs).max()),
            "items": len(ref),
        }
    return qual


def _engines(
    embedders: dict[str, Any], batch: int, compare_st: bool, threads: int | None
) -> tuple[dict[str, Callable[[list[str]], Any]], Any]:
    """The engines to compare (the kit's variants, sentence-transformers if installed)."""
    engines: dict[str, Callable[[list[str]], Any]] = {k: e.embed for k, e in embedders.items()}
    st = sentence_transformers_model(threads) if compare_st else None
    if st is not None:
        engines[ST_NAME] = lambda t: st.encode(t, batch_size=batch)
    elif compare_st:
        _say("sentence-transformers is not installed: no PyTorch comparison "
             "(pip install 'infralab[compare]' to add it)")  # fmt: skip
    return engines, st


def _passages(
    t: _Tables, engines: dict[str, Callable], fp32: Any, provider: str, quick: bool, progress: bool
) -> dict[str, Callable]:
    """Passages of the corpus compared on fp32, int8 and sentence-transformers (and CUDA)."""
    t.passages = sample_passages(48 if quick else 128)
    t.passage_tokens = fp32.count_tokens(t.passages)
    p_tokens = t.passage_tokens
    _say(f"{len(t.passages)} passages of the corpus, {min(p_tokens)}-{max(p_tokens)} tokens "
         f"({np.mean(p_tokens):.0f} on average): comparing (interleaved rounds) ...")  # fmt: skip
    long_engines = {k: v for k, v in engines.items() if k in ("cpu/fp32", "cpu/int8", ST_NAME)}
    if provider == "cuda":
        long_engines.update({k: engines[k] for k in ("cuda/fp16", "cuda/fp32")})
    t.passage_compare = compare(
        long_engines, t.passages, rounds=2 if quick else 3, progress=progress
    )
    _say(_table(t.passage_compare))
    return long_engines


def _index_build(t: _Tables, long_engines: dict[str, Callable], progress: bool) -> None:
    t.chunks = corpus_chunks()
    _say(f"RAG index build: embedding the whole corpus ({len(t.chunks)} chunks) once per "
         "engine ...")  # fmt: skip
    t.index = index_build(long_engines, t.chunks, progress=progress)
    _say(_table(t.index))


def _single_thread(t: _Tables, st: Any, batch: int, quick: bool) -> None:
    """The contention-robust ratios (one thread each, CPU time), on sentences and passages."""
    _say("contention-robust check: one thread each, sentences per CPU-second ...")
    single = cpu_time_ratios(st, t.sentences, batch, rounds=2 if quick else 3)
    _say("  sentences: " + ", ".join(f"{k}: {v:.2f}x" for k, v in single.items()))
    single_p = cpu_time_ratios(st, t.passages, batch, rounds=2 if quick else 3)
    _say("  passages: " + ", ".join(f"{k}: {v:.2f}x" for k, v in single_p.items()))
    single.update({f"passages: {k}": v for k, v in single_p.items()})
    t.single_thread = single


def _roofline(t: _Tables) -> None:
    _say("encoder GFLOP/s at seq 128, batch 32 (fixed shape, no padding) ...")
    t.roofline = sweep([("fp32", "cpu"), ("int8", "cpu")], (32,), (128,),
                       peak_gflops=t.peaks["best_gflops"], max_time_s=2.0,
                       progress=False)  # fmt: skip
    cols = ["variant", "provider", "p50_ms", "gflops", "pct_of_peak"]
    _say(t.roofline[cols].to_string(index=False))


def _sweep_grid(provider: str, quick: bool) -> tuple[list[tuple[str, str]], tuple, tuple]:
    """Variants, batch sizes and sequence lengths of the batch x sequence sweep."""
    if provider == "cuda":
        variants = [("fp32", "cpu"), ("fp32", "cuda"), ("fp16", "cuda")]
        if quick:
            return variants, (1, 8, 32, 128), (16, 128)
        return variants, (1, 8, 32, 128), (16, 64, 128, 256)
    variants = [("fp32", "cpu"), ("int8", "cpu")]
    if quick:
        return variants, (1, 8, 32), (16, 128)
    return variants, (1, 4, 16, 32), (16, 64, 128)


def _sweep_and_crossover(t: _Tables, provider: str, quick: bool, progress: bool) -> None:
    _say("sweep: batch x sequence ...")
    sv, batches, seqs = _sweep_grid(provider, quick)
    t.sweep = sweep(sv, batches, seqs, peak_gflops=t.peaks["best_gflops"],
                    max_time_s=0.3 if quick else 0.6, progress=progress)  # fmt: skip
    _say("crossover: synthetic MLPs of growing width ...")
    hiddens = (64, 128, 256, 512, 1024, 2048) + ((4096,) if provider == "cuda" else ())
    if quick and provider != "cuda":
        hiddens = (64, 256, 1024)
    t.crossover = crossover(hiddens, providers=("cpu", "cuda") if provider == "cuda" else ("cpu",),
                            progress=progress)  # fmt: skip
    _say(_table(t.crossover, 3))


def _over_st(by_engine: Mapping[str, float], prefix: str = "") -> dict[str, float]:
    """Each engine's rate over sentence-transformers' (none when it was not measured)."""
    st = by_engine.get(ST_NAME)
    return {f"{prefix}{k} / sentence-transformers": v / st
            for k, v in by_engine.items() if k != ST_NAME and st}  # fmt: skip


def _ratios(t: _Tables, sps: dict[str, float]) -> dict[str, float | None]:
    """Every figure of the run as a ratio against another figure of the same run."""
    ratios: dict[str, float | None] = {**_over_st(sps)}
    ratios.update(_over_st(_by_engine(t.passage_compare, "sentences_per_s"), "passages: "))
    ratios.update(_over_st(_by_engine(t.index, "chunks_per_s"), "index build: "))
    if "cpu/fp32-unfused" in sps:
        ratios["fusion gain (cpu/fp32 / cpu/fp32-unfused)"] = (
            sps["cpu/fp32"] / sps["cpu/fp32-unfused"]
        )
    if "cuda/fp16" in sps:
        ratios["cuda/fp16 / cpu/fp32"] = sps["cuda/fp16"] / sps["cpu/fp32"]
    for k, v in t.single_thread.items():
        ratios[f"{k} (1 thread, CPU time)"] = v
    fp32_roof = t.roofline[t.roofline.variant == "fp32"].iloc[0]
    ratios["encoder GFLOP/s (seq 128, batch 32) / numpy matmul peak"] = (
        fp32_roof.gflops / t.peaks["best_gflops"]
    )
    ratios["encoder GFLOP/s (seq 128, batch 32) / numpy matmul median"] = (
        fp32_roof.gflops / t.peaks["median_gflops"]
    )
    return ratios


def _by_engine(df: Any, column: str) -> dict[str, float]:
    return dict(zip(df.engine, df[column], strict=True))


def _data(t: _Tables, batch: int, provider: str, ratios: dict[str, Any]) -> dict[str, Any]:
    """The record's ``data``: the headline figures, the ratios and every table."""
    p_tokens, idx = t.passage_tokens, t.index
    return {
        **throughput_summary(t.compare, batch, provider),
        "sentences": len(t.sentences),
        "mean_tokens_per_sentence": float(np.mean(t.tokens)),
        "ratios": ratios,
        "matmul_peak_gflops": t.peaks["best_gflops"],
        "matmul_median_gflops": t.peaks["median_gflops"],
        "passages": {
            "count": len(t.passages),
            "tokens_min": int(min(p_tokens)),
            "tokens_max": int(max(p_tokens)),
            "mean_tokens": float(np.mean(p_tokens)),
            "passages_per_s_by_engine": {
                str(k): float(v)
                for k, v in _by_engine(t.passage_compare, "sentences_per_s").items()
            },
            "compare": t.passage_compare.to_dict(orient="records"),
        },
        "index_build": {
            "chunks": len(t.chunks),
            "seconds_by_engine": {
                str(e): float(x) for e, x in zip(idx.engine, idx.seconds, strict=True)
            },
            "chunks_per_s_by_engine": {
                str(k): float(v) for k, v in _by_engine(idx, "chunks_per_s").items()
            },
        },
        "encoder_gflops_seq128_batch32": {
            r.variant: float(r.gflops) for r in t.roofline.itertuples()
        },
        "crossover_hidden": crossover_point(t.crossover),
        "compare": t.compare.to_dict(orient="records"),
        "sweep": t.sweep.to_dict(orient="records"),
        "crossover": t.crossover.to_dict(orient="records"),
    }


def _report(record: dict[str, Any]) -> None:
    """The run's summary: every ratio, the quality, the crossover, the time it took."""
    qual, data = record["quality"], record["data"]
    _say("\n== results (one run, same sentences) ==")
    for k, v in data["ratios"].items():
        _say(f"  {k}: {v:.2f}x" if "numpy matmul" not in k else f"  {k}: {v:.0%}")
    for k, v in qual["vs_cpu_fp32"].items():
        _say(f"  cosine {k} to cpu/fp32: min {v['min_cosine']:.4f}, mean {v['mean_cosine']:.4f}")
    if "fp32_vs_reference" in qual:
        r = qual["fp32_vs_reference"]
        _say(f"  fp32 vs reference ({r['items']} items): min cosine {r['min_cosine']:.6f}, "
             f"max |diff| {r['max_abs_diff']:.2e}")  # fmt: skip
    if record["provider"] == "cuda":
        _say(f"  crossover (GPU faster than CPU from hidden size): {data['crossover_hidden']}")
    _say(f"  took {record['seconds']:.0f} s")


def run(
    provider: str = "cpu",
    *,
    quick: bool = False,
    batch: int = 32,
    compare_st: bool = True,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The whole benchmark; returns the record that ``--out`` writes."""
    started = time.perf_counter()
    record = _header(provider, quick, threads)
    variants = _variants(provider, progress)
    peaks = _matmul_peak(quick)
    sentences = sample_sentences(128 if quick else 256)
    embedders = _embedders(variants, batch, threads)
    fp32 = embedders["cpu/fp32"]
    tokens = fp32.count_tokens(sentences)
    _say(f"{len(sentences)} sentences, {np.mean(tokens):.1f} tokens on average, batch {batch}")
    record["quality"] = _quality(embedders, sentences)
    engines, st = _engines(embedders, batch, compare_st, threads)
    _say("comparing engines on the same sentences (interleaved rounds) ...")
    cmp_df = compare(engines, sentences, rounds=2 if quick else 3, progress=progress)
    _say(_table(cmp_df))
    t = _Tables(peaks, sentences, tokens, cmp_df)
    long_engines = _passages(t, engines, fp32, provider, quick, progress)
    _index_build(t, long_engines, progress)
    if st is not None:
        _single_thread(t, st, batch, quick)
    _roofline(t)
    _sweep_and_crossover(t, provider, quick, progress)
    sps = throughput_summary(cmp_df, batch, provider)["sentences_per_s_by_engine"]
    record["data"] = _data(t, batch, provider, _ratios(t, sps))
    record["seconds"] = round(time.perf_counter() - started, 1)
    _report(record)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infralab bench embed", description=__doc__)
    parser.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="fewer sentences and sweep points")
    parser.add_argument("--out", type=Path, help="write the record as JSON here")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: physical cores")
    parser.add_argument("--no-compare", action="store_true", help="skip sentence-transformers")
    args = parser.parse_args(list(argv or []))
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if args.provider == "cuda":
        from infralab.core import runtime

        if not runtime.cuda_usable():
            print(f"error: the CUDA provider does not run here: {runtime.explain('cuda')}",
                  file=sys.stderr)  # fmt: skip
            return 2
    record = run(args.provider, quick=args.quick, batch=args.batch,
                 compare_st=not args.no_compare, threads=args.threads)  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        from infralab.core.results import detail_of, write_recorded

        typed = typed_record(record)  # the typed record lessons and readers use
        write_recorded("embedding", typed, detail_of(typed, record, ("best_engine",)), args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
