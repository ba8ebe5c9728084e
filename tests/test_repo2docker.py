"""The course image: repo2docker's own detection picks the inputs we mean, and postBuild
may run twice.

A docker build cannot run offline, so this checks what repo2docker would do with the
repository as it is: the conda build pack is chosen from ``environment.yml`` (one
environment for the server and the kernel, with ``jupyterhub-singleuser`` so a hub can start
it), the Dockerfile it renders installs the environment and runs ``./postBuild``, and
``postBuild`` is executable. Then postBuild runs twice against a copy of the built model
cache: both runs succeed and the second changes nothing (the shared cache is never written).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def conda_pack(monkeypatch):
    try:
        from repo2docker.app import Repo2Docker
    except ImportError:
        pytest.skip("jupyter-repo2docker is not installed (pip install -e '.[hub]')")
    monkeypatch.chdir(REPO)  # repo2docker detects from the current folder, as in a build
    picked = []
    r2d = Repo2Docker()
    for pack in r2d.buildpacks:
        bp = pack(base_image=r2d.base_image)
        if bp.detect():
            picked.append(bp)
            break
    assert picked, "repo2docker found no build pack for this repository"
    bp = picked[0]
    bp.platform = "linux/amd64"
    return bp


def test_repo2docker_picks_conda_with_postbuild(conda_pack):
    assert type(conda_pack).__name__ == "CondaBuildPack"
    assert conda_pack.python_version == "3.11"
    assert not conda_pack.separate_kernel_env  # the server and the kernel share one env
    assert conda_pack.get_post_build_scripts() == ["postBuild"]
    dockerfile = conda_pack.render()
    assert '--file "environment.yml"' in dockerfile
    assert "RUN ./postBuild" in dockerfile
    import repo2docker.buildpacks as packs

    files = conda_pack.get_build_script_files()
    (lock,) = [src for src, dst in files.items() if dst.endswith("environment.lock")]
    assert "jupyterhub-singleuser" in (Path(packs.__file__).parent / lock).read_text()


def test_postbuild_is_executable_and_strict():
    mode = (REPO / "postBuild").stat().st_mode
    assert mode & stat.S_IXUSR, "postBuild must be executable (git update-index --chmod=+x)"
    text = (REPO / "postBuild").read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Size and mtime per file; a verification stamp by its keys (it records when it ran)."""
    out: dict[str, tuple] = {}
    for p in folder.rglob("*"):
        if p.is_file():
            name = str(p.relative_to(folder))
            if p.name == ".verified.json":
                out[name] = tuple(sorted(json.loads(p.read_text())))
            else:
                out[name] = (p.stat().st_size, p.stat().st_mtime_ns)
    return out


@pytest.mark.slow
def test_postbuild_runs_twice_on_a_copy_of_the_cache(tmp_path):
    from infralab.core import assets

    shared = assets.cache_dir()
    needed = [shared / "assets", shared / "models"]
    if not all(p.is_dir() for p in needed):
        pytest.skip(f"no built cache at {shared}: run `python -m infralab fetch && build-models`")
    before_shared = _snapshot(shared / "models")
    cache = tmp_path / "cache"
    shutil.copytree(shared / "assets", cache / "assets")
    shutil.copytree(
        shared / "models", cache / "models", ignore=shutil.ignore_patterns("synthetic-*")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRALAB_")}
    env.update(
        INFRALAB_CACHE=str(cache),
        PYTHONPATH=str(REPO),
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PIP_NO_INDEX="1",  # nothing may be downloaded: the copy holds every file
    )
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            ["bash", str(REPO / "postBuild")], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs.append(_snapshot(cache))
    assert runs[0] == runs[1], "the second postBuild changed the models or assets"
    assert any(name.startswith("models/") for name in runs[1])
    assert _snapshot(shared / "models") == before_shared
