"""A collector on this machine, started and stopped from Python (instructor notebook, tests).

Why a child process and not a thread: it is the same command an instructor runs
(``python -m infralab collector``), so the notebook shows the real thing; it binds
127.0.0.1 only, uses a temporary database unless given one, and is stopped by
:meth:`LocalCollector.stop` (also at interpreter exit, so an interrupted notebook leaves
nothing running).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from infralab.core.errors import InfralabError
from infralab.core.paths import REPO_ROOT
from infralab.tooling.classroom.store import new_token

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "LocalCollector",
    "share_demo",
]


REPO = REPO_ROOT


class CollectorError(RuntimeError, InfralabError):
    """The local collector did not start or answer; the message has its error output."""

    hint = "Run `python -m infralab collector --help` in a terminal to see the same error there."


class LocalCollector:
    """A running ``python -m infralab collector`` on 127.0.0.1 and its instructor token."""

    def __init__(self, db: str | None = None, port: int | None = None, timeout_s: float = 60):
        from infralab.engines.serving.launcher import free_port

        self._tmp = None if db else tempfile.TemporaryDirectory(prefix="infralab-collector-")
        self.db = db or f"sqlite:///{Path(self._tmp.name) / 'class.db'}"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_token = new_token(16)
        env = {**os.environ, "INFRALAB_COLLECTOR_TOKEN": self.admin_token}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "infralab", "collector", "--db", self.db,
               "--port", str(self.port), "--prefix", "/"]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CollectorError(f"the collector did not start: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise CollectorError(
            f"the collector did not answer within {timeout_s:g} s",
            hint="A busy machine starts it slowly: pass a larger timeout_s, or try again.",
        )

    def create_class(self, name: str) -> str:
        """A new class; returns its join token (what students pass to ``share``)."""
        r = httpx.post(
            self.url + "/api/classes",
            json={"name": name},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        r.raise_for_status()
        return r.json()["token"]

    def stop(self) -> None:
        """Stop the process (idempotent) and remove a temporary database."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def share_demo(url: str, token: str, students: int = 12, seed: int = 0) -> int:
    """Upload :func:`infralab.tooling.classroom.room.demo_records` (generated, labelled demo): each
    demo student joins with the class token and shares with their own student token."""
    from infralab.tooling.classroom import room

    by_student: dict[str, list[dict]] = {}
    for nickname, record in room.demo_records(students, seed):
        by_student.setdefault(nickname, []).append(record)
    stored = 0
    with httpx.Client(timeout=30) as http:
        for nickname, records in by_student.items():
            joined = http.post(
                url + "/api/join",
                json={"nickname": nickname},
                headers={"Authorization": f"Bearer {token}"},
            )
            joined.raise_for_status()
            student = joined.json()["token"]
            r = http.post(
                url + "/api/share",
                json={"records": records},
                headers={"Authorization": f"Bearer {student}"},
            )
            r.raise_for_status()
            stored += r.json()["stored"]
    return stored
