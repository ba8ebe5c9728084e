"""A local Ray cluster for the lesson: start it, measure it, stop it, prove it stopped.

GPUs are declared, not detected: ``num_gpus=N`` tells Ray this node has N GPUs, and Ray
schedules fractional GPU demands onto them exactly as it would on real ones (it packs
each fraction onto one device and sets ``CUDA_VISIBLE_DEVICES`` for the task). On a CPU
machine nothing uses a real device, but the placement, the queueing and the accounting are
Ray's own. The same code runs on a multi-node cluster started with ``ray start``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "FleetError",
    "SYSTEM_CONFIG",
    "expected_footprint",
    "footprint",
    "ray_available",
    "return_freed_memory",
    "start",
    "stop",
]


# Names of the processes a local Ray cluster starts (the raylet, the GCS, workers, agents).
RAY_PROCESS_MARKERS = (
    "raylet",
    "gcs_server",
    "ray::",
    "default_worker.py",
    "dashboard/agent.py",
    "runtime_env/agent",
    "log_monitor.py",
    "ray/autoscaler",
    "monitor.py",
    "ray/dashboard",
    "serve/_private",
)
# Measured on the kit's 2-core machine (Ray 2.60, psutil RSS summed over every Ray process,
# 2026-12-06, the settings of ``start``): 450-460 MB for the bare cluster (GCS, raylet, the
# API server, the dashboard and runtime-env agents: 5 processes, no idle workers), about
# 1,000 MB while the packing experiment holds five workers, and about 690 MB more for Ray
# Serve's controller, HTTP proxy and one replica with the int8 encoder (190 + 190 + 310).
# Ray's defaults (``ray.init``: autoscaler monitor, log monitor, two prestarted workers)
# cost about 400 MB more, which is why ``start`` does not use them. RSS counts shared pages
# more than once, so the true footprint is lower; the doctor uses these as conservative
# figures. Re-measure with ``footprint()`` on a running cluster.
EXPECTED_RAY_RSS_MB = 1_000  # the bare cluster plus the packing experiment's five workers
EXPECTED_SERVE_EXTRA_MB = 700  # controller + HTTP proxy + one replica with the int8 encoder
EXPECTED_BARE_MB = 460  # what Serve adds to: the packing workers have exited by then
BINDER_LIMIT_MB = 2_048


class FleetError(RuntimeError, InfralabError):
    """Ray is missing or a cluster could not start; the message says what to do."""


def ray_available() -> bool:
    """True when Ray can be imported (the ``fleet`` extra is installed)."""
    return importlib.util.find_spec("ray") is not None


def require_ray() -> Any:
    if not ray_available():
        raise FleetError(
            "Ray is not installed. Install the fleet extra: pip install -e '.[fleet]' "
            "(or 'ray[serve]>=2.40,<3')."
        )
    import ray

    return ray


@dataclass(frozen=True)
class Footprint:
    """What Ray is expected to cost in memory here, and whether the machine can afford it."""

    expected_mb: int
    with_serve_mb: int
    machine_total_mb: int
    machine_available_mb: int
    fits: bool
    fits_with_serve: bool
    message: str


def cgroup_limit_mb() -> int | None:
    """The container's memory limit (cgroup v2 or v1) in MB; None when there is none.

    Binder and Docker cap memory through the cgroup, which ``psutil.virtual_memory`` does
    not see: it reports the host's memory.
    """
    from pathlib import Path

    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 reports "no limit" as a huge number
            return int(text) // 2**20
    return None


def expected_footprint(limit_mb: int | None = None) -> Footprint:
    """Ray's expected memory footprint against this machine (or a limit, e.g. Binder's 2 GB).

    For the doctor (``infralab.tooling.doctor``): call before the lesson so a student on a small
    machine hears it before Ray starts, not after the kernel dies. Binder sets a memory
    limit through the cgroup, which ``psutil.virtual_memory`` does not see: the cgroup
    limit is read here too, and ``limit_mb`` overrides both (to ask "would this fit in 2 GB?").
    """
    import psutil

    vm = psutil.virtual_memory()
    total = int(vm.total / 2**20)
    avail = int(vm.available / 2**20)
    cap = limit_mb if limit_mb else cgroup_limit_mb()
    budget = min(avail, cap) if cap else avail
    core = EXPECTED_RAY_RSS_MB
    serve = max(core, EXPECTED_BARE_MB + EXPECTED_SERVE_EXTRA_MB)  # peaks, not a sum
    fits, fits_serve = budget >= core + 500, budget >= serve + 500  # + the notebook kernel
    if fits_serve:
        msg = f"Ray fits: about {serve} MB with Serve, {budget} MB available."
    elif fits:
        msg = (
            f"Ray fits ({core} MB) but Ray Serve may not ({serve} MB, {budget} MB available): "
            "lesson 08 skips its Serve demo here."
        )
    else:
        msg = (
            f"Ray needs about {core} MB and this machine has {budget} MB to give: lesson 08's "
            "fleet sections will not run here. They fit in Binder's 2 GB with the kernel: close "
            "other notebooks and kernels, or use a local install or Colab."
        )
    return Footprint(core, serve, total, avail, fits, fits_serve, msg)


def ray_processes() -> list[dict[str, Any]]:
    """Every running process that belongs to a Ray cluster (pid, name, RSS in MB)."""
    import psutil

    me = os.getpid()
    found = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            if p.info["pid"] == me:
                continue
            cmd = " ".join(p.info["cmdline"] or []) or (p.info["name"] or "")
            name = p.info["name"] or ""
            if any(m in cmd or m in name for m in RAY_PROCESS_MARKERS) and "ray" in cmd + name:
                found.append(
                    {"pid": p.info["pid"], "name": name, "rss_mb": p.memory_info().rss / 2**20}
                )
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def own_session_processes() -> list[Any]:
    """Processes of Ray sessions this Python process started (and nothing else).

    A local Ray session's directory is named ``session_<date>_<time>_<micros>_<driver pid>``
    and every process of the session carries it in its command line, so this finds exactly
    what this driver started, even after a failed start left orphans behind.
    """
    import re

    import psutil

    mine = re.compile(rf"/session_[0-9_-]+_{os.getpid()}(?:/|\s|$)")
    found: dict[int, Any] = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.info["pid"] != os.getpid() and mine.search(" ".join(p.info["cmdline"] or [])):
                found[p.pid] = p
                # Workers rename themselves ("ray::IDLE") and lose the session in their
                # command line; they are the raylet's children.
                for child in p.children(recursive=True):
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(found.values())


_SESSION_DRIVER = r"/session_[0-9_-]+_(\d+)(?:/|\s|$)"


def orphan_session_processes() -> list[Any]:
    """Processes of local Ray sessions whose driver (the kernel that started them) is gone.

    Ray's GCS, raylet and agents do not die with the driver: a kernel killed by a restart,
    the OOM killer or a culler leaves them holding memory. The session directory in their
    command line names the driver's pid, so orphans are recognised without guessing.
    """
    import re

    import psutil

    driver = re.compile(_SESSION_DRIVER)
    found: dict[int, Any] = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            m = driver.search(cmd)
            if not m or "ray" not in cmd or psutil.pid_exists(int(m.group(1))):
                continue
            found[p.pid] = p
            for child in p.children(recursive=True):
                found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(found.values())


def sweep_orphan_sessions(timeout_s: float = 5.0) -> int:
    """Stop the processes of Ray sessions whose driver has died; returns how many."""
    procs = orphan_session_processes()
    _terminate(procs, timeout_s)
    return len(procs)


def _terminate(procs: list[Any], timeout_s: float) -> None:
    """SIGTERM, a grace period, then SIGKILL for what is left."""
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()


def _reap_own_sessions(timeout_s: float = 5.0) -> None:
    """Terminate (then kill) what is left of this driver's Ray sessions, by pid."""
    _terminate(own_session_processes(), timeout_s)


