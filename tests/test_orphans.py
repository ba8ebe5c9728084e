"""A launched server dies with its parent, whatever killed it; the sweep stops only the kit's orphans.

Each parent is a small Python script in its own process that calls ``launch()`` and then
waits; the test kills it and polls (with a generous deadline, never a timing assertion)
until the server is gone and its port is free.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from infralab.engines.serving import launcher
from infralab.engines.serving.server_process import port_is_free

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals (Windows: see launcher)")

DEADLINE_S = 30.0
PARENT = """
import os, signal, sys, time
# a runner under nohup passes SIGHUP on as ignored; a kernel or a shell has the default
signal.signal(signal.SIGHUP, signal.SIG_DFL)
from infralab.engines.serving.launcher import launch
server = launch({app!r}, factory_kwargs={kwargs!r}, die_with_parent={die!r}, ready_timeout_s=120)
print(server.pid, server.port, flush=True)
if {exit_at_once!r}:
    os._exit(0)  # no atexit, as a killed kernel
time.sleep(600)
"""


@pytest.fixture(autouse=True)
def private_registry(tmp_path, monkeypatch):
    """Each test gets its own registry, so it never sees (or sweeps) other tests' servers."""
    monkeypatch.setenv(launcher.RUNTIME_ENV, str(tmp_path / "run"))
    return tmp_path / "run" / "servers"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until(predicate, deadline_s: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _start_parent(
    app: str = launcher.EMBEDDINGS_APP,
    kwargs: dict | None = None,
    *,
    die: bool = True,
    exit_at_once: bool = False,
) -> tuple[subprocess.Popen, int, int]:
    script = PARENT.format(
        app=app, kwargs=kwargs or {"embedder": "hash"}, die=die, exit_at_once=exit_at_once
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = parent.stdout.readline()
    if not line:
        parent.kill()
        pytest.fail(f"the parent script did not launch a server:\n{parent.stderr.read()[-3000:]}")
    pid, port = (int(x) for x in line.split())
    return parent, pid, port


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_server_dies_with_its_parent(sig, private_registry):
    parent, pid, port = _start_parent()
    try:
        assert not _gone(pid) and not port_is_free(port)
        record = json.loads((private_registry / f"{pid}.json").read_text())
        assert record["parent_pid"] == parent.pid and record["port"] == port
        parent.send_signal(sig)
        parent.wait(timeout=DEADLINE_S)
        assert parent.returncode == -sig  # it really died by the signal, without cleaning up
        assert _wait_until(lambda: _gone(pid) and port_is_free(port)), (
            f"server {pid} outlived its parent killed by {sig.name}"
        )
    finally:
        parent.kill()
        parent.wait()
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    # its record stays behind (the parent could not remove it); the next sweep forgets it
    assert launcher.sweep_orphans() == []
    assert not list(private_registry.glob("*.json"))


def test_pipe_watch_alone_stops_the_server():
    """A launch from a thread gets no parent-death signal (it would fire when that thread
    ends), as on macOS: the pipe alone must stop the server."""
    script = (
        "import threading, time\n"
        "from infralab.engines.serving.launcher import launch\n"
        "box = []\n"
        "t = threading.Thread(target=lambda: box.append(launch(factory_kwargs={'embedder': "
        "'hash'})))\n"
        "t.start(); t.join()\n"  # the forking thread is gone: the pipe must do the work
        "print(box[0].pid, box[0].port, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = parent.stdout.readline()
        assert line, parent.stderr.read()[-3000:]
        pid, port = (int(x) for x in line.split())
        # launched from a thread that has ended: the server must still be running
        time.sleep(1.0)
        assert not _gone(pid)
        assert launcher.TOKEN_ENV in psutil.Process(pid).environ()  # the kit's mark
        parent.kill()
        parent.wait()
        assert _wait_until(lambda: _gone(pid) and port_is_free(port))
    finally:
        parent.kill()
        parent.wait()


@pytest.mark.slow
def test_the_chat_server_dies_with_its_parent(tmp_path_factory, monkeypatch):
    """The heavy one (about 500 MB): a real q4 decoder built into a temporary cache."""
    cache = _tmp_model_cache(tmp_path_factory)
    monkeypatch.setenv("INFRALAB_CACHE", str(cache["cache"]))
    monkeypatch.setenv("INFRALAB_ASSETS_DIR", str(cache["assets"]))
    from infralab.engines.models import decoder

    decoder.build("q4", quiet=True)
    parent, pid, port = _start_parent(
        "infralab.engines.serving.chat:create_chat_app", {"variant": "q4", "threads": 1}
    )
    try:
        assert psutil.Process(pid).memory_info().rss > 100 * 2**20
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=DEADLINE_S)
        assert _wait_until(lambda: _gone(pid) and port_is_free(port))
    finally:
        parent.kill()
        parent.wait()
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def _tmp_model_cache(tmp_path_factory) -> dict[str, Path]:
    from infralab.core import assets

    st = assets.status("smollm2")
    if not st["verified"]:
        pytest.skip("the pinned smollm2 file is not fetched (run `python -m infralab fetch`)")
    root = tmp_path_factory.mktemp("chat-cache")
    links = root / "assets"
    links.mkdir()
    for f in assets.SMOLLM2.files:
        (links / f.name).symlink_to(Path(st["folder"]) / f.name)
    return {"cache": root / "cache", "assets": links}


def test_sweep_stops_an_orphan_and_leaves_everything_else_alone(private_registry, tmp_path):
    # 1. a server of a live parent (this test process)
    live = launcher.launch(factory_kwargs={"embedder": "hash"}, die_with_parent=False)

    # 2. an orphan: launched without the watch, its parent gone without running atexit
    parent, orphan, orphan_port = _start_parent(die=False, exit_at_once=True)
    parent.wait(timeout=DEADLINE_S)
    assert not _gone(orphan) and not port_is_free(orphan_port)  # really left behind

    # 3. unrelated processes: one with a forged record (dead parent, no token), one without
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    forged = {
        "pid": bystander.pid,
        "create_time": psutil.Process(bystander.pid).create_time(),
        "token": "0" * 32,
        "parent_pid": parent.pid,  # dead
        "parent_create_time": 0.0,
        "app": "not the kit",
        "port": 1,
        "log": str(tmp_path / "keep.log"),
    }
    (tmp_path / "keep.log").write_text("not the launcher's")
    (private_registry / f"{bystander.pid}.json").write_text(json.dumps(forged))
    (private_registry / "garbage.json").write_text("{")
    try:
        swept = launcher.sweep_orphans()
        assert [row["pid"] for row in swept] == [orphan]
        assert swept[0]["port"] == orphan_port and swept[0]["parent_pid"] == parent.pid
        assert _wait_until(lambda: _gone(orphan) and port_is_free(orphan_port))
        assert bystander.poll() is None and stranger.poll() is None  # untouched
        assert (tmp_path / "keep.log").exists()  # a file the launcher did not make stays
        assert live.running and not port_is_free(live.port)
        left = {p.name for p in private_registry.glob("*.json")}
        assert left == {f"{live.pid}.json"}  # dead and forged records forgotten
        assert launcher.sweep_orphans() == []  # idempotent
    finally:
        live.stop()
        for p in (bystander, stranger):
            p.kill()
            p.wait()
        if not _gone(orphan):
            os.kill(orphan, signal.SIGKILL)
    assert not list(private_registry.glob("*.json"))


def test_launch_sweeps_before_starting(private_registry):
    parent, orphan, port = _start_parent(die=False, exit_at_once=True)
    parent.wait(timeout=DEADLINE_S)
    assert not _gone(orphan)
    try:
        with launcher.launch(factory_kwargs={"embedder": "hash"}):
            assert _wait_until(lambda: _gone(orphan) and port_is_free(port))
    finally:
        if not _gone(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_the_doctor_sweeps_and_reports(private_registry):
    from infralab.tooling import doctor

    parent, orphan, port = _start_parent(die=False, exit_at_once=True)
    parent.wait(timeout=DEADLINE_S)
    try:
        report = doctor.doctor(probe_providers=False)
        assert [row["pid"] for row in report["orphans_stopped"]] == [orphan]
        assert _wait_until(lambda: _gone(orphan) and port_is_free(port))
        assert str(orphan) in dict(doctor.doctor_rows(report))["orphan servers"]
    finally:
        if not _gone(orphan):
            os.kill(orphan, signal.SIGKILL)


WATCHER = (
    "import time\n"
    "from infralab.engines.serving import launcher\n"
    "launcher._watch_parent()\n"
    "print('watching', flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_server_whose_parent_died_before_the_watch_began_stops():
    """The race the parent-death signal leaves open: the parent died before prctl ran."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    env = dict(os.environ)
    env[launcher.PARENT_ENV] = json.dumps({"pid": dead.pid, "pdeathsig": True})
    child = subprocess.Popen([sys.executable, "-c", WATCHER], env=env)
    try:
        child.wait(timeout=DEADLINE_S)
        assert child.returncode == -signal.SIGTERM
    finally:
        child.kill()
        child.wait()


def test_the_process_wait_used_on_windows_also_stops_the_server():
    """No descriptor to watch (Windows): the server waits on its parent process instead."""
    middle = (
        "import json, os, subprocess, sys, time\n"
        "import psutil\n"
        "from infralab.engines.serving import launcher\n"
        "me = {'pid': os.getpid(), 'create_time': psutil.Process().create_time()}\n"
        "env = dict(os.environ, **{launcher.PARENT_ENV: json.dumps(me)})\n"
        f"child = subprocess.Popen([sys.executable, '-c', {WATCHER!r}], env=env,\n"
        "                         stdout=subprocess.PIPE, text=True)\n"
        "assert child.stdout.readline().startswith('watching')\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", middle], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = parent.stdout.readline()
    assert line, parent.stderr.read()[-3000:]
    pid = int(line)
    try:
        time.sleep(1.0)
        assert not _gone(pid)  # watching, not fooled into stopping early
        parent.kill()
        parent.wait()
        assert _wait_until(lambda: _gone(pid))
    finally:
        parent.kill()
        parent.wait()
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
