"""The GGUF -> ONNX export against the original implementation's reference outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infralab.core.paths import SMOLLM2_REFERENCE
from infralab.engines.models import decoder


def _gguf_or_skip() -> None:
    try:
        decoder.gguf_path()
    except decoder.DecoderError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def reference() -> dict:
    _gguf_or_skip()
    return json.loads(SMOLLM2_REFERENCE.read_text())


def test_config_from_metadata() -> None:
    _gguf_or_skip()
    cfg = decoder.config()
    assert (cfg.layers, cfg.hidden, cfg.heads, cfg.kv_heads, cfg.vocab) == (30, 576, 9, 3, 49152)
    assert cfg.rope_base == 100000.0
    assert cfg.kv_bytes_per_token_fp32 == 2 * 30 * 3 * 64 * 4


def test_tokenizer_cases(reference: dict) -> None:
    tok = decoder.load_tokenizer()
    for case in reference["tokenizer_cases"]:
        assert tok.encode(case["text"], add_special_tokens=False).ids == case["ids"], case["text"]
        assert tok.decode(case["ids"]) == case["text"]


def test_chat_template_and_prompt_ids(reference: dict) -> None:
    tok = decoder.load_tokenizer()
    for item in reference["items"]:
        text = decoder.apply_chat_template([{"role": "user", "content": item["user_message"]}])
        assert text == item["prompt_text"]
        assert tok.encode(text).ids == item["prompt_ids"]


def test_chat_template_rejects_bad_messages() -> None:
    _gguf_or_skip()
    with pytest.raises(ValueError, match="role"):
        decoder.apply_chat_template([{"text": "hi"}])
    with pytest.raises(ValueError, match="non-empty"):
        decoder.apply_chat_template([])


def test_unknown_variant_says_which_exist() -> None:
    with pytest.raises(decoder.DecoderError, match="fp32"):
        decoder.build("int3")


def _run_steps(variant: str, ids: list[int], steps: int) -> tuple[list[np.ndarray], list[int]]:
    """Greedy decode with a raw session: the logits of each step and the chosen ids."""
    import onnxruntime as ort

    from infralab.core import runtime

    cfg = decoder.config()
    sess = runtime.make_session(decoder.build(variant), "cpu", threads=2)
    length = len(ids) + steps
    kv = [
        np.zeros((1, cfg.kv_heads, length, cfg.head_dim), np.float32) for _ in range(2 * cfg.layers)
    ]
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in kv]
    all_logits, out, cur, total = [], [], list(ids), 0
    for _ in range(steps):
        total += len(cur)
        b = sess.io_binding()
        b.bind_output("logits")
        b.bind_cpu_input("input_ids", np.array([cur], np.int64))
        b.bind_cpu_input("seqlens_k", np.array([total - 1], np.int32))
        b.bind_cpu_input("total_sequence_length", np.array(total, np.int32))
        for i in range(cfg.layers):
            for j, k in enumerate(("key", "value")):
                b.bind_ortvalue_input(f"past_key_values.{i}.{k}", values[2 * i + j])
                b.bind_ortvalue_output(f"present.{i}.{k}", values[2 * i + j])
        sess.run_with_iobinding(b)
        logits = b.copy_outputs_to_cpu()[0][0]
        all_logits.append(logits)
        cur = [int(np.argmax(logits))]
        out.append(cur[0])
    return all_logits, out


@pytest.mark.slow
def test_fp32_matches_reference_logits_and_greedy_tokens(reference: dict) -> None:
    for item in reference["items"][:2]:
        logits, out = _run_steps("fp32", item["prompt_ids"], 16)
        for step, top in enumerate(item["top5_first_steps"][:4]):
            ours = list(np.argsort(-logits[step])[:5])
            assert ours == top["ids"], f"step {step}"
            assert np.abs(logits[step][top["ids"]] - np.array(top["logits"])).max() <= 0.05
        ref = item["greedy_new_ids"][:16]
        assert out[: len(ref)] == ref


def test_q4_is_an_exact_mapping_of_the_q4_1_blocks(reference: dict) -> None:
    """4-bit keeps the GGUF's own blocks, so its logits stay close to fp32 (int8 activations
    in the kernel are the only extra rounding) and the greedy start is the same."""
    item = reference["items"][0]
    logits, out = _run_steps("q4", item["prompt_ids"], 8)
    top = item["top5_first_steps"][0]
    assert int(np.argmax(logits[0])) == top["ids"][0]
    assert np.abs(logits[0][top["ids"]] - np.array(top["logits"])).max() < 1.0
    assert out == item["greedy_new_ids"][:8]


def test_q4_1_split_is_exact() -> None:
    """d*q + m == d*(q - 8) + (m + 8d): the identity the 4-bit export relies on."""
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, (4, 2, 32)).astype(np.float32)
    d = rng.random((4, 2, 1)).astype(np.float32)
    m = -rng.random((4, 2, 1)).astype(np.float32)
    x = rng.standard_normal((2, 32)).astype(np.float32)
    direct = ((d * q + m) * x).sum(axis=(1, 2))
    split = ((d * (q - 8)) * x).sum(axis=(1, 2)) + ((m + 8 * d)[..., 0] * x.sum(-1)).sum(-1)
    assert np.allclose(direct, split, atol=1e-4)


def test_pack_nbits_layout() -> None:
    q = np.arange(32, dtype=np.uint8).reshape(1, 1, 32) % 16
    packed = decoder._pack_nbits(q)
    assert packed.shape == (1, 1, 16)
    assert packed[0, 0, 0] == (0 | (1 << 4)) and packed[0, 0, 1] == (2 | (3 << 4))


@pytest.mark.slow
def test_export_peaks_under_1_5_gb(tmp_path: Path) -> None:
    """Build a variant in a fresh process with its own cache and read its peak RSS."""
    _gguf_or_skip()
    code = (
        "from infralab.engines.models import decoder\n"
        "decoder.build('fp32', quiet=True)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a large
        # pytest process would report its parent's peak.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(hwm.split()[1])\n"
    )
    from infralab.core.assets import asset_paths

    env = {**__import__("os").environ, "INFRALAB_CACHE": str(tmp_path)}
    env["INFRALAB_ASSETS_DIR"] = str(asset_paths("smollm2")[decoder.GGUF_NAME].parent)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    assert peak_mb < 1536, f"export peaked at {peak_mb:.0f} MB"
