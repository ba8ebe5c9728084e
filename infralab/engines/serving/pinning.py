"""Pinning a process to cores: the limit the performance-isolation run tries.

``sched_setaffinity`` acts on one thread, so :func:`pin` sets every thread of a process and
its children and :func:`unpin` restores the old masks. The run itself (a RAG cloud app and
the model server sharing two cores) is :func:`infralab.engines.rag.isolation.isolation_run`: it uses
the RAG app, so it lives in ``rag``, the layer above ``serving``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def threads_of(pid: int) -> list[int]:
    """Thread ids of ``pid`` and of its child processes (Linux /proc)."""
    import psutil

    procs = [psutil.Process(pid)]
    procs += procs[0].children(recursive=True)
    tids: list[int] = []
    for p in procs:
        task = Path(f"/proc/{p.pid}/task")
        tids += [int(t.name) for t in task.iterdir()] if task.is_dir() else [p.pid]
    return tids


def pin(pid: int, cpus: Iterable[int]) -> dict[int, set[int]]:
    """Pin every thread of ``pid`` (and children) to ``cpus``; returns the old masks, for
    :func:`unpin`. ``sched_setaffinity`` acts on one thread, and thread pools that already
    exist (ONNX Runtime's) keep their mask, so each thread is set."""
    if not hasattr(os, "sched_setaffinity"):
        raise OSError("os.sched_setaffinity is Linux-only; isolation by pinning needs it.")
    cpus = set(cpus)
    old: dict[int, set[int]] = {}
    for tid in threads_of(pid):
        try:
            old[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, PermissionError):  # a thread that just ended
            continue
    return old


def unpin(old: dict[int, set[int]]) -> None:
    for tid, cpus in old.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except (ProcessLookupError, PermissionError):
            continue
