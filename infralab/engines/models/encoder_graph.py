"""all-MiniLM-L6-v2's ONNX graphs, written from the safetensors weights without PyTorch.

Why write the graph by hand: the kit must run where PyTorch is absent (Binder, a CPU
wheel mirror), and emitting ONNX Runtime's fused transformer ops directly
(``EmbedLayerNormalization``, ``Attention``, ``Gelu``, all in the ``com.microsoft`` domain)
gives the optimized graph without depending on the optimizer recognising an exporter's
pattern. A plain-ops graph (``fp32-unfused``) is kept so the lesson can show what fusion buys.

Not every fusion pays on a CPU. The residual + LayerNorm pairs stay standard ``Add`` and
``LayerNormalization`` on the CPU: measured on 2 Zen 4 cores with ONNX Runtime 1.31 at
(32, 16, 384), the fused ``SkipLayerNormalization`` kernel took 985 us on one thread where
Add + LayerNormalization took 161 us, and it was a quarter of the int8 model's time. On CUDA
ONNX Runtime fuses them itself; the fp16 graph emits the fused op. Likewise the CPU graphs
write the MLP's bias as its own ``Add`` before a plain ``Gelu`` (the fp16 graph keeps
``BiasGelu``): ONNX Runtime fuses the pair back into ``BiasGelu`` for fp32 (same kernels as
before), while in the int8 graph it folds the bias into ``DynamicQuantizeMatMul`` and runs the
plain ``Gelu`` kernel, which took 3.2 ms per call where ``BiasGelu`` took 6.0 (1 core of a Xeon
with AMX, ONNX Runtime 1.31, batch 4 x 128 tokens, the minimum of each node over 12 calls): the
int8 call went from 36.6 to 33.5 ms (32 x 16 tokens: 31.0 to 27.8 ms), and its vectors on
the kit's passages and sentences stayed bit for bit the same.

Here: :func:`export` (the fp32, fp32-unfused and fp16 graphs), :func:`_to_int8` (ONNX
Runtime's dynamic quantization, for the int8 variants) and :func:`_skip_mask_when_unpadded`
(the int8 graphs' mask-free attention). Building, caching and running the models is
:mod:`infralab.engines.models.encoder`; a change to one node here changes what it expects (bump
``EXPORT_VERSION`` there, so caches rebuild).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infralab.core.errors import InfralabError
from infralab.engines.models.model_errors import ModelError


class EncoderError(ValueError, InfralabError):
    """Bad input to the encoder (a variant, an argument, texts); the message names it."""

    hint = (
        "help(infralab.engines.models.Embedder) lists every argument and what it accepts; texts are a "
        "string or a list of strings."
    )


HIDDEN = 384
HEADS = 12
LAYERS = 6
INTERMEDIATE = 1536
EPS = 1e-12
DIM = HIDDEN
IR_VERSION = 10  # onnx >= 1.23 writes 14 by default, which ONNX Runtime 1.31 refuses
OPSET = 17


class _Graph:
    """A tiny builder over onnx.helper: unique names, initializers, nodes.

    ``wdtype`` is the dtype of the weights that :meth:`weight` stores (float16 for ``half``).
    """

    def __init__(self, wdtype: type = np.float32) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.wdtype = wdtype
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        """A model weight, stored in the graph's weight dtype."""
        return self.const(name, np.asarray(array).astype(self.wdtype))

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        domain = attrs.pop("domain", "")
        self._n += 1
        outs = [f"{op_type.lower()}_{self._n}_{i}" for i in range(n_out)]
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), outs, name=f"{op_type}_{self._n}", domain=domain, **attrs
            )
        )
        return outs[0] if n_out == 1 else outs


@dataclass(frozen=True)
class _PlainAttention:
    """The constants the plain-ops attention of every layer shares (fp32-unfused)."""

    attn_bias: str  # 0 where attended, -10000 on padding; shape (B, 1, 1, S)
    head_shape: str
    merged_shape: str
    scale: str


def export(weights: dict[str, np.ndarray], fused: bool = True, half: bool = False) -> Any:
    """The encoder as an ONNX ModelProto: (input_ids, attention_mask) -> sentence_embedding.

    Mean pooling over the mask and L2 normalisation are in the graph, so a GPU run copies
    back (batch, 384) floats rather than every token's hidden state. ``half`` stores weights
    and runs the transformer in float16 (fused graph only); the pooling tail stays float32,
    since sums of up to 256 token vectors are where half precision would lose digits.
    """
    if half and not fused:
        raise ModelError(
            "float16 is built on the fused graph only.",
            hint="Pass fused=True with half=True, or half=False for the unfused graph.",
        )
    g = _Graph(np.float16 if half else np.float32)
    maskf, word, pos, emb_g, emb_b = _embedding_weights(g, weights)
    if fused:
        x, mask_index = _fused_embeddings(g, word, pos, emb_g, emb_b)
    else:
        x, plain = _plain_embeddings(g, word, pos, emb_g, emb_b, maskf)
    for i in range(LAYERS):
        lw = _layer_weights(g, weights, i)
        if fused:
            x = _fused_layer(g, weights, i, lw, x, mask_index, half)
        else:
            x = _plain_layer(g, weights, i, lw, x, plain)
    _pool_and_normalize(g, x, maskf, half)
    return _model(g, fused)


