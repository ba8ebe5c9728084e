"""`python -m infralab bench embed`: the embedding engine measured, as ratios in one run.

What it measures, all in the same process so that a busy shared machine slows every side
alike: sentences/s of the kit's ONNX encoder (fp32 fused, fp32 plain ops, int8; fp16 and
fp32 on CUDA when asked) against sentence-transformers on PyTorch when that is installed,
on ~15-token sentences and on 120-150-token passages of the kit's corpus; the RAG index build
(every corpus chunk) as its own line; achieved GFLOP/s at sequence 128, batch 32 against the
best of several numpy float32 matmul runs measured here (the roofline; the median is reported
beside it); a batch x sequence sweep; and the synthetic-MLP crossover where a GPU overtakes
the CPU. ``--out`` writes everything as JSON with the machine, versions and date.

Size: one module because every figure here is a ratio against another figure of the same
run (the peak, sentence-transformers, the other variants), and splitting the measurements
from the run that interleaves them would only move the shared helpers apart. The pieces the
lesson and lab 03 call one by one (``sweep``, ``crossover``, ``predict_crossover``, ...) live
in the engine, ``infralab.engines.models.throughput``; this module only runs and records them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.paths import MINILM_REFERENCE
from infralab.core.results import EmbeddingResult, Recorded
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

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "latest_gpu_run",
    "provenance",
    "sentence_transformers_model",
]


ROOT = Path(__file__).resolve().parents[3]
REFERENCE = MINILM_REFERENCE

# ---------------------------------------------------------------- inputs
# ---------------------------------------------------------------- passages and the corpus
PASSAGE_TOKENS = (120, 150)


def sample_passages(
    n: int = 128, tokens: tuple[int, int] = PASSAGE_TOKENS, seed: int = 0
) -> list[str]:
    """``n`` passages of the kit's corpus (datasets/corpus) of ``tokens`` model tokens each.

    What a RAG index embeds: windows of the corpus documents cut at token boundaries (with
    the model's tokenizer, [CLS] and [SEP] counted), each checked after re-tokenizing. The
    same for a given seed; raises when the corpus cannot give ``n`` distinct passages.
    """
    from infralab.engines.models.encoder import _load_tokenizer
    from infralab.engines.rag.corpus import load_documents

    lo, hi = tokens
    if not isinstance(n, int) or n < 1 or not 4 <= lo <= hi <= 256:
        raise ValueError(f"need n >= 1 and 4 <= lo <= hi <= 256, got n={n!r}, tokens={tokens!r}.")
    tok = _load_tokenizer(256)
    tok.no_truncation()
    rng = random.Random(seed)
    passages: list[str] = []
    for doc in load_documents():
        text = doc.text
        enc = tok.encode(text, add_special_tokens=False)
        start = 0
        while start < len(enc.offsets) and len(passages) < 4 * n:
            width = rng.randint(lo, hi) - 2  # room for [CLS] and [SEP]
            span = enc.offsets[start : start + width]
            if len(span) < width:
                break
            piece = text[span[0][0] : span[-1][1]].strip()
            if lo <= len(tok.encode(piece).ids) <= hi:
                passages.append(piece)
            start += width
    if len(passages) < n:
        raise ValueError(
            f"the corpus gave {len(passages)} passages of {lo}-{hi} tokens, fewer than {n}: "
            "ask for fewer or widen the range."
        )
    rng.shuffle(passages)
    return passages[:n]


def corpus_chunks() -> list[str]:
    """Every chunk the RAG lesson indexes (the kit's corpus, the default chunking)."""
    from infralab.engines.rag.chunking import chunk_documents
    from infralab.engines.rag.corpus import load_documents

    return [c.text for c in chunk_documents(load_documents())]


def index_build(
    engines: dict[str, Callable[[list[str]], Any]],
    texts: Sequence[str],
    *,
    rounds: int = 1,
    progress: bool = True,
) -> Any:
    """The RAG index build (embedding every chunk of the corpus), per engine, interleaved.

    Engines should have run once already (no untimed pass: the corpus takes a while).
    Returns a DataFrame: engine, chunks, seconds (median of ``rounds``), chunks_per_s.
    """
    df = compare(engines, texts, rounds=rounds, progress=progress, warmup=False)
    df = df.rename(columns={"sentences_per_s": "chunks_per_s"})
    df["chunks"] = len(texts)
    df["seconds"] = len(texts) / df["chunks_per_s"]
    return df[["engine", "chunks", "seconds", "chunks_per_s", "passes"]]


# ---------------------------------------------------------------- engines
def sentence_transformers_model(threads: int | None = None) -> Any | None:
    """The original implementation, built offline from the kit's fetched files; None if absent.

    The model folder is assembled from the safetensors, the tokenizer and configuration
    files written from the model's known values, so nothing is fetched from a hub.
    """
    try:
        import sentence_transformers  # noqa: F401
        import torch
    except ImportError:
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from infralab.core.runtime import physical_cores

    folder = _st_folder()
    torch.set_num_threads(threads or physical_cores())
    return SentenceTransformer(str(folder), device="cpu")


def _st_folder() -> Path:
    from infralab.core.assets import asset_paths, cache_dir

    folder = cache_dir() / "compare" / "st-minilm-l6"
    (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
    for name, src in asset_paths("minilm").items():
        link = folder / name
        if link.is_symlink() and link.resolve() != src.resolve():
            link.unlink()
        if not link.exists():
            try:
                link.symlink_to(src)
            except OSError:  # e.g. Windows without symlink rights
                import shutil

                shutil.copyfile(src, link)
    files = {
        "config.json": {
            "architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384,
            "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536,
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
            "type_vocab_size": 2, "vocab_size": 30522, "layer_norm_eps": 1e-12,
            "initializer_range": 0.02, "pad_token_id": 0, "position_embedding_type": "absolute",
        },
        "tokenizer_config.json": {
            "do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer",
            "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
            "unk_token": "[UNK]", "mask_token": "[MASK]",
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": 384, "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    }  # fmt: skip
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=1))
    return folder


def cpu_time_ratios(
    st: Any, sentences: Sequence[str], batch: int = 32, *, rounds: int = 3
) -> dict[str, float]:
    """fp32 and int8 against sentence-transformers, one thread each, in CPU seconds.

    On a shared machine wall-clock ratios depend on how each runtime copes with competing
    processes (PyTorch's OpenMP threads suffer more); CPU time of a single thread is the
    like-for-like work each does per sentence.
    """
    import torch

    from infralab.engines.models.encoder import Embedder

    texts = list(sentences)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engines = {
            "cpu/fp32": Embedder("fp32", "cpu", batch_size=batch, threads=1).embed,
            "cpu/int8": Embedder("int8", "cpu", batch_size=batch, threads=1).embed,
            "cpu/int8-mixed": Embedder("int8-mixed", "cpu", batch_size=batch, threads=1).embed,
            ST_NAME: lambda t: st.encode(t, batch_size=batch),
        }
        cpu_s: dict[str, list[float]] = {k: [] for k in engines}
        for fn in engines.values():
            fn(texts)
        for _ in range(rounds):
            for name, fn in engines.items():
                t0 = time.process_time()
                fn(texts)
                cpu_s[name].append(time.process_time() - t0)
    finally:
        torch.set_num_threads(before)
    st_s = float(np.median(cpu_s[ST_NAME]))
    return {f"{k} / sentence-transformers": st_s / float(np.median(v))
            for k, v in cpu_s.items() if k != ST_NAME}  # fmt: skip


# ---------------------------------------------------------------- quality
def reference_items() -> list[dict] | None:
    """Items of datasets/reference/minilm_reference.json, or None when it is absent."""
    if not REFERENCE.is_file():
        return None
    return json.loads(REFERENCE.read_text())["items"]


def quality(embeddings: dict[str, np.ndarray], base: str = "fp32") -> dict[str, dict[str, float]]:
    """Cosine of each variant's embeddings to ``base`` on the same sentences (min and mean)."""
    from infralab.engines.models.encoder import cosine

    out = {}
    for name, emb in embeddings.items():
        if name == base:
            continue
        c = cosine(emb, embeddings[base])
        out[name] = {"min_cosine": float(c.min()), "mean_cosine": float(c.mean())}
    return out


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


def recorded_gpu_runs() -> list[Recorded]:
    """Real GPU runs of this bench shipped with the kit (``embedding_gpu_*``), read by
    :func:`infralab.core.results.recorded`, the one reader of recorded runs."""
    from infralab.core import results

    return [results.recorded(name) for name in results.recorded_names("embedding_gpu_*")]


def latest_gpu_run() -> Recorded | None:
    """The most recent recorded GPU run, or None (then a lesson says so, and invents nothing)."""
    runs = recorded_gpu_runs()
    return max(runs, key=lambda r: str(r["date"])) if runs else None


def provenance(run: Mapping[str, Any]) -> str:
    """One line saying where and when a recorded run was measured."""
    m = run.get("machine", {})
    gpus = m.get("gpus") or []
    gpu = ", ".join(
        f"{g.get('name', '?')} (driver {g.get('driver', '?')})" for g in gpus if isinstance(g, dict)
    )
    ver = run.get("versions", {})
    ort = ver.get("onnxruntime-gpu") or ver.get("onnxruntime", "?")
    return (
        f"Recorded elsewhere: {gpu or 'no GPU'}; CPU {m.get('cpu', '?')}; ONNX Runtime {ort}; "
        f"measured {run.get('date', '?')} ({Path(run.get('file', 'file')).name})."
    )


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
    from infralab.engines.models import encoder

    started = time.perf_counter()
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

    _say("building the encoder variants (cached after the first time) ...")
    variants = [("fp32", "cpu"), ("int8", "cpu"), ("int8-mixed", "cpu"), ("fp32-unfused", "cpu")]
    if provider == "cuda":
        variants = [("fp16", "cuda"), ("fp32", "cuda"), *variants]
    for v in {v for v, _ in variants}:
        encoder.build(v, quiet=not progress)

    _say("measuring numpy float32 matmul (the CPU roofline) ...")
    peaks = matmul_peak(2048, repeats=3 if quick else 5)
    peak = peaks["best_gflops"]
    _say(f"  numpy matmul: best {peak:.1f} GFLOP/s (the peak), median {peaks['median_gflops']:.1f}"
         f" of {peaks['runs']} runs")  # fmt: skip

    sentences = sample_sentences(128 if quick else 256)
    embedders = {}
    for v, p in variants:
        key = f"{p}/{v}"
        opt = "basic" if v == "fp32-unfused" else "all"  # plain ops, without ORT's own fusions
        embedders[key] = encoder.Embedder(v, p, batch_size=batch, threads=threads, opt_level=opt)
    tokens = embedders["cpu/fp32"].count_tokens(sentences)
    _say(f"{len(sentences)} sentences, {np.mean(tokens):.1f} tokens on average, batch {batch}")

    # quality
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
    record["quality"] = qual

    engines: dict[str, Callable[[list[str]], Any]] = {k: e.embed for k, e in embedders.items()}
    st = sentence_transformers_model(threads) if compare_st else None
    if st is not None:
        engines[ST_NAME] = lambda t: st.encode(t, batch_size=batch)
    elif compare_st:
        _say("sentence-transformers is not installed: no PyTorch comparison "
             "(pip install 'infralab[compare]' to add it)")  # fmt: skip
    _say("comparing engines on the same sentences (interleaved rounds) ...")
    cmp_df = compare(engines, sentences, rounds=2 if quick else 3, progress=progress)
    _say(cmp_df.to_string(index=False, float_format=lambda x: f"{x:.1f}"))

    passages = sample_passages(48 if quick else 128)
    p_tokens = embedders["cpu/fp32"].count_tokens(passages)
    _say(f"{len(passages)} passages of the corpus, {min(p_tokens)}-{max(p_tokens)} tokens "
         f"({np.mean(p_tokens):.0f} on average): comparing (interleaved rounds) ...")  # fmt: skip
    long_engines = {k: v for k, v in engines.items() if k in ("cpu/fp32", "cpu/int8", ST_NAME)}
    if provider == "cuda":
        long_engines.update({k: engines[k] for k in ("cuda/fp16", "cuda/fp32")})
    pas_df = compare(long_engines, passages, rounds=2 if quick else 3, progress=progress)
    _say(pas_df.to_string(index=False, float_format=lambda x: f"{x:.1f}"))

    chunks = corpus_chunks()
    _say(f"RAG index build: embedding the whole corpus ({len(chunks)} chunks) once per engine ...")
    idx_df = index_build(long_engines, chunks, progress=progress)
    _say(idx_df.to_string(index=False, float_format=lambda x: f"{x:.1f}"))

    single: dict[str, float] = {}
    if st is not None:
        _say("contention-robust check: one thread each, sentences per CPU-second ...")
        single = cpu_time_ratios(st, sentences, batch, rounds=2 if quick else 3)
        _say("  sentences: " + ", ".join(f"{k}: {v:.2f}x" for k, v in single.items()))
        single_p = cpu_time_ratios(st, passages, batch, rounds=2 if quick else 3)
        _say("  passages: " + ", ".join(f"{k}: {v:.2f}x" for k, v in single_p.items()))
        single.update({f"passages: {k}": v for k, v in single_p.items()})

    _say("encoder GFLOP/s at seq 128, batch 32 (fixed shape, no padding) ...")
    roof = sweep([("fp32", "cpu"), ("int8", "cpu")], (32,), (128,), peak_gflops=peak,
                 max_time_s=2.0, progress=False)  # fmt: skip
    _say(roof[["variant", "provider", "p50_ms", "gflops", "pct_of_peak"]].to_string(index=False))

    _say("sweep: batch x sequence ...")
    if provider == "cuda":
        sv, batches, seqs = (
            [("fp32", "cpu"), ("fp32", "cuda"), ("fp16", "cuda")],
            (1, 8, 32, 128),
            (16, 64, 128, 256),
        )
        if quick:
            batches, seqs = (1, 8, 32, 128), (16, 128)
    else:
        sv, batches, seqs = [("fp32", "cpu"), ("int8", "cpu")], (1, 4, 16, 32), (16, 64, 128)
        if quick:
            batches, seqs = (1, 8, 32), (16, 128)
    sw = sweep(sv, batches, seqs, peak_gflops=peak, max_time_s=0.3 if quick else 0.6,
               progress=progress)  # fmt: skip

    _say("crossover: synthetic MLPs of growing width ...")
    hiddens = (64, 128, 256, 512, 1024, 2048) + ((4096,) if provider == "cuda" else ())
    if quick and provider != "cuda":
        hiddens = (64, 256, 1024)
    cross = crossover(hiddens, providers=("cpu", "cuda") if provider == "cuda" else ("cpu",),
                      progress=progress)  # fmt: skip
    _say(cross.to_string(index=False, float_format=lambda x: f"{x:.3f}"))

    sps = throughput_summary(cmp_df, batch, provider)["sentences_per_s_by_engine"]
    ratios: dict[str, float | None] = {}
    st_sps = sps.get(ST_NAME)
    for key in sps:
        if key != ST_NAME and st_sps:
            ratios[f"{key} / sentence-transformers"] = sps[key] / st_sps
    p_sps = dict(zip(pas_df.engine, pas_df.sentences_per_s, strict=True))
    i_sps = dict(zip(idx_df.engine, idx_df.chunks_per_s, strict=True))
    for key in p_sps:
        if key != ST_NAME and p_sps.get(ST_NAME):
            ratios[f"passages: {key} / sentence-transformers"] = p_sps[key] / p_sps[ST_NAME]
    for key in i_sps:
        if key != ST_NAME and i_sps.get(ST_NAME):
            ratios[f"index build: {key} / sentence-transformers"] = i_sps[key] / i_sps[ST_NAME]
    if "cpu/fp32-unfused" in sps:
        ratios["fusion gain (cpu/fp32 / cpu/fp32-unfused)"] = (
            sps["cpu/fp32"] / sps["cpu/fp32-unfused"]
        )
    if "cuda/fp16" in sps:
        ratios["cuda/fp16 / cpu/fp32"] = sps["cuda/fp16"] / sps["cpu/fp32"]
    for k, v in single.items():
        ratios[f"{k} (1 thread, CPU time)"] = v
    fp32_roof = roof[roof.variant == "fp32"].iloc[0]
    ratios["encoder GFLOP/s (seq 128, batch 32) / numpy matmul peak"] = fp32_roof.gflops / peak
    ratios["encoder GFLOP/s (seq 128, batch 32) / numpy matmul median"] = (
        fp32_roof.gflops / peaks["median_gflops"]
    )
    cp = crossover_point(cross)
    record["data"] = {
        **throughput_summary(cmp_df, batch, provider),
        "sentences": len(sentences),
        "mean_tokens_per_sentence": float(np.mean(tokens)),
        "ratios": ratios,
        "matmul_peak_gflops": peak,
        "matmul_median_gflops": peaks["median_gflops"],
        "passages": {
            "count": len(passages),
            "tokens_min": int(min(p_tokens)),
            "tokens_max": int(max(p_tokens)),
            "mean_tokens": float(np.mean(p_tokens)),
            "passages_per_s_by_engine": {str(k): float(v) for k, v in p_sps.items()},
            "compare": pas_df.to_dict(orient="records"),
        },
        "index_build": {
            "chunks": len(chunks),
            "seconds_by_engine": {
                str(e): float(x) for e, x in zip(idx_df.engine, idx_df.seconds, strict=True)
            },
            "chunks_per_s_by_engine": {str(k): float(v) for k, v in i_sps.items()},
        },
        "encoder_gflops_seq128_batch32": {r.variant: float(r.gflops) for r in roof.itertuples()},
        "crossover_hidden": cp,
        "compare": cmp_df.to_dict(orient="records"),
        "sweep": sw.to_dict(orient="records"),
        "crossover": cross.to_dict(orient="records"),
    }
    record["quality"] = qual
    record["seconds"] = round(time.perf_counter() - started, 1)

    _say("\n== results (one run, same sentences) ==")
    for k, v in ratios.items():
        _say(f"  {k}: {v:.2f}x" if "numpy matmul" not in k else f"  {k}: {v:.0%}")
    for k, v in qual["vs_cpu_fp32"].items():
        _say(f"  cosine {k} to cpu/fp32: min {v['min_cosine']:.4f}, mean {v['mean_cosine']:.4f}")
    if "fp32_vs_reference" in qual:
        r = qual["fp32_vs_reference"]
        _say(f"  fp32 vs reference ({r['items']} items): min cosine {r['min_cosine']:.6f}, "
             f"max |diff| {r['max_abs_diff']:.2e}")  # fmt: skip
    if provider == "cuda":
        _say(f"  crossover (GPU faster than CPU from hidden size): {cp}")
    _say(f"  took {record['seconds']:.0f} s")
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
