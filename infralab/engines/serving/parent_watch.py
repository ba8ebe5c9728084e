"""In a launched server: shut down when the process that launched it dies, however it died.

A kernel that dies without running ``atexit`` (SIGKILL from the OOM killer, SIGTERM or SIGHUP
from a restart or Binder's culler) must not leave a server holding its port and memory. The
launcher passes the server the read end of a pipe whose only write end it keeps; at
end-of-file (the kernel closes every descriptor of a dead process) the server shuts down.
On Linux the server also asks for a parent-death signal (``prctl(PR_SET_PDEATHSIG)``); on
Windows, where no descriptor can be passed, it waits on the parent's process handle (via
psutil). :func:`~infralab.engines.serving.launcher.app_from_env` calls :func:`_watch_parent` first;
the names here are importable from :mod:`infralab.engines.serving.launcher` too.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

PARENT_ENV = "INFRALAB_LAUNCH_PARENT"  # JSON: the launching process and how to watch it
_EXIT_GRACE_S = 5.0  # after its parent died, a server that has not shut down by then is ended


def _watch_parent() -> None:
    """Shut this server down when the process that launched it dies, however it died."""
    raw = os.environ.pop(PARENT_ENV, None)  # popped: the server's own children do not inherit it
    if not raw:
        return
    try:
        info = json.loads(raw)
        parent = int(info["pid"])
    except (ValueError, KeyError, TypeError):
        return
    if info.get("pdeathsig"):
        _set_parent_death_signal(signal.SIGTERM)
    # The parent may have died before the signal was armed: then this process was already
    # handed to another parent (init or a subreaper), and it stops now.
    if os.name != "nt" and os.getppid() != parent:
        _parent_gone()
        return
    fd = info.get("fd")
    if isinstance(fd, int) and os.name != "nt" and _is_open(fd):
        target, args = _wait_for_eof, (fd,)
    else:
        target, args = _wait_for_process, (parent, info.get("create_time"))
    threading.Thread(target=target, args=args, name="infralab-parent-watch", daemon=True).start()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _set_parent_death_signal(sig: int) -> bool:
    """Linux: have the kernel send ``sig`` when the launching thread exits (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(1, int(sig), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _wait_for_eof(fd: int) -> None:
    try:
        while os.read(fd, 4096):  # the parent never writes: data would only be noise
            pass
    except OSError:
        return  # the descriptor itself went bad: that says nothing about the parent
    _parent_gone()


def _wait_for_process(pid: int, create_time: float | None) -> None:
    try:
        import psutil
    except ImportError:
        return
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) >= 0.05:
            raise psutil.NoSuchProcess(pid)  # the pid was reused: the parent is gone
        proc.wait()  # Windows: waits on the process handle
    except psutil.NoSuchProcess:
        pass
    except psutil.Error:
        return  # cannot watch it (access denied): leave the server to atexit and the sweep
    _parent_gone()


def _parent_gone() -> None:
    """Ask uvicorn for its graceful shutdown, and end the process if that does not finish."""
    timer = threading.Timer(_EXIT_GRACE_S, os._exit, args=(1,))
    timer.daemon = True  # a clean shutdown before the deadline exits at once
    timer.start()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
    except OSError:
        os._exit(1)
