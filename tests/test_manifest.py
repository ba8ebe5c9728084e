"""Built models carry a manifest: damage is refused with the fix named, and the fix repairs it.

Everything here works in a temporary cache: the int8 encoder and the q4 decoder are built
into it from the fetched files (read through INFRALAB_ASSETS_DIR links), then corrupted.
The shared cache (``~/.cache/infralab``) is only read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infralab.core import assets
from infralab.engines.models import decoder, encoder, manifest
from infralab.engines.models.manifest import ModelIntegrityError

# Builds real models into a temporary cache and starts services on them: the full gate runs
# these, the inner loop (make test-quick) leaves them out.
pytestmark = pytest.mark.slow

SENTENCES = ["A cat sits on the mat.", "GPUs are rented by the hour.", "Queues absorb bursts."]
PROMPT = [{"role": "user", "content": "Count to three."}]
FIX = "python -m infralab fetch --verify"


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infralab", *args], capture_output=True, text=True, timeout=timeout
    )


def _overwrite(path: Path, offset: int, n: int) -> None:
    """Overwrite n bytes in place (same size, as a bad disk or a careless copy would)."""
    with open(path, "r+b") as fh:
        fh.seek(offset)
        old = fh.read(n)
        fh.seek(offset)
        fh.write(bytes((b ^ 0x5A) for b in old))


def _truncate(path: Path, keep: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(keep)


@pytest.fixture(scope="module")
def tmp_cache(tmp_path_factory):
    """A private cache with the int8 encoder and q4 decoder built by this kit."""
    sources = {}
    for key in ("minilm", "smollm2"):
        st = assets.status(key)
        if not st["verified"]:
            pytest.skip(f"the pinned {key} files are not fetched (run `python -m infralab fetch`)")
        sources[key] = Path(st["folder"])
    root = tmp_path_factory.mktemp("manifest")
    links = root / "assets"
    links.mkdir()
    for key, folder in sources.items():
        for f in assets.ASSETS[key].files:
            (links / f.name).symlink_to(folder / f.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(assets.CACHE_ENV, str(root / "cache"))
        mp.setenv(assets.OVERRIDE_ENV, str(links))
        assert assets.cache_dir() == root / "cache"
        encoder.build("int8", quiet=True)
        decoder.build("q4", quiet=True)
        emb = encoder.Embedder("int8", threads=1).embed(SENTENCES)
        from infralab.engines.models.text_generation import Generator

        text = Generator("q4", threads=1).generate(PROMPT, max_tokens=8).text
        yield {"root": root, "embeddings": emb, "text": text}


@pytest.fixture
def built(tmp_cache):
    """Each test starts from verified models (a failed test's damage is repaired first)."""
    for row in manifest.check_built(full=True):
        if row["state"] != "ok":
            manifest.repair_built([row["model"]], full=True)
    assert all(r["state"] == "ok" for r in manifest.check_built(full=True))
    return tmp_cache


def test_build_writes_a_manifest_with_inputs_builder_options_and_outputs(built):
    m = json.loads(encoder.manifest_path("int8").read_text())
    assert m["inputs"] == {"model.safetensors": assets.MINILM.files[0].sha256}
    assert m["builder"] == encoder.BUILDER and m["variant"] == "int8"
    assert m["options"]["keep_mlp_output_fp32"] is False
    out = encoder.model_path("int8")
    assert m["outputs"][out.name] == {"size": out.stat().st_size, "sha256": assets.sha256_file(out)}
    d = json.loads((decoder.model_dir("q4") / "manifest.json").read_text())
    assert set(d["outputs"]) == {"model.onnx", "model.onnx.data", "meta.json"}
    assert d["inputs"] == {decoder.GGUF_NAME: decoder._gguf_sha256()}


def test_overwritten_int8_encoder_is_refused_and_fetch_verify_repairs_it(built):
    path = encoder.model_path("int8")
    _overwrite(path, path.stat().st_size // 2, 128 * 1024)
    with pytest.raises(ModelIntegrityError) as err:
        encoder.Embedder("int8", threads=1)
    msg = str(err.value)
    assert FIX in msg and "int8" in msg and "differ" in msg and msg.count(". ") == 0
    out = _cli("doctor", "--quick")
    assert out.returncode == 0, out.stderr
    assert "damaged" in out.stdout and FIX in out.stdout

    out = _cli("fetch", "minilm")  # the plain fetch sees the changed file too
    assert out.returncode == 0, out.stderr
    assert "rebuilt  built encoder int8" in out.stdout
    assert encoder.check("int8", full=True).ok
    vectors = encoder.Embedder("int8", threads=1).embed(SENTENCES)
    assert encoder.cosine(vectors, built["embeddings"]).min() > 0.9999


def test_the_embeddings_service_refuses_to_start_and_names_the_fix(built):
    from infralab.engines.serving.launcher import LaunchError, launch

    _overwrite(encoder.model_path("int8"), 4096, 128 * 1024)
    with pytest.raises(LaunchError) as err:
        launch(factory_kwargs={"variant": "int8", "threads": 1}, ready_timeout_s=120)
    assert FIX in str(err.value).splitlines()[0]
    out = _cli("fetch", "--verify", "minilm")
    assert out.returncode == 0, out.stderr
    assert "rebuilt" in out.stdout and "encoder int8" in out.stdout
    with launch(factory_kwargs={"variant": "int8", "threads": 1}, ready_timeout_s=120) as server:
        import httpx

        r = httpx.post(server.url + "/v1/embeddings", json={"input": SENTENCES})
        got = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    assert encoder.cosine(got, built["embeddings"]).min() > 0.9999


def test_truncated_encoder_gives_the_same_message_and_build_models_repairs_it(built):
    path = encoder.model_path("int8")
    _truncate(path, path.stat().st_size // 3)
    with pytest.raises(ModelIntegrityError, match="bytes where its manifest says") as err:
        encoder.Embedder("int8", threads=1)
    assert FIX in str(err.value)
    out = _cli("build-models", "encoder", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "rebuilt  encoder int8" in out.stdout and "was damaged" in out.stdout
    assert encoder.check("int8", full=True).ok


def test_corrupted_chat_weights_are_refused_and_fetch_verify_repairs_them(built):
    from infralab.engines.models.text_generation import Generator

    data = decoder.model_dir("q4") / "model.onnx.data"
    _overwrite(data, data.stat().st_size // 2, 1024 * 1024)
    with pytest.raises(ModelIntegrityError, match="model.onnx.data") as err:
        Generator("q4", threads=1)
    assert FIX in str(err.value)
    out = _cli("fetch", "--verify", "smollm2")
    assert out.returncode == 0, out.stderr
    assert "rebuilt  built decoder q4" in out.stdout
    assert Generator("q4", threads=1).generate(PROMPT, max_tokens=8).text == built["text"]


def test_the_chat_service_refuses_to_start_on_a_truncated_graph(built):
    from infralab.engines.serving.launcher import LaunchError, launch

    graph = decoder.model_dir("q4") / "model.onnx"
    _truncate(graph, 1000)
    with pytest.raises(LaunchError) as err:
        launch("infralab.engines.serving.chat:create_chat_app", ready_timeout_s=120)
    first = str(err.value).splitlines()[0]
    assert FIX in first and "protobuf" not in first.lower() and "DecodeError" not in first
    repaired = manifest.repair_built(["decoder"], full=False)
    assert {(r["variant"], r["state"]) for r in repaired} == {("q4", "rebuilt")}
    assert decoder.check("q4", full=True).ok


def test_an_unreadable_manifest_is_refused_and_a_missing_one_means_a_rebuild(built):
    mpath = encoder.manifest_path("int8")
    mpath.write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="manifest is unreadable"):
        encoder.build("int8")
    mpath.unlink()  # as a model built by an older kit: rebuilt on load, not refused
    assert encoder.check("int8").state == "stale"
    assert encoder.build("int8", quiet=True) == encoder.model_path("int8")
    assert encoder.check("int8", full=True).ok


def test_another_builder_or_input_makes_the_model_stale(built):
    mpath = encoder.manifest_path("int8")
    original = mpath.read_text()
    try:
        for key, value in (
            ("builder", "infralab.engines.models.encoder/v0"),
            ("inputs", {"x": "0"}),
        ):
            m = json.loads(original)
            m[key] = value
            mpath.write_text(json.dumps(m))
            result = encoder.check("int8")
            assert result.state == "stale" and key in result.reason
    finally:
        mpath.write_text(original)


def test_a_second_load_reads_no_bytes_when_the_stamp_vouches(built, monkeypatch):
    assert encoder.check("int8").ok and decoder.check("q4").ok  # hashes once, stamps
    later = assets._now_ns() + 10**12
    # stamps written now count as taken well after the files' last change
    monkeypatch.setattr(assets, "_now_ns", lambda: later)
    manifest.check_built()  # writes stamps dated `later`
    monkeypatch.undo()

    def no_hash(path, *a, **k):
        raise AssertionError(f"hashed {path} although the stamp vouches for it")

    monkeypatch.setattr(assets, "sha256_file", no_hash)
    assert encoder.check("int8").ok and decoder.check("q4").ok
    assert encoder.build("int8") == encoder.model_path("int8")
    with pytest.raises(AssertionError, match="hashed"):
        encoder.check("int8", full=True)  # --verify reads every byte


def test_same_size_rewrite_right_after_hashing_is_caught(built, monkeypatch):
    """A signature taken within the racy window is never trusted (the assets' rule)."""
    path = encoder.model_path("int8")
    assert encoder.check("int8", full=True).ok  # hashed just now: inside the window
    st = path.stat()
    _overwrite(path, 1000, 64)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the old mtime restored
    assert encoder.check("int8").state == "damaged"


def test_the_doctor_lists_built_models(built):
    from infralab.tooling import doctor

    report = doctor.doctor(probe_providers=False)
    states = {(r["model"], r["variant"]): r["state"] for r in report["built_models"]}
    assert states[("encoder", "int8")] == "ok" and states[("decoder", "q4")] == "ok"
    rows = dict(doctor.doctor_rows(report))
    assert "verified" in rows["built models"]
    assert not any(FIX in w for w in report["warnings"])
