"""all-MiniLM-L6-v2 as ONNX, built from the fetched safetensors without PyTorch; `Embedder`.

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

Variants: ``fp32`` (fused), ``fp32-unfused`` (standard ONNX ops only), ``fp16`` (for the GPU;
it also runs on the CPU, without gain, to compare quality; inputs and outputs stay
int64/float32), ``int8`` (CPU: every MatMul dynamically quantized) and ``int8-mixed`` (CPU: the
MLP's output projection kept in float32, slower and a little closer to fp32).
Each is built once into ``cache_dir()/models``, named by the weights' sha256 and the variant,
with a manifest that every load checks (:mod:`infralab.models.manifest`).

Size: one module because the graph writer, the quantizer's settings, the build with its
manifest and the ``Embedder`` that runs the result must change together: a change to one
node of the graph changes what the others expect (bump ``EXPORT_VERSION`` then).
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN = 384
HEADS = 12
LAYERS = 6
INTERMEDIATE = 1536
EPS = 1e-12
MAX_LENGTH = 256
DIM = HIDDEN
EXPORT_VERSION = 5  # bump when the graph changes, so caches rebuild
IR_VERSION = 10  # onnx >= 1.23 writes 14 by default, which ONNX Runtime 1.31 refuses
OPSET = 17

VARIANTS = ("fp32", "fp16", "int8", "fp32-unfused", "int8-mixed")
DEFAULT_PROVIDER = {
    "fp32": "cpu",
    "fp32-unfused": "cpu",
    "int8": "cpu",
    "int8-mixed": "cpu",
    "fp16": "cuda",
}
# ONNX Runtime fusions that make this encoder slower on the CPU (see the module docstring).
CPU_SLOW_FUSIONS = ("SkipLayerNormFusion",)
# Padded tokens per model call on the CPU (see Embedder): activations that fit the cache.
CPU_BATCH_TOKENS = 512
# Variants whose attention skips the mask in a call without padding (_skip_mask_when_unpadded);
# for them the Embedder gives texts of one length a call of their own (at least this many
# tokens, so that short texts still share a call).
UNPADDED_FAST = ("int8", "int8-mixed")
EXACT_CALL_MIN_TOKENS = 128


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(
            f"Unknown encoder variant {variant!r}: choose one of {', '.join(VARIANTS)} "
            "(fp32 for CPU or GPU, fp16 for the GPU, int8 for the CPU)."
        )
    return variant


# ---------------------------------------------------------------- weights
def _weights() -> tuple[dict[str, np.ndarray], str]:
    from safetensors.numpy import load_file

    from infralab.assets import MINILM, asset_paths

    paths = asset_paths("minilm")  # verified against the pinned sha256
    return load_file(str(paths["model.safetensors"])), MINILM.files[0].sha256


def tokenizer_path() -> Path:
    from infralab.assets import asset_paths

    return asset_paths("minilm")["tokenizer.json"]


# ---------------------------------------------------------------- graph export
class _Graph:
    """A tiny builder over onnx.helper: unique names, initializers, nodes."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

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


