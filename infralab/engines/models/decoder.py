"""SmolLM2 (Llama family) from its GGUF file to an ONNX decoder with a KV cache.

Why export by hand instead of converting through PyTorch: the kit must build its model on a
1-2 GB Binder machine without torch, and a hand-written graph can use ONNX Runtime's fused
operators directly (GroupQueryAttention with rotary embeddings and a shared KV buffer,
SkipSimplifiedLayerNormalization, MatMulNBits), which is what makes decoding fast.

The export streams: each tensor is read from the memory-mapped GGUF, converted and appended
to the external-data file, then dropped, so the peak memory stays near one tensor.

Variants (``build(variant)``):

- ``fp32``: every weight dequantized to float32 (the reference-accuracy model).
- ``q4``: the Q4_1 blocks kept as 4-bit ``MatMulNBits`` weights. A Q4_1 block holds
  ``w = d*q + m``. MatMulNBits computes ``(q - zp) * scale`` and accepts the exact float zero
  point ``zp = -m/d``, but on CPU a float zero point drops to a slow unpacked kernel (about
  17x slower, measured), so the exporter splits the block instead:
  ``w.x = d*(q - 8).x + (m + 8d) * sum(x over the block)``. The first term is the fast
  symmetric 4-bit kernel, the second a small matmul on per-block sums of ``x``: exact up to
  float rounding, no re-quantization loss. The tied Q8_0 embedding becomes an 8-bit
  MatMulNBits (``q + 128`` with zero point 128: exact) for the output layer.
- ``fp16`` and ``q4f16``: the same graphs in float16, for CUDA (its GroupQueryAttention
  kernel takes float16 only). The 4-bit CUDA kernel takes the exact float zero point.

The GGUF file (its path, tensors and the architecture in its metadata) is
:mod:`infralab.engines.models.gguf_source`; the hand-written graph and its export are
:mod:`infralab.engines.models.decoder_graph`. This module holds the tokenizer and chat template (from
the GGUF too) and the public API: build (cached, with a manifest), check, sizes. It
re-exports the other two modules' names that the kit and its tests use.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from infralab.engines.models.decoder_graph import (  # noqa: F401  (re-exported: the decoder's names)
    IR_VERSION,
    OPSET,
    _dequant,
    _pack_nbits,
    export,
)
from infralab.engines.models.gguf_source import (  # noqa: F401  (re-exported: the decoder's names)
    GGUF_NAME,
    KV_KEYS,
    Config,
    DecoderError,
    DecoderInputError,
    _field,
    _gguf_sha256,
    _reader,
    _tensor,
    config,
    gguf_path,
    kv_cache_bytes,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "config",
    "weight_bytes",
]


EXPORT_VERSION = 4  # bump when the graph changes, so cached models are rebuilt
VARIANTS = ("fp32", "q4", "fp16", "q4f16")
CPU_VARIANTS = ("fp32", "q4")


# --------------------------------------------------------------------------- tokenizer


@lru_cache(maxsize=1)
def load_tokenizer() -> Any:
    """Byte-level BPE (``tokenizers``) built from the GGUF vocabulary and merges alone.

    The ``smollm`` pre-tokenizer of llama.cpp is GPT-2's byte-level split with every digit on
    its own; control tokens (type 3) become special tokens so the chat markers stay whole.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    r = _reader(str(gguf_path()))
    tokens = [str(t) for t in _field(r, "tokenizer.ggml.tokens")]
    types = list(_field(r, "tokenizer.ggml.token_type"))
    merges = [tuple(str(m).split(" ", 1)) for m in _field(r, "tokenizer.ggml.merges")]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, ignore_merges=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    specials = [
        AddedToken(t, special=True, normalized=False)
        for t, k in zip(tokens, types, strict=True)
        if k == 3
    ]
    tok.add_special_tokens(specials)
    return tok


@lru_cache(maxsize=1)
def chat_template() -> str:
    """The Jinja chat template stored in the GGUF (``tokenizer.chat_template``)."""
    return str(_field(_reader(str(gguf_path())), "tokenizer.chat_template"))


