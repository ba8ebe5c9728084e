"""The decoder's ONNX graph, written by hand from the GGUF tensors (streaming: each tensor is
read from the memory-mapped file, converted and appended to the external-data file, then
dropped, so the peak memory stays near one tensor).

:func:`export` writes one variant; :mod:`infralab.engines.models.decoder` builds, caches and checks it
(its docstring explains the variants and the exact 4-bit split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from infralab.engines.models.gguf_source import Config, _reader, _tensor, config, gguf_path

IR_VERSION = 10  # onnx >= 1.23 writes IR 14 by default, which ONNX Runtime 1.31 refuses
OPSET = 21


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


def export(path: Path, variant: str, quiet: bool) -> None:
    """Write ``path`` (model.onnx) and its data file for ``variant``."""
    from tqdm.auto import tqdm

    cfg = config()
    reader = _reader(str(gguf_path()))
    ft = np.float16 if variant in ("fp16", "q4f16") else np.float32
    w = _Writer(path.with_suffix(".onnx.data"), ft)
    b = _Builder(cfg, reader, w, quant=variant.startswith("q4"), cuda=ft is np.float16)

    x = b.embedding("input_ids")
    rope = _rope_tables(w, cfg)
    io = _GraphIO(cfg, ft)
    residual, mlp_out = x, None
    for i in tqdm(range(cfg.layers), desc=f"export {variant}", disable=quiet, leave=False):
        p = f"blk.{i}."
        h, residual = _attention_norm(b, p, x, mlp_out, residual)
        o = _attention(b, i, h, rope, io)
        h, _, _, residual = b.w.node(
            "SkipSimplifiedLayerNormalization", [o, residual, b.norm_weight(p + "ffn_norm.weight")],
            n_out=4, domain="com.microsoft", epsilon=cfg.eps,
        )  # fmt: skip
        mlp_out = _mlp(b, i, h)
    _finish(b, variant, io, mlp_out, residual, path)


class _GraphIO:
    """The graph's inputs and outputs: ids, lengths, logits and one KV pair per layer."""

    def __init__(self, cfg: Config, ft: Any) -> None:
        from onnx import TensorProto, helper

        self.tt = TensorProto.FLOAT16 if ft is np.float16 else TensorProto.FLOAT
        self.kv_shape = ["batch", cfg.kv_heads, "max_len", cfg.head_dim]
        self.inputs = [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
            helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, []),
        ]
        self.outputs = [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", cfg.vocab])
        ]

    def add_kv(self, i: int) -> None:
        from onnx import helper

        for kind in ("key", "value"):
            self.inputs.append(
                helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", self.tt, self.kv_shape)
            )
            self.outputs.append(
                helper.make_tensor_value_info(f"present.{i}.{kind}", self.tt, self.kv_shape)
            )


def _rope_tables(w: _Writer, cfg: Config) -> tuple[str, str]:
    """The rotary embedding's cos and sin tables for every position of the context."""
    pos = np.arange(cfg.context, dtype=np.float64)[:, None]
    inv = cfg.rope_base ** (-np.arange(0, cfg.head_dim, 2, dtype=np.float64) / cfg.head_dim)
    cos = w.init("rope.cos", np.cos(pos * inv).astype(w.ft))
    sin = w.init("rope.sin", np.sin(pos * inv).astype(w.ft))
    return cos, sin


def _attention_norm(
    b: _Builder, p: str, x: str, mlp_out: str | None, residual: str
) -> tuple[str, str]:
    """The layer's first RMS norm; after the first layer fused with the residual add."""
    cfg, w = b.cfg, b.w
    if mlp_out is None:
        h = w.node("SimplifiedLayerNormalization", [x, b.norm_weight(p + "attn_norm.weight")],
                   axis=-1, epsilon=cfg.eps)  # fmt: skip
        return h, residual
    h, _, _, residual = w.node(
        "SkipSimplifiedLayerNormalization",
        [mlp_out, residual, b.norm_weight(p + "attn_norm.weight")],
        n_out=4, domain="com.microsoft", epsilon=cfg.eps,
    )  # fmt: skip
    return h, residual


def _attention(b: _Builder, i: int, h: str, rope: tuple[str, str], io: _GraphIO) -> str:
    """Fused QKV projection, GroupQueryAttention over the shared KV buffer, output projection."""
    from onnx import helper

    cfg, p = b.cfg, f"blk.{i}."
    qkv = b.linear(h, [p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"], f"l{i}.qkv")
    io.add_kv(i)
    cos, sin = rope
    b.w.nodes.append(
        helper.make_node(
            "GroupQueryAttention",
            [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value",
             "seqlens_k", "total_sequence_length", cos, sin],
            [f"attn_{i}", f"present.{i}.key", f"present.{i}.value"],
            name=f"gqa_{i}", domain="com.microsoft", num_heads=cfg.heads,
            kv_num_heads=cfg.kv_heads, do_rotary=1, rotary_interleaved=1,
        )
    )  # fmt: skip
    return b.linear(f"attn_{i}", [p + "attn_output.weight"], f"l{i}.o")


def _mlp(b: _Builder, i: int, h: str) -> str:
    """The SwiGLU feed-forward block: fused gate and up projections, SiLU, down projection."""
    w, p = b.w, f"blk.{i}."
    gu = b.linear(h, [p + "ffn_gate.weight", p + "ffn_up.weight"], f"l{i}.gate_up")
    split = w.small(w.name("split"), np.array([b.cfg.ffn, b.cfg.ffn], dtype=np.int64))
    gate, up = w.node("Split", [gu, split], n_out=2, axis=-1)
    act = w.node("Mul", [w.node("Mul", [gate, w.node("Sigmoid", [gate])]), up])
    return b.linear(act, [p + "ffn_down.weight"], f"l{i}.down")


def _finish(
    b: _Builder, variant: str, io: _GraphIO, mlp_out: str, residual: str, path: Path
) -> None:
    """The final norm, the last position's logits, and the model written to ``path``."""
    import onnx
    from onnx import TensorProto, helper

    w, cfg = b.w, b.cfg
    h, _, _, _ = w.node(
        "SkipSimplifiedLayerNormalization", [mlp_out, residual, b.norm_weight("output_norm.weight")],
        n_out=4, domain="com.microsoft", epsilon=cfg.eps,
    )  # fmt: skip
    last = w.node("Gather", [h, w.small("last_index", np.array(-1, dtype=np.int64))], axis=1)
    logits = b.lm_head(last)
    if w.ft == np.float16:
        logits = w.node("Cast", [logits], to=TensorProto.FLOAT)
    w.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits_out"))
    w.finish()
    graph = helper.make_graph(w.nodes, f"smollm2_{variant}", io.inputs, io.outputs, w.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name="infralab",
    )
    model.ir_version = IR_VERSION
    model.metadata_props.add(key="variant", value=variant)
    onnx.save_model(model, str(path))
