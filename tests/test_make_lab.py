"""`make lab` serves the repository root, opens lesson 00, and every lesson reaches its lab.

The server is started exactly as `make lab` starts it (the `serve-lab` target that `lab`
runs after set-up), with this environment's `jupyter`, a free port and a token. Every
relative link of every lesson and lab must name a file that exists; a lesson's link to its
lab is followed through the running server's contents API.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infralab.tooling import labs, notebooks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _links(root: Path) -> list[tuple[str, str]]:
    """(notebook path, link target resolved from it), relative to the repository, POSIX."""
    out = []
    for path in notebooks.course_notebooks(root):
        rel = path.relative_to(root).as_posix()
        for target in labs.relative_links(notebooks.read(path)):
            out.append((rel, posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))))
    return out


def test_every_relative_link_in_lessons_and_labs_exists(repo_root):
    links = _links(repo_root)
    assert links, "no relative links found: the link parser is broken"
    broken = [(nb, t) for nb, t in links if t.startswith("..") or not (repo_root / t).exists()]
    assert broken == [], f"links to files that do not exist: {broken}"


def test_lessons_link_to_labs(repo_root):
    to_labs = [(nb, t) for nb, t in _links(repo_root) if nb.startswith("course/")]
    assert any(t.startswith("labs/") and t.endswith(".ipynb") for _, t in to_labs)


def test_rebase_links_keeps_the_target():
    text = "[a](../../course/07.ipynb#x) [b](https://x.org/a.ipynb) [c](#top) [d](02.ipynb)"
    out = labs.rebase_links(text, "labs/solutions", "labs")
    assert (
        out
        == "[a](../course/07.ipynb#x) [b](https://x.org/a.ipynb) [c](#top) [d](solutions/02.ipynb)"
    )


@pytest.mark.slow  # starts a JupyterLab server through make
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_serves_the_repository_and_follows_a_lesson_link(repo_root, tmp_path):
    port = _free_port()
    token = "infralab-test"
    jupyter = Path(sys.executable).with_name("jupyter")
    args = f"--ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(
        ["make", "-s", "serve-lab", f"PORT={port}", "BROWSER=no", f"LAB_ARGS={args}",
         f"JUPYTER={jupyter}"],
        cwd=repo_root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    params = {"token": token, "content": 0}
    try:
        deadline = time.monotonic() + 240
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"{base}/api/contents/course/00_start_here.ipynb", params=params)
                status = r.status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        log.seek(0)
        text = log.read()
        assert status == 200, f"JupyterLab did not answer; log:\n{text[-3000:]}"
        # the browser is sent to lesson 00, inside a server whose root is the repository
        assert f"local directory: {repo_root}" in text, text[-3000:]
        home = httpx.get(f"{base}/", params={"token": token}, follow_redirects=False)
        assert home.status_code in (301, 302, 303, 307), home.status_code
        assert (
            home.headers["location"].split("?")[0].endswith("/lab/tree/course/00_start_here.ipynb")
        ), home.headers["location"]
        lesson = "course/02_serverless_api.ipynb"
        nb = httpx.get(f"{base}/api/contents/{lesson}", params={"token": token}).json()
        lab_links = [
            t for t in labs.relative_links(nb["content"]) if re.search(r"labs/.*\.ipynb$", t)
        ]
        assert lab_links, f"{lesson} has no link to its lab"
        target = posixpath.normpath(posixpath.join(posixpath.dirname(lesson), lab_links[0]))
        r = httpx.get(f"{base}/api/contents/{target}", params=params)
        assert r.status_code == 200, (target, r.text[:300])
        assert r.json()["type"] == "notebook"
        page = httpx.get(f"{base}/lab", params={"token": token}, timeout=10)
        assert page.status_code == 200 and "JupyterLab" in page.text
        found = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page.text, re.S)
        config = json.loads(found.group(1))
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
    with socket.socket() as s:  # the port is free again: nothing outlived the test
        s.bind(("127.0.0.1", port))
