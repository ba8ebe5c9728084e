"""A launched server process: its handle (:class:`Server`), how it is stopped, its port.

Why apart from the launcher: starting a server (the environment, the spawn, the wait for
its health check, the cold-start breakdown) and holding one (its log, memory, metrics and a
stop that leaves nothing behind) are two jobs; :mod:`infralab.engines.serving.launcher` does the
first and hands back a :class:`Server` from here.

A server is stopped by :meth:`Server.stop`, by leaving its ``with`` block, or at interpreter
exit (``atexit``); the whole process group is signalled, so workers die with it, and any
child that left the group is killed by pid.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import Any

_LIVE: weakref.WeakSet[Server] = weakref.WeakSet()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could bind ``port`` now (what a leftover process would prevent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class Server:
    """A running service process. Use as a context manager, or call :meth:`stop`."""

    def __init__(
        self,
        proc: subprocess.Popen,
        url: str,
        port: int,
        log_path: Path,
        app: str,
        *,
        watch_fd: int | None = None,
        record: Path | None = None,
    ) -> None:
        self.proc = proc
        self.url = url
        self.port = port
        self.app = app
        self.log_path = log_path
        self._watch_fd = watch_fd  # the write end of the pipe the server watches
        self._record = record  # its entry in the registry of running servers
        self.cold_start: dict[str, float | None] = {}
        self.health: dict[str, Any] = {}
        self._stopped = False
        self._lock = threading.Lock()
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self.proc.poll() is None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Server {self.app} at {self.url} pid={self.pid} {state}>"

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's stdout/stderr, to see why it failed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def rss_mb(self) -> float:
        """Resident memory of the server and its children, in MiB (0 once stopped)."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            procs = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return 0.0

    def metrics(self) -> dict[str, Any]:
        """The server's ``GET /metrics`` as JSON (empty when it has none).

        Asks for JSON explicitly: the same route answers Prometheus text to a scraper.
        """
        import httpx

        r = httpx.get(self.url + "/metrics", headers={"Accept": "application/json"}, timeout=10)
        return r.json() if r.status_code == 200 else {}

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL. Safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _signal_group(self.proc, signal.SIGTERM if os.name != "nt" else None)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc, getattr(signal, "SIGKILL", None))
            self.proc.wait(timeout=timeout_s)
        # Children that ignored the group signal (or re-grouped) are killed by pid.
        _kill_stragglers(self.proc.pid)
        if self._watch_fd is not None:
            try:
                os.close(self._watch_fd)
            except OSError:
                pass
            self._watch_fd = None
        if self._record is not None:
            self._record.unlink(missing_ok=True)
        # The socket closes with the process; give the kernel a moment to release the port.
        deadline = time.monotonic() + 5
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.log_path.unlink()
        except OSError:
            pass


_DESCENDANTS: dict[int, list[int]] = {}


def _signal_group(proc: subprocess.Popen, sig: int | None) -> None:
    if proc.poll() is not None:
        return
    try:
        import psutil

        _DESCENDANTS[proc.pid] = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except Exception:
        pass
    try:
        if os.name != "nt" and sig is not None:
            os.killpg(proc.pid, sig)
        else:
            proc.terminate() if sig != getattr(signal, "SIGKILL", -1) else proc.kill()
    except ProcessLookupError:
        pass


def _kill_stragglers(pid: int) -> None:
    try:
        import psutil
    except ImportError:
        return
    for child_pid in _DESCENDANTS.pop(pid, []):
        try:
            psutil.Process(child_pid).kill()
        except psutil.Error:
            pass


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop(timeout_s=3)
        except Exception:
            pass


def stop_all() -> int:
    """Stop every server this Python process launched; returns how many were running."""
    live = [s for s in list(_LIVE) if s.running]
    for server in live:
        server.stop()
    return len(live)
