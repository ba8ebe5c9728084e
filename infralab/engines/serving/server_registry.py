"""The registry of running servers, and the sweep that stops a server its kernel left behind.

Each :func:`~infralab.engines.serving.launcher.launch` records its server here (pid, start time, the
random token in its environment, the launching process); :func:`sweep_orphans`, run by every
launch and by the doctor, stops a server whose launching process is gone, and only one that
is provably the kit's: same pid and start time as recorded, and the recorded token. The
launcher's own watchdog (the server watching its parent) is the first line; this is the last.
The names here are importable from :mod:`infralab.engines.serving.launcher` too.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

TOKEN_ENV = "INFRALAB_SERVER_TOKEN"  # a random mark that proves a process is this kit's server
RUNTIME_ENV = "INFRALAB_RUNTIME_DIR"  # moves the registry of running servers


def runtime_dir() -> Path:
    """Where the kit keeps run-time state (its registry of servers); ``INFRALAB_RUNTIME_DIR``
    moves it. Defaults to ``$XDG_RUNTIME_DIR/infralab`` (cleared at logout or reboot), else a
    per-user folder in the temporary directory."""
    env = os.environ.get(RUNTIME_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / "infralab"
    try:
        user = str(os.getuid())
    except AttributeError:  # Windows
        user = os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"infralab-{user}"


def _registry() -> Path:
    return runtime_dir() / "servers"


def _create_time(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def _register(pid: int, token: str, app: str, port: int, log_path: Path) -> Path | None:
    """Record a launched server, so a later sweep can recognise it once its parent is gone."""
    record = {
        "pid": pid,
        "create_time": _create_time(pid),
        "token": token,
        "parent_pid": os.getpid(),
        "parent_create_time": _create_time(os.getpid()),
        "app": app,
        "port": port,
        "log": str(log_path),
        "started": time.time(),
    }
    try:
        folder = _registry()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{pid}.json"
        fd, tmp = tempfile.mkstemp(prefix=f".{pid}.", suffix=".part", dir=folder)
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh)
        os.replace(tmp, path)
        return path
    except OSError:
        return None  # no registry (read-only disk): the watchdog still works


def _same_start(recorded: object, actual: float | None) -> bool:
    return (
        isinstance(recorded, (int, float)) and actual is not None and abs(recorded - actual) < 0.05
    )


def _kit_server(record: dict[str, Any]) -> Any:
    """The psutil.Process of the recorded server if it is provably still that server, else None.

    Provably: the pid runs a process started when the record says (so the pid was not reused)
    whose environment carries the record's random token.
    """
    import psutil

    try:
        proc = psutil.Process(int(record["pid"]))
        if not _same_start(record.get("create_time"), proc.create_time()):
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        token = proc.environ().get(TOKEN_ENV)
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None  # gone, or not ours to read (another user): never touched
    if not isinstance(record.get("token"), str) or token != record["token"]:
        return None
    return proc


def _parent_alive(record: dict[str, Any]) -> bool:
    import psutil

    try:
        parent = psutil.Process(int(record["parent_pid"]))
        return _same_start(record.get("parent_create_time"), parent.create_time()) and (
            parent.status() != psutil.STATUS_ZOMBIE
        )
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def _forget(path: Path, record: dict[str, Any]) -> None:
    path.unlink(missing_ok=True)
    log = Path(str(record.get("log", "")))
    # only a log file this launcher made: infralab-server-*.log in the temporary directory
    if log.name.startswith("infralab-server-") and log.parent == Path(tempfile.gettempdir()):
        log.unlink(missing_ok=True)


def _wait_gone(proc: Any, timeout_s: float) -> bool:
    """Wait until ``proc`` (not necessarily our child) has exited; a zombie counts as gone."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False
        time.sleep(0.05)
    return False


def sweep_orphans(timeout_s: float = 5.0) -> list[dict[str, Any]]:
    """Stop the kit's servers whose launching process is gone; forget records of dead ones.

    A process is stopped only when the registry recorded it, it still has the recorded start
    time and token, and its launcher no longer runs: an unrelated process, or a server whose
    kernel is alive, is never touched. Returns one row per orphan stopped
    (``pid``, ``app``, ``port``, ``parent_pid``).
    """
    import psutil

    folder = _registry()
    stopped: list[dict[str, Any]] = []
    try:
        entries = sorted(folder.glob("*.json"))
    except OSError:
        return stopped
    for path in entries:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            record = None
        if not isinstance(record, dict):  # unreadable or not a record
            path.unlink(missing_ok=True)  # written atomically, so only a foreign file is unreadable
            continue
        proc = _kit_server(record)
        if proc is None:
            _forget(path, record)  # the server is gone (or the pid is someone else's now)
            continue
        if _parent_alive(record):
            continue  # a live kernel's server: its own business
        try:
            group = os.getpgid(proc.pid) if os.name != "nt" else None
            if group == proc.pid:  # launched as its own session: the group is its workers too
                os.killpg(group, signal.SIGTERM)
            else:
                proc.terminate()
            if not _wait_gone(proc, timeout_s):
                proc.kill()
                _wait_gone(proc, timeout_s)
        except (psutil.Error, OSError):
            pass
        _forget(path, record)
        stopped.append({k: record.get(k) for k in ("pid", "app", "port", "parent_pid")})
    return stopped
