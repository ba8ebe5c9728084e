"""Launcher: a real uvicorn child process, a cold-start breakdown, and nothing left behind."""

from __future__ import annotations

import httpx
import psutil
import pytest

from infralab.engines.serving.launcher import LaunchError, launch
from infralab.engines.serving.server_process import port_is_free, stop_all


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_launch_serves_reports_a_cold_start_and_leaves_no_process_or_port():
    with launch(factory_kwargs={"embedder": "hash", "max_wait_ms": 1}) as server:
        pid, port = server.pid, server.port
        children = [c.pid for c in psutil.Process(pid).children(recursive=True)]
        r = httpx.post(server.url + "/v1/embeddings", json={"input": "hello"})
        assert r.status_code == 200
        cold = server.cold_start
        for key in (
            "spawn_s",
            "imports_s",
            "model_load_s",
            "ready_s",
            "first_response_s",
            "warm_response_s",
        ):
            assert cold[key] is not None and cold[key] >= 0, key
        assert cold["spawn_s"] + cold["imports_s"] <= cold["ready_s"] + 0.05
        assert server.rss_mb() > 10
        assert not port_is_free(port)
    assert _gone(pid) and all(_gone(c) for c in children)
    assert port_is_free(port)
    server.stop()  # idempotent
    assert not server.running


def test_factory_kwargs_reach_the_factory():
    with launch(factory_kwargs={"embedder": "hash", "batching": False}) as server:
        assert httpx.get(server.url + "/healthz").json()["mode"] == "naive"
        assert server.metrics()["mode"] == "naive"


def test_a_failing_factory_raises_with_the_reason_and_cleans_up():
    with pytest.raises(LaunchError, match="embedder must be"):
        launch(factory_kwargs={"embedder": "no-such-embedder"}, ready_timeout_s=30)
    assert stop_all() == 0


def test_bad_app_strings_and_arguments_are_refused_before_starting():
    with pytest.raises(ValueError, match="module:factory|package.module:factory"):
        launch("no_colon_here")
    with pytest.raises(ValueError, match="no module"):
        launch("infralab.not_written_yet:create_app")
    with pytest.raises(TypeError, match="JSON"):
        launch(factory_kwargs={"embedder": object()})
    with pytest.raises(ValueError, match="loopback"):
        launch(host="0.0.0.0")


def test_busy_port_is_reported():
    with launch(factory_kwargs={"embedder": "hash"}) as server:
        with pytest.raises(LaunchError, match="already in use"):
            launch(port=server.port)


def test_a_python_that_exits_without_stopping_leaves_nothing_behind(tmp_path):
    """atexit stops servers a notebook kernel or script forgot to stop."""
    import subprocess
    import sys
    import time

    script = (
        "from infralab.engines.serving.launcher import launch\n"
        "s = launch(factory_kwargs={'embedder': 'hash'})\n"
        "print(s.pid, s.port, flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    pid, port = (int(x) for x in out.stdout.split())
    deadline = time.monotonic() + 10
    while not (_gone(pid) and port_is_free(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid) and port_is_free(port)


def test_serve_cli_refuses_bad_arguments_with_a_message(capsys):
    from infralab.engines.serving.cli import main

    assert main(["embeddings", "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["embeddings", "--kwargs", "[1]"]) == 2
    assert "JSON object" in capsys.readouterr().err
    assert main(["embeddings", "--kwargs", '{"embedder": "nope"}']) == 2
    assert "could not build" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["no-such-service"])


def test_server_cpu_reading_resolves_less_than_one_clock_tick():
    """A load that costs the server under 10 ms must not read as zero (/proc ticks in 10 ms)."""
    import subprocess
    import sys

    from infralab.tooling.bench.serve import _cpu_seconds

    burn = (
        "import sys, time\n"
        "while time.process_time() < 0.004: pass\n"
        "print(time.process_time(), flush=True)\n"
        "sys.stdin.readline()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        own = float(child.stdout.readline())
        read = _cpu_seconds(child.pid)
        assert read is not None and read >= own >= 0.004
    finally:
        child.communicate("\n", timeout=30)
    assert _cpu_seconds(child.pid) is None  # an ended process has no figure


@pytest.mark.slow
def test_bench_serve_runs_both_modes_and_makes_a_result_record():
    from infralab.tooling.bench import serve

    bench = serve.run_benchmark(concurrency=4, requests=40, max_seconds=10, embedder="hash")
    assert bench["naive"]["loaded"]["requests"] == 40 and bench["batching"]["loaded"]["errors"] == 0
    assert bench["throughput_ratio"] > 0 and bench["model_only"] is None
    for mode in ("naive", "batching"):  # the server's own CPU clock, read before/after
        server = bench[mode]["server"]
        assert server["cpu_s_under_load"] > 0 and server["cpu_ms_per_request"] > 0
    assert bench["batching_fraction_of_ceiling"] is None  # no model ceiling for the hash embedder
    assert bench["targets"]["fraction_of_ceiling_met"] is None
    record = serve.result_record(bench)
    for key in (
        "throughput_rps",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "cold_start_s",
        "rss_mb",
        "mean_duration_s",
    ):
        assert isinstance(record[key], float) and record[key] > 0, key