def return_freed_memory() -> float:
    """Hand memory this process has freed back to the system; returns the MB it gave back.

    Deleting a model (``del encoder``) frees its weights inside the process, but the C
    allocator (glibc's malloc) keeps freed blocks for reuse, so the kernel's resident memory
    barely drops, and Ray's processes are counted on top of it. ``malloc_trim`` returns
    what is free to the system. Elsewhere (macOS, Windows, musl) this only collects garbage.
    """
    import ctypes
    import gc
    import sys

    import psutil

    me = psutil.Process()
    before = me.memory_info().rss
    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    return max(0.0, (before - me.memory_info().rss) / 2**20)


def footprint() -> dict[str, float]:
    """Measured now: RSS of every Ray process plus this one, in MB (RSS over-counts shared)."""
    import psutil

    procs = ray_processes()
    ray_mb = sum(p["rss_mb"] for p in procs)
    me = psutil.Process().memory_info().rss / 2**20
    return {"ray_processes": len(procs), "ray_rss_mb": ray_mb, "driver_rss_mb": me}


# Ray's own settings for a small, short-lived cluster (its ``_system_config``): start a
# worker process only when a task needs one (by default two idle ones are started at once,
# about 100 MB each), and keep none idle beyond a second (by default as many as CPUs).
SYSTEM_CONFIG = {
    "enable_worker_prestart": False,
    "prestart_worker_first_driver": False,
    "num_workers_soft_limit": 0,
}

