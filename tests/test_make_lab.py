"""`make lab` really serves JupyterLab on the first lesson, and stops cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_answers_over_http(repo_root, tmp_path):
    port = _free_port()
    token = "infralab-test"
    args = (
        f"--ServerApp.ip=127.0.0.1 --IdentityProvider.token={token} "
        f"--ServerApp.root_dir={repo_root} --ServerApp.open_browser=False"
    )
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"PORT={port}", "BROWSER=no", f"LAB_ARGS={args}"],
        cwd=repo_root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/contents/course/00_start_here.ipynb",
                    params={"token": token, "content": 0},
                    timeout=5,
                )
                status = r.status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        log.seek(0)
        assert status == 200, f"JupyterLab did not answer; log:\n{log.read()[-3000:]}"
        lab = httpx.get(f"http://127.0.0.1:{port}/lab", params={"token": token}, timeout=10)
        assert lab.status_code == 200 and "JupyterLab" in lab.text
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