def apply_chat_template(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """Render chat messages to the prompt text the model was trained on."""
    import jinja2

    if not isinstance(messages, list) or not messages:
        raise DecoderInputError(
            "messages must be a non-empty list of {'role': ..., 'content': ...}"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DecoderInputError(
                f"message {i} must be a dict with 'role' and 'content', got {m!r}; "
                "for example {'role': 'user', 'content': 'Hello'}"
            )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(chat_template()).render(
        messages=messages, add_generation_prompt=add_generation_prompt
    )


# --------------------------------------------------------------------------- public API


def model_dir(variant: str) -> Path:
    """The folder of a built variant, keyed by the GGUF's sha256 and the exporter version."""
    from infralab.core.assets import cache_dir

    return cache_dir() / "models" / f"smollm2-{_gguf_sha256()[:12]}-v{EXPORT_VERSION}-{variant}"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise DecoderError(
            f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)} "
            "('fp32' for reference accuracy, 'q4' for 4-bit speed on CPU)"
        )


# The builder's name in every manifest: a name, not an import path, kept as it was before the
# layer folders (kit 0.1) so that moving the module does not make built models stale.
BUILDER = f"infralab.models.decoder/v{EXPORT_VERSION}"
MANIFEST_NAME = "manifest.json"


def output_path(variant: str) -> Path:
    """The built model.onnx of ``variant`` (its weights are in model.onnx.data beside it)."""
    return model_dir(variant) / "model.onnx"


def _identity(variant: str) -> dict[str, Any]:
    from infralab.engines.models import manifest

    return manifest.identity(
        model="decoder",
        variant=variant,
        builder=BUILDER,
        inputs={GGUF_NAME: _gguf_sha256()},
        options={"opset": OPSET, "ir_version": IR_VERSION},
    )


def check(variant: str, *, full: bool = False) -> Any:
    """Check a built variant against its manifest (a :class:`manifest.Check`); the 650 MB
    fp32 weights are hashed only when they changed since last hashed, unless ``full``."""
    from infralab.engines.models import manifest

    _check_variant(variant)
    folder = model_dir(variant)
    return manifest.check(
        folder / MANIFEST_NAME, _identity(variant), folder / "model.onnx", full=full
    )


def build(
    variant: str = "fp32", *, quiet: bool = True, force: bool = False, repair: bool = False
) -> Path:
    """Build (once; cached, with a manifest) the ONNX decoder of ``variant``; return its path.

    A damaged build (bytes that differ from its manifest) raises
    :class:`~infralab.engines.models.manifest.ModelIntegrityError` naming the fix, unless ``repair``
    (``build-models``) or ``force`` rebuild it; one without a manifest is rebuilt.
    """
    from infralab.engines.models import manifest

    _check_variant(variant)
    folder = model_dir(variant)
    target = folder / "model.onnx"
    if not force:
        state = check(variant)
        if state.ok:
            return target
        if state.state == "damaged" and not repair:
            raise manifest.refusal(f"decoder {variant}", target, state)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        export(tmp / "model.onnx", variant, quiet)
        cfg = config()
        meta = {"variant": variant, "gguf_sha256": _gguf_sha256(), "export_version": EXPORT_VERSION,
                "config": cfg.__dict__}  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        outputs = [tmp / "model.onnx", tmp / "model.onnx.data", tmp / "meta.json"]
        manifest.write(tmp / MANIFEST_NAME, _identity(variant), outputs)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def weight_bytes(variant: str) -> int:
    """Bytes of weights one decode step reads (all weights except the embedding table)."""
    import onnx

    model = onnx.load(str(build(variant)), load_external_data=False)
    total = 0
    for t in model.graph.initializer:
        if t.name.startswith(("embed.", "rope.")):  # gathered rows, not read whole
            continue
        info = {e.key: e.value for e in t.external_data}
        total += int(info.get("length", len(t.raw_data)))
    return total


def build_all(quiet: bool = False) -> dict[str, Path]:
    """The CPU variants (fp32 and q4), for ``python -m infralab build-models``: kept when they
    match their manifests, rebuilt when damaged."""
    return {v: build(v, quiet=quiet, repair=True) for v in CPU_VARIANTS}