def export(weights: dict[str, np.ndarray], fused: bool = True, half: bool = False) -> Any:
    """The encoder as an ONNX ModelProto: (input_ids, attention_mask) -> sentence_embedding.

    Mean pooling over the mask and L2 normalisation are in the graph, so a GPU run copies
    back (batch, 384) floats rather than every token's hidden state. ``half`` stores weights
    and runs the transformer in float16 (fused graph only); the pooling tail stays float32,
    since sums of up to 256 token vectors are where half precision would lose digits.
    """
    from onnx import TensorProto, helper

    if half and not fused:
        raise ValueError("float16 is built on the fused graph only.")
    w = weights
    g = _Graph()
    wdtype = np.float16 if half else np.float32

    def wt(name: str, array: np.ndarray) -> str:
        return g.const(name, np.asarray(array).astype(wdtype))

    def residual_norm(y: str, skip: str, gamma: str, beta: str, bias: str) -> str:
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

    ids, mask = "input_ids", "attention_mask"
    # Single-sentence inputs always have token type 0: fold that row into the positions.
    pos = (
        w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    )
    word = wt("word_embeddings", w["embeddings.word_embeddings.weight"])
    pos = wt("position_embeddings", pos)
    emb_g = wt("emb_ln_gamma", w["embeddings.LayerNorm.weight"])
    emb_b = wt("emb_ln_beta", w["embeddings.LayerNorm.bias"])
    maskf = g.op("Cast", [mask], to=TensorProto.FLOAT)

    if fused:
        ids32 = g.op("Cast", [ids], to=TensorProto.INT32)
        mask32 = g.op("Cast", [mask], to=TensorProto.INT32)
        x, mask_index = g.op(
            "EmbedLayerNormalization",
            [ids32, "", word, pos, "", emb_g, emb_b, mask32],
            n_out=2,
            epsilon=EPS,
            domain="com.microsoft",
        )
    else:
        seq = g.op("Shape", [ids], start=1, end=2)
        start = g.const("zero_1d", np.array([0], np.int64))
        pos_rows = g.op("Slice", [pos, start, seq, start])  # rows 0..seq-1 (axis 0)
        e = g.op("Add", [g.op("Gather", [word, ids]), pos_rows])
        x = g.op("LayerNormalization", [e, emb_g, emb_b], axis=-1, epsilon=EPS)
        # additive attention bias: 0 where attended, -10000 on padding; shape (B, 1, 1, S)
        inv = g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), maskf])
        bias = g.op("Mul", [inv, g.const("neg_big", np.array(-10000.0, np.float32))])
        attn_bias = g.op("Unsqueeze", [bias, g.const("axes12", np.array([1, 2], np.int64))])
        head_shape = g.const("head_shape", np.array([0, 0, HEADS, HIDDEN // HEADS], np.int64))
        merged_shape = g.const("merged_shape", np.array([0, 0, HIDDEN], np.int64))
        scale = g.const("attn_scale", np.array(1.0 / math.sqrt(HIDDEN // HEADS), np.float32))

    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        wq, wk, wv = (w[f"{p}attention.self.{n}.weight"].T for n in ("query", "key", "value"))
        bq, bk, bv = (w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value"))
        wo = wt(f"l{i}_wo", w[f"{p}attention.output.dense.weight"].T)
        bo = wt(f"l{i}_bo", w[f"{p}attention.output.dense.bias"])
        ln1_g = wt(f"l{i}_ln1_g", w[f"{p}attention.output.LayerNorm.weight"])
        ln1_b = wt(f"l{i}_ln1_b", w[f"{p}attention.output.LayerNorm.bias"])
        w1 = wt(f"l{i}_w1", w[f"{p}intermediate.dense.weight"].T)
        b1 = wt(f"l{i}_b1", w[f"{p}intermediate.dense.bias"])
        w2 = wt(f"l{i}_w2", w[f"{p}output.dense.weight"].T)
        b2 = wt(f"l{i}_b2", w[f"{p}output.dense.bias"])
        ln2_g = wt(f"l{i}_ln2_g", w[f"{p}output.LayerNorm.weight"])
        ln2_b = wt(f"l{i}_ln2_b", w[f"{p}output.LayerNorm.bias"])
        if fused:
            qkv_w = wt(f"l{i}_qkv_w", np.concatenate([wq, wk, wv], axis=1))
            qkv_b = wt(f"l{i}_qkv_b", np.concatenate([bq, bk, bv]))
            ctx = g.op(
                "Attention", [x, qkv_w, qkv_b, mask_index], num_heads=HEADS, domain="com.microsoft"
            )
            x1 = residual_norm(g.op("MatMul", [ctx, wo]), x, ln1_g, ln1_b, bo)
            if half:
                h = g.op("BiasGelu", [g.op("MatMul", [x1, w1]), b1], domain="com.microsoft")
            else:  # bias apart: the int8 build folds it into the MatMul (see _to_int8)
                h = g.op(
                    "Gelu", [g.op("Add", [g.op("MatMul", [x1, w1]), b1])], domain="com.microsoft"
                )
            x = residual_norm(g.op("MatMul", [h, w2]), x1, ln2_g, ln2_b, b2)
        else:

            def heads(t: str) -> str:
                return g.op("Transpose", [g.op("Reshape", [t, head_shape])], perm=[0, 2, 1, 3])

            q = heads(
                g.op("Add", [g.op("MatMul", [x, g.const(f"l{i}_wq", wq)]), g.const(f"l{i}_bq", bq)])
            )
            k = heads(
                g.op("Add", [g.op("MatMul", [x, g.const(f"l{i}_wk", wk)]), g.const(f"l{i}_bk", bk)])
            )
            v = heads(
                g.op("Add", [g.op("MatMul", [x, g.const(f"l{i}_wv", wv)]), g.const(f"l{i}_bv", bv)])
            )
            kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
            scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), scale]), attn_bias])
            probs = g.op("Softmax", [scores], axis=-1)
            ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
            ctx = g.op("Reshape", [ctx, merged_shape])
            proj = g.op("Add", [g.op("MatMul", [ctx, wo]), bo])
            x1 = g.op(
                "LayerNormalization", [g.op("Add", [proj, x]), ln1_g, ln1_b], axis=-1, epsilon=EPS
            )
            h = g.op("Add", [g.op("MatMul", [x1, w1]), b1])
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
            out = g.op("Add", [g.op("MatMul", [gelu, w2]), b2])
            x = g.op(
                "LayerNormalization", [g.op("Add", [out, x1]), ln2_g, ln2_b], axis=-1, epsilon=EPS
            )

    # mean pooling over the mask, then L2 normalisation (kept in float32 in every variant)
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

    graph = helper.make_graph(
        g.nodes,
        "minilm_l6_" + ("fused" if fused else "plain"),
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"]),
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


# ---------------------------------------------------------------- build and cache
def model_path(variant: str) -> Path:
    """Where a built variant lives: named by the weights' sha256, the variant and the exporter."""
    from infralab.assets import MINILM, cache_dir

    _check_variant(variant)
    sha = MINILM.files[0].sha256[:16]
    return cache_dir() / "models" / f"minilm-l6-{variant}-{sha}-v{EXPORT_VERSION}.onnx"


def matmul_weights(name: str = "l0_w1") -> dict[str, np.ndarray]:
    """One MatMul's weight as each built model stores it, for lab 03's comparison.

    ``fp32``: the float weight (in, out) of the fp32 model; ``int8``, ``scale`` and
    ``zero_point``: the same weight in the int8 model, quantized by ONNX Runtime's dynamic
    quantization (one scale per output column, symmetric, 7-bit range: see ``_to_int8``).
    ``name`` is an initializer of the exported graph (``l{layer}_w1`` is a feed-forward input
    projection, ``l{layer}_w2`` its output, ``l{layer}_wo`` the attention output). Builds the
    two variants first if they are missing.
    """
    import onnx
    from onnx import numpy_helper

    out: dict[str, np.ndarray] = {}
    for variant, wanted in (("fp32", {name: "fp32"}), ("int8", {
        f"{name}_quantized": "int8", f"{name}_scale": "scale",
        f"{name}_zero_point": "zero_point"})):  # fmt: skip
        graph = onnx.load(str(build(variant, quiet=True))).graph
        for init in graph.initializer:
            if init.name in wanted:
                out[wanted[init.name]] = numpy_helper.to_array(init)
        missing = set(wanted.values()) - set(out)
        if missing:
            raise ValueError(
                f"the {variant} model has no MatMul weight {name!r} ({sorted(missing)} missing); "
                "try 'l0_w1', 'l0_w2' or 'l0_wo' (layers 0 to 5)"
            )
    return out


def _save_atomic(model: Any, path: Path) -> None:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


BUILDER = f"infralab.models.encoder/v{EXPORT_VERSION}"
# What each variant is built with, recorded in its manifest (another value means a rebuild).
_OPTIONS: dict[str, dict[str, Any]] = {
    "fp32": {"fused": True, "half": False, "opset": OPSET, "ir_version": IR_VERSION},
    "fp32-unfused": {"fused": False, "half": False, "opset": OPSET, "ir_version": IR_VERSION},
    "fp16": {"fused": True, "half": True, "opset": OPSET, "ir_version": IR_VERSION},
    "int8": {
        "from": "fp32",
        "dynamic_int8": True,
        "keep_mlp_output_fp32": False,
        "mask_free_attention": True,
    },
    "int8-mixed": {
        "from": "fp32",
        "dynamic_int8": True,
        "keep_mlp_output_fp32": True,
        "mask_free_attention": True,
    },
}


def output_path(variant: str) -> Path:
    """The built file of ``variant`` (what the manifest vouches for); same as model_path."""
    return model_path(variant)


def manifest_path(variant: str) -> Path:
    """The manifest next to a built variant: inputs, builder, options, output hash and size."""
    path = model_path(variant)
    return path.with_name(path.name + ".manifest.json")


def _identity(variant: str) -> dict[str, Any]:
    from infralab.assets import MINILM
    from infralab.models import manifest

    return manifest.identity(
        model="encoder",
        variant=variant,
        builder=BUILDER,
        inputs={"model.safetensors": MINILM.files[0].sha256},
        options=_OPTIONS[variant],
    )


def check(variant: str, *, full: bool = False) -> Any:
    """Check a built variant against its manifest (a :class:`manifest.Check`); reads only
    sizes when the stamp vouches for the hash, unless ``full``."""
    from infralab.models import manifest

    _check_variant(variant)
    return manifest.check(
        manifest_path(variant), _identity(variant), model_path(variant), full=full
    )


def build(
    variant: str = "fp32", *, quiet: bool = False, force: bool = False, repair: bool = False
) -> Path:
    """Build ``variant`` once into the cache (atomic write, with a manifest); return its path.

    A model that is present and matches its manifest is reused; one without a manifest or
    from another builder is rebuilt. A damaged one (its bytes differ from its manifest)
    raises :class:`~infralab.models.manifest.ModelIntegrityError` naming the fix, unless
    ``repair`` (``build-models``) or ``force`` rebuild it.
    """
    import onnx
    from tqdm.auto import tqdm

    from infralab.models import manifest

    out = model_path(variant)
    if not force:
        state = check(variant)
        if state.ok:
            return out
        if state.state == "damaged" and not repair:
            raise manifest.refusal(f"encoder {variant}", out, state)
    steps = {"fp32": 2, "fp32-unfused": 2, "fp16": 3, "int8": 3, "int8-mixed": 3}[variant]
    with tqdm(total=steps, desc=f"build encoder {variant}", disable=quiet) as bar:
        weights, _sha = _weights()
        bar.update()
        if variant.startswith("int8"):
            src = build("fp32", quiet=True, repair=repair or force)
            bar.update()
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".part", dir=out.parent)
            os.close(fd)
            try:
                _to_int8(src, Path(tmp), keep_mlp_output_fp32=variant == "int8-mixed")
                model = onnx.load(tmp)
                _skip_mask_when_unpadded(model)
                _save_atomic(model, out)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            model = export(weights, fused=variant != "fp32-unfused", half=variant == "fp16")
            bar.update()
            _save_atomic(model, out)
        manifest.write(manifest_path(variant), _identity(variant), [out])
        bar.update(steps - bar.n)
    return out


def build_all(quiet: bool = False) -> dict[str, Path]:
    """Build every variant (a few seconds in all); ``python -m infralab build-models`` calls it.

    Idempotent: a variant that matches its manifest is kept; a damaged one is rebuilt.
    """
    return {v: build(v, quiet=quiet, repair=True) for v in ("fp32", "int8", "fp16", "fp32-unfused")}


# ---------------------------------------------------------------- Embedder
def _load_tokenizer(max_length: int) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path()))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def _as_texts(texts: str | Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    try:
        items = list(texts)
    except TypeError:
        raise ValueError(
            f"texts must be a string or a list of strings, not {type(texts).__name__}."
        ) from None
    if not items:
        raise ValueError("texts is empty: pass at least one string to embed.")
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise ValueError(
                f"texts[{i}] is a {type(t).__name__} ({t!r:.40}), not a string: "
                "convert your items with str() or drop them."
            )
    return items


class Embedder:
    """Sentence embeddings (384 floats, L2-normalised) from all-MiniLM-L6-v2 on ONNX Runtime.

    Batches are formed from texts sorted by length, so little compute is spent on padding;
    results come back in the caller's order. On the CPU a model call also holds at most
    ``max_batch_tokens`` padded tokens (default 512: 32 sentences of ~15 tokens, or 4
    passages of ~128): a call's activations then stay near the core's caches. Measured on 2
    busy cores with AVX-512 at 120-150-token passages, interleaved rounds: 4 passages a call
    gave int8 1.45-1.8x the throughput of 32 a call, fp32 1.0-1.6x (the MLP's 1,536-wide
    activations of 32 x 128 tokens take 25 MB and stream through memory four times a layer).
    int8 vectors depend slightly on which texts share a call (one activation scale per call).

    On the CPU the default is one single-threaded model call per physical core (``workers``,
    sharing one session and so one copy of the weights), whole batches side by side, rather
    than one call whose threads split every operator: a sentence-length operator is too
    small to split well, and on 2 cores the side-by-side layout measured 1.05-1.6x the
    throughput of one 2-thread call (more for fewer texts). ``threads=N`` alone gives the
    classic one call on N threads, which is the faster way to embed one long text.
    """

    def __init__(
        self,
        variant: str = "fp32",
        provider: str = "cpu",
        *,
        batch_size: int = 32,
        threads: int | None = None,
        workers: int | None = None,
        max_length: int = MAX_LENGTH,
        spinning: bool = False,
        opt_level: str = "all",
        max_batch_tokens: int | None = None,
    ) -> None:
        from infralab import runtime

        _check_variant(variant)
        if max_batch_tokens is not None and (
            not isinstance(max_batch_tokens, int) or max_batch_tokens < 1
        ):
            raise ValueError(
                f"max_batch_tokens must be a positive whole number or None (512 on the CPU, no "
                f"limit on a GPU), not {max_batch_tokens!r}."
            )
        if provider not in ("cpu", "cuda", "auto"):
            raise ValueError(f"provider must be 'cpu', 'cuda' or 'auto', not {provider!r}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}.")
        if not isinstance(max_length, int) or not 2 <= max_length <= MAX_LENGTH:
            raise ValueError(f"max_length must be between 2 and {MAX_LENGTH}, not {max_length!r}.")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive whole number or None, not {workers!r}.")
        if workers is not None and workers > 1 and provider == "cuda":
            raise ValueError("workers > 1 is for the CPU; a GPU session already runs in parallel.")
        if variant == "fp16" and provider == "cpu":
            warnings.warn(
                "fp16 on the CPU runs, but CPUs without native half-precision math convert "
                "back and forth, so it is no faster than fp32; it is here to compare quality. "
                "Use it on the GPU (provider='cuda'), and int8 for CPU speed.",
                stacklevel=2,
            )
        if workers is None:
            workers = 1 if threads is not None or provider == "cuda" else runtime.physical_cores()
        if threads is None and provider != "cuda":
            threads = max(1, runtime.physical_cores() // workers)
        self.variant = variant
        self.batch_size = batch_size
        self.max_length = max_length
        self.path = build(variant)
        self.session = runtime.make_session(
            self.path, provider, threads=threads, spinning=spinning, opt_level=opt_level,
            disabled_on_cpu=CPU_SLOW_FUSIONS,
        )  # fmt: skip
        self.provider = runtime.session_provider(self.session)
        # ONNX Runtime sessions run concurrent calls safely: the workers share one session
        # (one copy of the weights), each call on its own thread.
        self.workers = 1 if self.provider == "cuda" else workers
        if max_batch_tokens is None:  # a GPU wants big calls; a CPU core wants cache-sized ones
            max_batch_tokens = 1 << 30 if self.provider == "cuda" else CPU_BATCH_TOKENS
        self.max_batch_tokens = max_batch_tokens
        self._executor: ThreadPoolExecutor | None = None
        self.threads = self.session.get_session_options().intra_op_num_threads
        self.tokenizer = _load_tokenizer(max_length)

    def __repr__(self) -> str:
        return (
            f"Embedder(variant={self.variant!r}, provider={self.provider!r}, "
            f"batch_size={self.batch_size}, threads={self.threads}, workers={self.workers}, "
            f"max_batch_tokens={self.max_batch_tokens})"
        )

    def tokenize(self, texts: str | Iterable[str]) -> list[list[int]]:
        """Token ids per text, with [CLS]/[SEP], truncated at ``max_length``."""
        return [e.ids for e in self.tokenizer.encode_batch(_as_texts(texts))]

    def count_tokens(self, texts: str | Iterable[str]) -> list[int]:
        """Tokens the model sees per text (with [CLS] and [SEP], after truncation)."""
        return [len(ids) for ids in self.tokenize(texts)]

    @staticmethod
    def pad(batch: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Pad to the longest in the batch (right padding, id 0); the model's two inputs."""
        width = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """One model call on already padded inputs; (batch, 384) float32. Thread-safe."""
        return self.session.run(["sentence_embedding"], feeds)[0]

    def plan(self, n_texts: int) -> list[int]:
        """Batch sizes for ``n_texts``: ``batch_size`` each, or smaller to keep workers even.

        Batches go out longest first and each worker takes the next when it is done, so with
        at least three batches per worker they finish close together. Below that, batches
        shrink (not under 4 texts): on a CPU a batch of 8 short texts runs almost as
        efficiently as one of 32, while a worker left idle halves the throughput.
        """
        per_batch = self.batch_size
        if self.workers > 1:
            per_batch = -(-n_texts // (3 * self.workers))
            per_batch = max(per_batch, min(4, -(-n_texts // self.workers)))
            per_batch = min(per_batch, self.batch_size)
        return [min(per_batch, n_texts - start) for start in range(0, n_texts, per_batch)]

    def batches(self, lengths: Sequence[int]) -> list[np.ndarray]:
        """The model calls for texts of these token lengths: index arrays, longest texts first.

        :meth:`plan` sizes them by count; a batch whose padded size (its longest text times
        its count) passes ``max_batch_tokens`` is split further, never below one text. For
        the int8 variants a piece also ends where the texts' length changes, when the texts
        of its first length fill at least ``EXACT_CALL_MIN_TOKENS``: such a call has no
        padding, so its attention skips the mask (see ``_skip_mask_when_unpadded``).
        """
        order = np.argsort([-int(n) for n in lengths], kind="stable")
        exact = self.variant in UNPADDED_FAST and self.provider == "cpu"
        out: list[np.ndarray] = []
        for chunk in np.split(order, np.cumsum(self.plan(len(order)))[:-1]):
            start = 0
            while start < len(chunk):  # the first text of each piece is its longest
                longest = int(lengths[chunk[start]])
                per = max(1, self.max_batch_tokens // max(1, longest))
                piece = chunk[start : start + per]
                if exact:
                    same = int(np.sum([int(lengths[i]) == longest for i in piece]))
                    if same < len(piece) and same * longest >= EXACT_CALL_MIN_TOKENS:
                        piece = piece[:same]
                out.append(piece)
                start += len(piece)
        return out

    def embed(self, texts: str | Iterable[str], *, progress: bool | None = None) -> np.ndarray:
        """Embeddings in the caller's order: float32, shape (n, 384), each of unit length.

        ``progress`` shows a bar over batches; by default only for 2,000 texts or more.
        """
        from tqdm.auto import tqdm

        ids = self.tokenize(texts)
        out = np.empty((len(ids), DIM), dtype=np.float32)
        show = len(ids) >= 2000 if progress is None else progress
        chunks = self.batches([len(x) for x in ids])

        def one(chunk: np.ndarray) -> None:
            out[chunk] = self.run(self.pad([ids[i] for i in chunk]))

        bar = tqdm(total=len(chunks), desc="embed", unit="batch", disable=not show, leave=False)
        with bar:
            if self.workers == 1 or len(chunks) == 1:
                for chunk in chunks:
                    one(chunk)
                    bar.update()
            else:
                for done in as_completed([self._pool().submit(one, c) for c in chunks]):
                    done.result()
                    bar.update()
        return out

    def _pool(self) -> ThreadPoolExecutor:
        """The workers' threads, started on first use and kept: a server embeds every batch."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="infralab-embed")
        return self._executor


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (n, d) arrays."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.maximum(den, 1e-30)
