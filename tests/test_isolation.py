"""Pinning a process to cores (the isolation limit): every thread moves, and comes back."""

import os
import subprocess
import sys

import pytest

from infralab.engines.serving.pinning import pin, threads_of, unpin

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux sched_setaffinity and two usable cores",
)


def test_pin_moves_every_thread_of_a_child_and_unpin_restores():
    code = "import threading, time\n[threading.Thread(target=time.sleep, args=(30,), daemon=True).start() for _ in range(3)]\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        import time

        time.sleep(1.0)  # let the threads start
        tids = threads_of(proc.pid)
        assert len(tids) >= 4
        before = {t: os.sched_getaffinity(t) for t in tids}
        core = min(os.sched_getaffinity(0))
        old = pin(proc.pid, {core})
        assert all(os.sched_getaffinity(t) == {core} for t in tids)
        unpin(old)
        assert {t: os.sched_getaffinity(t) for t in tids} == before
    finally:
        proc.kill()
        proc.wait()