def _embedding_weights(g: _Graph, w: dict[str, np.ndarray]) -> tuple[str, str, str, str, str]:
    """The embedding tables and LayerNorm, and the mask as floats (used by the pooling)."""
    from onnx import TensorProto

    # Single-sentence inputs always have token type 0: fold that row into the positions.
    pos = (
        w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    )
    word = g.weight("word_embeddings", w["embeddings.word_embeddings.weight"])
    pos = g.weight("position_embeddings", pos)
    emb_g = g.weight("emb_ln_gamma", w["embeddings.LayerNorm.weight"])
    emb_b = g.weight("emb_ln_beta", w["embeddings.LayerNorm.bias"])
    maskf = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    return maskf, word, pos, emb_g, emb_b


def _fused_embeddings(g: _Graph, word: str, pos: str, emb_g: str, emb_b: str) -> list[str]:
    """One ``EmbedLayerNormalization``: the hidden states and the mask index for Attention."""
    from onnx import TensorProto

    ids32 = g.op("Cast", ["input_ids"], to=TensorProto.INT32)
    mask32 = g.op("Cast", ["attention_mask"], to=TensorProto.INT32)
    return g.op(
        "EmbedLayerNormalization",
        [ids32, "", word, pos, "", emb_g, emb_b, mask32],
        n_out=2,
        epsilon=EPS,
        domain="com.microsoft",
    )


