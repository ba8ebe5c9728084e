"""A kernel for one submission, walled off: its own scratch folder, limits, nothing left behind.

Why bubblewrap: a notebook is code from a student. Run as a plain process, it could read the
solutions and other students' files, rewrite the kit that grades the next student, and leave a
double-forked process running. Under ``bwrap`` the kernel sees the machine read-only, the
repository as students receive it (no ``labs/solutions``, ``docs/answers``, check references,
tests or git history), an empty ``/tmp``, and one writable scratch folder; it lives in its own
PID namespace, so when the sandbox's first process is killed every descendant dies with it,
re-parented or not. Time and memory are watched over the whole process tree.

Without bubblewrap (macOS, a machine without user namespaces) the grader refuses unless told
``--unsafe-no-sandbox``: then it still uses a scratch folder, the tree limits and a child
subreaper to kill survivors, but the notebook can read and write what the grader's user can.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError

BWRAP = "bwrap"
# What a student's kernel may see of the repository, read-only; everything else is hidden.
VISIBLE = ("infralab", "course", "labs", "datasets", "pyproject.toml", "README.md")
# Instructor-only parts inside the visible ones: covered by an empty folder.
HIDDEN_INSIDE = ("labs/solutions", "infralab/tooling/checks/references")


class SandboxError(InfralabError, RuntimeError):
    """The sandbox cannot be built here."""

    hint = (
        "Install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), or grade with "
        "--unsafe-no-sandbox on a machine where the students' code is trusted."
    )


def bubblewrap_works() -> bool:
    """Whether ``bwrap`` exists and can build a PID namespace here (containers may refuse)."""
    exe = shutil.which(BWRAP)
    if exe is None:
        return False
    import subprocess

    try:
        done = subprocess.run(
            [exe, "--ro-bind", "/", "/", "--unshare-pid", "--die-with-parent", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@dataclass
class Limits:
    seconds: float
    memory_mb: float


@dataclass
class Watch:
    """What the watchdog saw: why it stopped the kernel ("" while nothing went wrong)."""

    reason: str = ""
    peak_mb: float = 0.0


def tree(pid: int) -> list[Any]:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def tree_rss_mb(pid: int) -> float:
    import psutil

    total = 0
    for p in tree(pid):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total / 2**20


def kill_tree(pid: int) -> None:
    import psutil

    procs = tree(pid)
    for p in reversed(procs):
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=5)


def become_subreaper() -> bool:
    """Orphans of our descendants re-parent to this process, so they can be found and killed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def bwrap_command(
    argv: list[str], *, root: Path, scratch: Path, hide: list[Path], env_paths: list[Path]
) -> list[str]:
    """``bwrap`` around ``argv``: the machine read-only, the student's view of ``root``."""
    cmd = [shutil.which(BWRAP) or BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    cmd += ["--tmpfs", "/tmp", "--tmpfs", str(root)]
    for name in VISIBLE:
        if (root / name).exists():
            cmd += ["--ro-bind", str(root / name), str(root / name)]
    for name in HIDDEN_INSIDE:
        if (root / name).is_dir():
            cmd += ["--tmpfs", str(root / name)]
    for path in env_paths:  # the interpreter's environment, wherever it lives
        if path.exists() and not _inside(root, path):  # never re-expose the whole repository
            cmd += ["--ro-bind", str(path), str(path)]
    for path in hide:  # other submissions, the gradebook
        if path.is_dir() and not _inside(scratch, path):
            cmd += ["--tmpfs", str(path)]
    cmd += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch / "work")]
    cmd += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
    cmd += ["--new-session", "--cap-drop", "ALL", "--"]
    # A shell stays between the namespace's init and the kernel: ipykernel shuts down when
    # its parent is pid 1, which inside a new PID namespace the init would be.
    return [*cmd, "/bin/sh", "-c", '"$@"; exit $?', "sandbox", *argv]


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def _env_paths(root: Path) -> list[Path]:
    """Folders the kernel's Python needs that the repository view could hide."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry:
            paths.add(Path(entry).resolve())
    venv = root / ".venv"
    if venv.is_dir():
        paths.add(venv)
    return sorted(paths)


@contextlib.contextmanager
def sandboxed_kernel(
    *,
    root: Path,
    scratch: Path,
    limits: Limits,
    hide: list[Path],
    use_bwrap: bool,
    env: dict[str, str],
) -> Iterator[tuple[Any, Any, Watch]]:
    """Start a kernel in ``scratch``; yield (kernel manager, blocking client, watch).

    On exit the kernel and every process under it are killed, whatever they did."""
    from jupyter_client import BlockingKernelClient

    km = _kernel_manager(root=root, scratch=scratch, hide=hide, use_bwrap=use_bwrap)
    watch = Watch()
    started = time.monotonic()
    reaper = become_subreaper() if not use_bwrap else False
    before = _child_pids()
    km.start_kernel(env=env, cwd=str(scratch / "work"))
    pid = km.provisioner.pid if km.provisioner else None
    client: BlockingKernelClient = km.blocking_client()
    client.start_channels()
    stop = threading.Event()
    thread = threading.Thread(
        target=_watchdog,
        args=(pid, started, limits, watch, stop),
        daemon=True,
        name="grade-watchdog",
    )
    thread.start()
    try:
        client.wait_for_ready(timeout=min(120.0, limits.seconds))
        yield km, client, watch
    finally:
        stop.set()
        thread.join(timeout=5)
        _kill_kernel_and_orphans(km, client, pid, reaper, before)


def _kernel_manager(*, root: Path, scratch: Path, hide: list[Path], use_bwrap: bool) -> Any:
    """A kernel manager whose kernel starts in ``scratch/work``, inside bwrap when asked."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpec

    (scratch / "work").mkdir(parents=True, exist_ok=True)
    (scratch / "home").mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    if use_bwrap:
        argv = bwrap_command(
            argv, root=root, scratch=scratch, hide=hide, env_paths=_env_paths(root)
        )
    # IPC sockets in the scratch folder: no TCP port, no "unencrypted TCP" warning.
    km = KernelManager(
        connection_file=str(scratch / "connection.json"), transport="ipc", ip=str(scratch / "k")
    )
    km._kernel_spec = KernelSpec(argv=argv, display_name="grader", language="python")
    return km


def _watchdog(
    pid: int | None, started: float, limits: Limits, watch: Watch, stop: threading.Event
) -> None:
    """Every 0.25 s until ``stop``: kill the kernel's tree past its time or memory limit."""
    while not stop.wait(0.25):
        if pid is None:
            return
        rss = tree_rss_mb(pid)
        watch.peak_mb = max(watch.peak_mb, rss)
        if time.monotonic() - started > limits.seconds:
            watch.reason = "time limit"
        elif rss > limits.memory_mb:
            watch.reason = "memory limit"
        else:
            continue
        kill_tree(pid)
        return


def _kill_kernel_and_orphans(
    km: Any, client: Any, pid: int | None, reaper: bool, before: set[int]
) -> None:
    """Stop the channels, kill the kernel's tree, shut it down and kill re-parented orphans."""
    with contextlib.suppress(Exception):
        client.stop_channels()
    if pid is not None:
        kill_tree(pid)
    with contextlib.suppress(Exception):
        km.shutdown_kernel(now=True)
    if reaper:  # orphans that re-parented to us while the kernel ran
        for child in _child_pids() - before:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
    with contextlib.suppress(Exception):
        km.cleanup_resources()


def _child_pids() -> set[int]:
    import psutil

    try:
        return {p.pid for p in psutil.Process().children(recursive=True)}
    except psutil.Error:
        return set()
