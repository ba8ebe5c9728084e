"""The encoder: exported without PyTorch, it must reproduce sentence-transformers' embeddings."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import pytest

from infralab.core import runtime
from infralab.engines.models import encoder
from infralab.engines.models.encoder import Embedder, cosine


@pytest.fixture(scope="module")
def fp32() -> Embedder:
    return Embedder("fp32", batch_size=4, threads=1)


@pytest.fixture(scope="module")
def reference(reference_dir) -> list[dict]:
    return json.loads((reference_dir / "minilm_reference.json").read_text())["items"]


SENTENCES = [
    "Batching raises throughput.",
    "A GPU that idles still costs money by the hour, which is why utilisation matters.",
    "Hi",
    "Quantization to eight bits trades a little accuracy for speed on CPUs.",
    "",
    "Serverless functions scale to zero when no requests arrive at night.",
    "Vector search returns the nearest chunks.",
]


def test_fp32_matches_reference(fp32: Embedder, reference: list[dict]) -> None:
    texts = [item["text"] for item in reference]
    ref = np.array([item["embedding"] for item in reference], dtype=np.float32)
    got = fp32.embed(texts)
    assert got.dtype == np.float32 and got.shape == (len(texts), 384)
    for i, item in enumerate(reference):
        assert cosine(got[i : i + 1], ref[i : i + 1])[0] >= 0.9999, item["text"]
        assert np.abs(got[i] - ref[i]).max() <= 1e-4, item["text"]
    assert fp32.count_tokens(texts) == [item["num_tokens"] for item in reference]


def test_plain_graph_equals_fused_graph(fp32: Embedder) -> None:
    plain = Embedder("fp32-unfused", batch_size=4, threads=1)
    np.testing.assert_allclose(plain.embed(SENTENCES), fp32.embed(SENTENCES), atol=2e-5)


def test_int8_keeps_quality_on_the_reference_sentences(
    fp32: Embedder, reference: list[dict]
) -> None:
    int8 = Embedder("int8", threads=1)
    assert int8.provider == "cpu"
    texts = [item["text"] for item in reference]
    assert cosine(int8.embed(texts), fp32.embed(texts)).min() >= 0.98
    sentences = [s for s in SENTENCES if len(s) > 20]  # one-word inputs lose most: see _to_int8
    assert cosine(int8.embed(sentences), fp32.embed(sentences)).min() >= 0.98


@pytest.mark.slow
def test_int8_quantizes_every_matmul_and_int8_mixed_keeps_the_mlp_output(fp32: Embedder) -> None:
    def ops(variant: str) -> Counter:
        graph = onnx.load(str(encoder.build(variant)), load_external_data=False).graph
        return Counter(n.op_type for n in graph.node)

    assert ops("int8")["MatMul"] == 0 and ops("int8")["If"] == 6
    assert ops("int8-mixed")["MatMul"] == 6  # one float32 MLP output projection per layer
    mixed = Embedder("int8-mixed", threads=1)
    assert cosine(mixed.embed(SENTENCES), fp32.embed(SENTENCES)).min() >= 0.98


def test_workers_run_batches_side_by_side_and_keep_the_order(fp32: Embedder) -> None:
    texts = SENTENCES * 5  # 35 texts
    two = Embedder("fp32", batch_size=8, workers=2)
    assert two.workers == 2 and two.threads == 1
    assert two.plan(100) == [8] * 12 + [4]  # full batches when there are plenty
    assert two.plan(35) == [6, 6, 6, 6, 6, 5]  # at least three batches per worker
    assert two.plan(10) == [4, 4, 2]  # but not under 4 texts a batch
    assert two.plan(1) == [1]
    np.testing.assert_allclose(two.embed(texts), fp32.embed(texts), atol=1e-5)
    assert "workers=2" in repr(two)


def test_cpu_calls_hold_at_most_max_batch_tokens(fp32: Embedder) -> None:
    one = Embedder("fp32", workers=1, threads=1)
    assert one.max_batch_tokens == encoder.CPU_BATCH_TOKENS
    # 32 sentences of 15 tokens stay one call; 40 passages of 130 tokens go 3 a call
    assert [len(b) for b in one.batches([15] * 32)] == [32]
    calls = one.batches([130] * 10 + [120] * 30)
    assert all(len(b) * 130 <= 512 for b in calls[:4]) and max(len(b) for b in calls) == 4
    assert sorted(np.concatenate(calls).tolist()) == list(range(40))  # each text once
    assert [len(b) for b in one.batches([300, 3, 2])] == [1, 2]  # never below one text
    # the same vectors whatever the split (padding is masked)
    long = [" ".join(SENTENCES) * k for k in (1, 2, 3)] + SENTENCES
    tight = Embedder("fp32", workers=1, threads=1, max_batch_tokens=64)
    assert len(tight.batches([len(x) for x in tight.tokenize(long)])) > 3
    np.testing.assert_allclose(tight.embed(long), fp32.embed(long), atol=1e-5)
    with pytest.raises(ValueError, match="max_batch_tokens"):
        Embedder("fp32", max_batch_tokens=0)


def test_defaults_one_single_threaded_session_per_core_on_the_cpu() -> None:
    default = Embedder("int8")
    assert default.workers == runtime.physical_cores() and default.threads == 1
    classic = Embedder("int8", threads=2)
    assert classic.workers == 1 and classic.threads == 2
    with pytest.raises(ValueError, match="workers must be"):
        Embedder("int8", workers=0)


def test_cpu_sessions_skip_the_slow_skip_layernorm_fusion(monkeypatch, tmp_path) -> None:
    graph = onnx.load(str(encoder.build("fp32")), load_external_data=False).graph
    ops = Counter(n.op_type for n in graph.node)
    assert ops["LayerNormalization"] == 12 and ops["SkipLayerNormalization"] == 0
    plain_options = runtime.session_options

    def keep_optimized(**kwargs):  # ask ORT to write the graph it will really run
        opts = plain_options(**kwargs)
        opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
        return opts

    monkeypatch.setattr(runtime, "session_options", keep_optimized)
    Embedder("fp32", threads=1)
    optimized = onnx.load(str(tmp_path / "optimized.onnx"), load_external_data=False).graph
    ran = Counter(n.op_type for n in optimized.node)
    assert ran["SkipLayerNormalization"] == 0 and ran["LayerNormalization"] == 12


def _optimized_ops(variant: str, monkeypatch, tmp_path) -> tuple[Counter, list]:
    """The op types of the graph ONNX Runtime really runs for ``variant`` on the CPU."""
    plain_options = runtime.session_options
    out = tmp_path / f"{variant}-optimized.onnx"

    def keep_optimized(**kwargs):
        opts = plain_options(**kwargs)
        opts.optimized_model_filepath = str(out)
        return opts

    monkeypatch.setattr(runtime, "session_options", keep_optimized)
    Embedder(variant, threads=1)
    nodes = list(onnx.load(str(out), load_external_data=False).graph.node)
    return Counter(n.op_type for n in nodes), nodes


def test_int8_folds_the_mlp_bias_into_its_integer_matmuls(monkeypatch, tmp_path) -> None:
    exported = Counter(n.op_type for n in onnx.load(str(encoder.build("fp32"))).graph.node)
    assert exported["Gelu"] == 6 and exported["BiasGelu"] == 0
    fp16 = Counter(n.op_type for n in onnx.load(str(encoder.build("fp16"))).graph.node)
    assert fp16["BiasGelu"] == 6  # the GPU graph keeps the fused op
    ran, nodes = _optimized_ops("int8", monkeypatch, tmp_path)
    # the slower BiasGelu kernel is gone: every bias rides in a DynamicQuantizeMatMul
    assert ran["Gelu"] == 6 and ran["BiasGelu"] == 0 and ran["MatMul"] == 0
    quantized = [n for n in nodes if n.op_type == "DynamicQuantizeMatMul"]
    assert len(quantized) == 18 and all(len(n.input) == 5 and n.input[4] for n in quantized)
    fp32_ran, _ = _optimized_ops("fp32", monkeypatch, tmp_path)
    assert fp32_ran["BiasGelu"] == 6 and fp32_ran["Gelu"] == 0  # fp32: fused back, as before


def test_int8_calls_of_one_length_skip_the_mask_with_the_same_result(tmp_path) -> None:
    int8 = Embedder("int8", workers=1, threads=1)
    # passages: a call ends where the length changes (no padding, so no mask to apply) ...
    assert [len(b) for b in int8.batches([130] * 5 + [120] * 3)] == [3, 2, 3]
    # ... but short texts of one length still share a call with the next length
    assert [len(b) for b in int8.batches([15] * 4 + [14] * 20)] == [24]
    fp32 = Embedder("fp32", workers=1, threads=1)  # no mask-free path: cut by size only
    assert [len(b) for b in fp32.batches([130] * 5 + [120] * 3)] == [3, 3, 2]
    # the mask-free branch computes what the masked one does: force the masked branch
    model = onnx.load(str(int8.path))
    ifs = [n for n in model.graph.node if n.op_type == "If"]
    assert len(ifs) == 6 and all(n.input[0] == "unpadded" for n in ifs)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(False), "never"))
    for n in ifs:
        n.input[0] = "never"
    forced = runtime.make_session(model.SerializeToString(), "cpu", threads=1)
    feeds = int8.pad(int8.tokenize(["one two three four five six"] * 3))
    assert feeds["attention_mask"].all()
    np.testing.assert_allclose(
        int8.run(feeds), forced.run(["sentence_embedding"], feeds)[0], atol=1e-6
    )


def test_order_kept_across_length_sorted_batches(fp32: Embedder) -> None:
    together = fp32.embed(SENTENCES)  # 7 texts, batch 4, sorted by length internally
    alone = np.concatenate([fp32.embed(t) for t in SENTENCES])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_unit_length_and_single_string(fp32: Embedder) -> None:
    one = fp32.embed("hello world")
    assert one.shape == (1, 384)
    np.testing.assert_allclose(np.linalg.norm(fp32.embed(SENTENCES), axis=1), 1.0, atol=1e-5)


def test_truncation_at_max_length(fp32: Embedder) -> None:
    long = "word " * 1000
    assert fp32.count_tokens([long, "short"]) == [256, 3]
    assert fp32.embed(long).shape == (1, 384)
    short = Embedder("fp32", max_length=16, threads=1)
    assert short.count_tokens(long) == [16]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"variant": "fp8"}, "Unknown encoder variant"),
        ({"provider": "tpu"}, "provider must be"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_length": 1000}, "max_length"),
    ],
)
def test_bad_configuration_is_explained(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Embedder(**kwargs)


@pytest.mark.parametrize(
    "texts, match",
    [([], "empty"), (["ok", 3], r"texts\[1\] is a int"), ([None], "not a string"), (5, "list")],
)
def test_bad_input_is_explained(fp32: Embedder, texts, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fp32.embed(texts)


def test_built_models_are_valid_and_fused() -> None:
    for variant in ("fp32", "int8", "fp16", "fp32-unfused"):
        path = encoder.build(variant)
        assert path == encoder.model_path(variant) and path.is_file()
        model = onnx.load(str(path), load_external_data=False)
        assert model.ir_version == encoder.IR_VERSION
        ops = Counter(n.op_type for n in model.graph.node)
        if variant == "fp32-unfused":
            assert not any(n.domain == "com.microsoft" for n in model.graph.node)
        elif variant == "int8":  # each QAttention sits in an If (masked or not)
            assert ops["If"] == 6 and ops["LayerNormalization"] == 12
        elif variant == "fp16":  # the GPU graph keeps the fused residual + LayerNorm
            assert ops["Attention"] == 6 and ops["SkipLayerNormalization"] == 12
        else:
            assert ops["Attention"] == 6 and ops["LayerNormalization"] == 12
    fp16 = onnx.load(str(encoder.build("fp16")))
    assert [i.type.tensor_type.elem_type for i in fp16.graph.input] == [onnx.TensorProto.INT64] * 2
    assert fp16.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in fp16.graph.initializer)


def test_build_is_cached_by_hash_and_variant() -> None:
    path = encoder.build("fp32")
    mtime = path.stat().st_mtime_ns
    assert encoder.build("fp32") == path and path.stat().st_mtime_ns == mtime
    assert "53aa51172d142c89" in path.name and "fp32" in path.name
    assert not list(path.parent.glob("*.part"))


def test_fp16_on_cpu_warns_and_stays_close(fp32: Embedder) -> None:
    with pytest.warns(UserWarning, match="no faster"):
        fp16 = Embedder("fp16", "cpu", threads=1)
    assert cosine(fp16.embed(SENTENCES), fp32.embed(SENTENCES)).min() >= 0.999


def test_build_all_returns_every_variant() -> None:
    built = encoder.build_all(quiet=True)
    assert set(built) >= {"fp32", "int8", "fp16"}


@pytest.mark.gpu
@pytest.mark.skipif(not runtime.cuda_usable(), reason="no usable CUDA provider on this machine")
def test_fp16_on_cuda_close_to_fp32(fp32: Embedder) -> None:
    fp16 = Embedder("fp16", "cuda")
    assert fp16.provider == "cuda"
    assert cosine(fp16.embed(SENTENCES), fp32.embed(SENTENCES)).min() >= 0.999
    gpu32 = Embedder("fp32", "cuda")
    np.testing.assert_allclose(gpu32.embed(SENTENCES), fp32.embed(SENTENCES), atol=1e-4)