def _plain_embeddings(
    g: _Graph, word: str, pos: str, emb_g: str, emb_b: str, maskf: str
) -> tuple[str, _PlainAttention]:
    """Gather + positions + LayerNorm in standard ops, and the attention's shared constants."""
    ids = "input_ids"
    seq = g.op("Shape", [ids], start=1, end=2)
    start = g.const("zero_1d", np.array([0], np.int64))
    pos_rows = g.op("Slice", [pos, start, seq, start])  # rows 0..seq-1 (axis 0)
    e = g.op("Add", [g.op("Gather", [word, ids]), pos_rows])
    x = g.op("LayerNormalization", [e, emb_g, emb_b], axis=-1, epsilon=EPS)
    # additive attention bias: 0 where attended, -10000 on padding; shape (B, 1, 1, S)
    inv = g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), maskf])
    bias = g.op("Mul", [inv, g.const("neg_big", np.array(-10000.0, np.float32))])
    attn_bias = g.op("Unsqueeze", [bias, g.const("axes12", np.array([1, 2], np.int64))])
    plain = _PlainAttention(
        attn_bias=attn_bias,
        head_shape=g.const("head_shape", np.array([0, 0, HEADS, HIDDEN // HEADS], np.int64)),
        merged_shape=g.const("merged_shape", np.array([0, 0, HIDDEN], np.int64)),
        scale=g.const("attn_scale", np.array(1.0 / math.sqrt(HIDDEN // HEADS), np.float32)),
    )
    return x, plain


def _layer_weights(g: _Graph, w: dict[str, np.ndarray], i: int) -> dict[str, str]:
    """Layer ``i``'s weights after the attention's Q/K/V (whose layout depends on fusion)."""
    p = f"encoder.layer.{i}."
    names = {
        "wo": ("attention.output.dense.weight", True),
        "bo": ("attention.output.dense.bias", False),
        "ln1_g": ("attention.output.LayerNorm.weight", False),
        "ln1_b": ("attention.output.LayerNorm.bias", False),
        "w1": ("intermediate.dense.weight", True),
        "b1": ("intermediate.dense.bias", False),
        "w2": ("output.dense.weight", True),
        "b2": ("output.dense.bias", False),
        "ln2_g": ("output.LayerNorm.weight", False),
        "ln2_b": ("output.LayerNorm.bias", False),
    }
    out = {}
    for key, (name, transpose) in names.items():
        array = w[p + name]
        out[key] = g.weight(f"l{i}_{key}", array.T if transpose else array)
    return out


def _qkv(w: dict[str, np.ndarray], i: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Layer ``i``'s query, key and value weights (in, out) and biases."""
    p = f"encoder.layer.{i}.attention.self."
    names = ("query", "key", "value")
    return [w[f"{p}{n}.weight"].T for n in names], [w[f"{p}{n}.bias"] for n in names]


def _residual_norm(g: _Graph, y: str, skip: str, gamma: str, beta: str, bias: str, half: bool):
    """LayerNorm(y + bias + skip): one fused op for the GPU, standard ops for the CPU."""
    if half:
        return g.op(
            "SkipLayerNormalization",
            [y, skip, gamma, beta, bias],
            epsilon=EPS,
            domain="com.microsoft",
        )
    summed = g.op("Add", [g.op("Add", [y, bias]), skip])
    return g.op("LayerNormalization", [summed, gamma, beta], axis=-1, epsilon=EPS)


def _fused_layer(
    g: _Graph,
    w: dict[str, np.ndarray],
    i: int,
    lw: dict[str, str],
    x: str,
    mask_index: str,
    half: bool,
) -> str:
    """One transformer layer with ONNX Runtime's fused ops (``Attention``, ``Gelu``...)."""
    (wq, wk, wv), (bq, bk, bv) = _qkv(w, i)
    qkv_w = g.weight(f"l{i}_qkv_w", np.concatenate([wq, wk, wv], axis=1))
    qkv_b = g.weight(f"l{i}_qkv_b", np.concatenate([bq, bk, bv]))
    ctx = g.op("Attention", [x, qkv_w, qkv_b, mask_index], num_heads=HEADS, domain="com.microsoft")
    proj = g.op("MatMul", [ctx, lw["wo"]])
    x1 = _residual_norm(g, proj, x, lw["ln1_g"], lw["ln1_b"], lw["bo"], half)
    if half:
        h = g.op("BiasGelu", [g.op("MatMul", [x1, lw["w1"]]), lw["b1"]], domain="com.microsoft")
    else:  # bias apart: the int8 build folds it into the MatMul (see _to_int8)
        h = g.op(
            "Gelu",
            [g.op("Add", [g.op("MatMul", [x1, lw["w1"]]), lw["b1"]])],
            domain="com.microsoft",
        )
    out = g.op("MatMul", [h, lw["w2"]])
    return _residual_norm(g, out, x1, lw["ln2_g"], lw["ln2_b"], lw["b2"], half)


def _plain_layer(
    g: _Graph, w: dict[str, np.ndarray], i: int, lw: dict[str, str], x: str, c: _PlainAttention
) -> str:
    """One transformer layer in standard ONNX ops only (the fp32-unfused graph)."""
    (wq, wk, wv), (bq, bk, bv) = _qkv(w, i)

    def heads(t: str) -> str:
        return g.op("Transpose", [g.op("Reshape", [t, c.head_shape])], perm=[0, 2, 1, 3])

    def project(tag: str, weight: np.ndarray, bias: np.ndarray) -> str:
        matmul = g.op("MatMul", [x, g.const(f"l{i}_w{tag}", weight)])
        return heads(g.op("Add", [matmul, g.const(f"l{i}_b{tag}", bias)]))

    q, k, v = project("q", wq, bq), project("k", wk, bk), project("v", wv, bv)
    kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
    scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), c.scale]), c.attn_bias])
    probs = g.op("Softmax", [scores], axis=-1)
    ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", [ctx, c.merged_shape])
    proj = g.op("Add", [g.op("MatMul", [ctx, lw["wo"]]), lw["bo"]])
    x1 = g.op(
        "LayerNormalization",
        [g.op("Add", [proj, x]), lw["ln1_g"], lw["ln1_b"]],
        axis=-1,
        epsilon=EPS,
    )
    h = g.op("Add", [g.op("MatMul", [x1, lw["w1"]]), lw["b1"]])
    # exact GELU: 0.5 * h * (1 + erf(h / sqrt(2)))
    erf = g.op(
        "Erf",
        [g.op("Div", [h, g.const(f"l{i}_sqrt2", np.array(math.sqrt(2), np.float32))])],
    )
    gelu = g.op(
        "Mul",
        [g.op("Mul", [h, g.op("Add", [erf, g.const(f"l{i}_one", np.array(1, np.float32))])]),
         g.const(f"l{i}_half", np.array(0.5, np.float32))],
    )  # fmt: skip
    out = g.op("Add", [g.op("MatMul", [gelu, lw["w2"]]), lw["b2"]])
    return g.op(
        "LayerNormalization",
        [g.op("Add", [out, x1]), lw["ln2_g"], lw["ln2_b"]],
        axis=-1,
        epsilon=EPS,
    )


def _pool_and_normalize(g: _Graph, x: str, maskf: str, half: bool) -> None:
    """Mean pooling over the mask, then L2 normalisation (float32 in every variant)."""
    from onnx import TensorProto, helper

    if half:
        x = g.op("Cast", [x], to=TensorProto.FLOAT)
    m3 = g.op("Unsqueeze", [maskf, g.const("axes_last", np.array([2], np.int64))])
    axis1 = g.const("axes1", np.array([1], np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), axis1], keepdims=0)
    count = g.op("ReduceSum", [m3, axis1], keepdims=0)
    count = g.op("Max", [count, g.const("min_count", np.array(1e-9, np.float32))])
    mean = g.op("Div", [summed, count])
    norm = g.op("ReduceL2", [mean], axes=[-1], keepdims=1)  # opset 17: axes is an attribute
    norm = g.op("Max", [norm, g.const("min_norm", np.array(1e-12, np.float32))])
    g.nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"], name="l2norm"))


def _model(g: _Graph, fused: bool) -> Any:
    """The ModelProto around the built nodes: int64 inputs, (batch, 384) float32 output."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        g.nodes,
        "minilm_l6_" + ("fused" if fused else "plain"),
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", DIM])],
        initializer=g.inits,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    if fused:
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="infralab")
    model.ir_version = IR_VERSION
    return model


def _to_int8(fp32_path: Path, out_path: Path, *, keep_mlp_output_fp32: bool = False) -> None:
    """Dynamic int8: weights quantized per output channel; activations per batch at run time.

    Choices measured for quality (cosine to fp32): reduce_range (7-bit weights) avoids int16
    saturation in the u8s8 AVX2 kernels of CPUs without VNNI; the embedding table stays
    float32. Quantizing every MatMul (``int8``) keeps the reference sentences at cosine >= 0.99
    and is about 1.6x faster than keeping the MLP's output projection in float32
    (``int8-mixed``, ``keep_mlp_output_fp32=True``), whose GELU inputs have a long tail that one
    uint8 scale per tensor resolves poorly. Both lose most on one- or two-word inputs (down to
    about 0.95 for ``int8``, 0.97 for ``int8-mixed``): a short text has few tokens to average
    the rounding away.
    """
    import logging

    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    after_gelu = {n.output[0] for n in graph.node if n.op_type in ("BiasGelu", "Gelu")}
    keep_fp32 = [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in after_gelu]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" advice is noise here
    try:
        quantize_dynamic(
            str(fp32_path),
            str(out_path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=keep_fp32 if keep_mlp_output_fp32 else [],
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _skip_mask_when_unpadded(model: Any) -> None:
    """Give each ``QAttention`` a mask-free twin that runs when no row of the call is padded.

    ONNX Runtime's CPU attention spends time on the mask even when it masks nothing; without
    a mask input it skips that work. Each attention node becomes an ``If`` on "every mask
    value is 1": the same node without its mask, or as it was (both read the same weights).
    The Embedder arranges calls of equal-length texts (see ``Embedder.batches``). Measured on
    1 core of a Xeon with AMX, ONNX Runtime 1.31, the minimum of each node over 12 calls: the
    int8 call at 4 x 128 tokens 30.3 ms against 32.3 ms, at 32 x 16 tokens 24.7 against 27.2.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    embed = next(n for n in graph.node if n.op_type == "EmbedLayerNormalization")
    graph.initializer.append(numpy_helper.from_array(np.array(1, np.int32), "mask_one"))
    lowest = helper.make_node("ReduceMin", [embed.input[7]], ["mask_min"], keepdims=0)
    unpadded = helper.make_node("Equal", ["mask_min", "mask_one"], ["unpadded"])
    nodes: list[Any] = []
    for node in graph.node:
        if node.op_type != "QAttention":
            nodes.append(node)
            if node is embed:
                nodes += [lowest, unpadded]
            continue

        def branch(tag: str, node: Any = node) -> Any:
            inner = type(node)()
            inner.CopyFrom(node)
            inner.name = f"{node.name}_{tag}"
            inner.output[0] = f"{node.output[0]}_{tag}"
            if tag == "unmasked":
                inner.input[5] = ""  # QAttention's mask_index
            out = helper.make_tensor_value_info(inner.output[0], TensorProto.FLOAT, None)
            return helper.make_graph([inner], inner.name, [], [out])

        nodes.append(
            helper.make_node(
                "If",
                ["unpadded"],
                [node.output[0]],
                name=f"{node.name}_if",
                then_branch=branch("unmasked"),
                else_branch=branch("masked"),
            )
        )
    del graph.node[:]
    graph.node.extend(nodes)