_cluster: Any = None  # the running ray.cluster_utils.Cluster this driver started


def start(
    gpus: int = 4,
    *,
    cpus: int = 2,
    object_store_mb: int = 80,
    tries: int = 2,
    extra_resources: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Start a local Ray cluster with ``gpus`` logical GPUs; returns its resources.

    The head node is started through ``ray.cluster_utils.Cluster`` (Ray's own way to run a
    cluster's nodes on one machine) rather than ``ray.init()``, because only there can the
    two helper processes a one-machine course does not use be left out: the autoscaler's
    monitor (no nodes to add) and the log monitor (logs stay in Ray's folder, none go to the
    notebook). With no idle workers kept (:data:`SYSTEM_CONFIG`) and no dashboard, that
    saves about 400 MB, which is what lets lesson 08 fit in 1.5 GB. The driver then joins
    with ``ray.init(address=...)``. Ray's node start-up waits about 30 s for its agents; on
    an overloaded machine that can time out, so the start is retried once after a clean stop.
    """
    global _cluster
    # Ray reports usage statistics to its makers unless told not to: no traffic leaves here.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require_ray()
    if ray.is_initialized() or _cluster is not None:
        stop()
    sweep_orphan_sessions()  # what a killed kernel's earlier cluster left behind
    from ray.cluster_utils import Cluster

    head = {
        "num_cpus": cpus,
        "num_gpus": gpus,
        "resources": extra_resources or {},
        "include_dashboard": False,
        "node_ip_address": "127.0.0.1",  # nothing listens beyond this machine
        "object_store_memory": object_store_mb * 2**20,
        "no_monitor": True,
        "include_log_monitor": False,
        "_system_config": dict(SYSTEM_CONFIG),
    }
    last: Exception | None = None
    for _ in range(max(1, tries)):
        try:
            _cluster = Cluster(initialize_head=True, connect=False, head_node_args=head)
            ray.init(
                address=_cluster.address,
                log_to_driver=False,
                configure_logging=True,
                logging_level="ERROR",
            )
            return ray.cluster_resources()
        except Exception as exc:  # Ray raises a bare Exception on a start-up timeout
            last = exc
            stop(timeout_s=5.0)  # a failed start leaves its GCS and agents running
            time.sleep(1.0)
    raise FleetError(f"Ray did not start ({last}). Close other notebooks and run the cell again.")


def stop(timeout_s: float = 20.0) -> int:
    """Shut down Serve (if running) and Ray; wait until this driver's Ray processes are gone.

    Returns how many of them remain (0 when clean). Ray's shutdown signals its processes
    and returns; they take a moment to exit, hence the wait; stragglers of this driver's
    own sessions are then terminated by pid (never by name: other Ray users are left alone).
    """
    global _cluster
    if not ray_available():
        return 0
    import ray

    if ray.is_initialized():
        # Serve's shutdown kills its controller while a call to it is still in flight, and
        # Ray's driver prints that as "(raylet) Task ServeController.graceful_shutdown
        # failed ... retries remaining" under the cell, which students read as an error.
        # Ray prints such messages on stdout from a listener thread that ray.shutdown()
        # stops, so stdout is held for the teardown only; the return value says what is left.
        with contextlib.redirect_stdout(io.StringIO()):
            with contextlib.suppress(Exception):
                from ray import serve

                serve.shutdown()
            ray.shutdown()
    if _cluster is not None:  # the node's processes: GCS, raylet, agents, workers
        with contextlib.suppress(Exception):
            _cluster.shutdown()
        _cluster = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not own_session_processes():
            return 0
        time.sleep(0.25)
    _reap_own_sessions()
    return len(own_session_processes())


@contextlib.contextmanager
def local_cluster(gpus: int = 4, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """``with local_cluster(4) as resources:`` ... Ray is stopped however the block ends."""
    resources = start(gpus, **kwargs)
    try:
        yield resources
    finally:
        stop()
