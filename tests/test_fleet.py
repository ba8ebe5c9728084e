"""Lesson 08's fleet: packing rules in plain Python, then the same packing measured on Ray.

The Ray tests share one local cluster per module (start-up takes seconds); its teardown
asserts that no Ray process outlives it. They assert order and concurrency, never timing.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infralab.engines.fleet import cluster, packing

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAS_RAY, reason="Ray is not installed (optional extra: pip install -e '.[fleet]')"
)

shares = st.sampled_from([0.25, 0.5, 0.75, 1.0, 0.3, 0.6])


# ------------------------------------------------------------------ plain Python
def test_first_fit_examples():
    assert packing.first_fit([0.5, 0.5, 0.5, 1.0, 0.25], 2) == [0, 0, 1, None, 1]
    assert packing.first_fit([0.6, 0.6, 0.6], 2) == [0, 1, None]
    assert packing.first_fit([2, 0.5], 2) == [0, None]
    frag = packing.fragmentation([0.6, 0.6, 0.6], 2)
    assert frag["free_total"] == pytest.approx(0.8)  # room in total ...
    assert frag["largest_free_share"] == pytest.approx(0.4)  # ... but not on any one GPU


@given(st.lists(shares, max_size=12), st.integers(1, 4))
@settings(max_examples=60, deadline=None)
def test_first_fit_never_overfills_and_queues_only_what_cannot_fit(demands, n):
    placed = packing.first_fit(demands, n)
    load = np.zeros(n)
    for d, g in zip(demands, placed, strict=True):
        if g is not None:
            load[g] += d
    assert (load <= 1 + 1e-9).all()
    for d, g in zip(demands, placed, strict=True):
        if g is None:  # queued: no GPU had room at the end either (first fit only fills)
            assert (1 - load < d - 1e-9).all()


def test_bad_demands_are_refused():
    with pytest.raises(packing.PackingError, match="fraction"):
        packing.first_fit([1.5], 2)
    with pytest.raises(packing.PackingError, match="n_gpus"):
        packing.first_fit([0.5], 0)


def test_footprint_message_names_the_limit():
    # Binder's 2 GB holds the lesson's Ray and Ray Serve, with the kernel beside them.
    binder = cluster.expected_footprint(limit_mb=2048)
    assert binder.fits and binder.fits_with_serve and "with Serve" in binder.message
    short = cluster.expected_footprint(limit_mb=cluster.EXPECTED_RAY_RSS_MB + 550)
    assert short.fits and not short.fits_with_serve and "Serve may not" in short.message
    tiny = cluster.expected_footprint(limit_mb=1000)
    assert not tiny.fits and "Binder" in tiny.message
    big = cluster.expected_footprint(limit_mb=64_000)
    assert big.expected_mb == cluster.EXPECTED_RAY_RSS_MB


# ------------------------------------------------------------------ on Ray
@pytest.fixture(scope="module")
def ray_cluster():
    if not HAS_RAY:
        pytest.skip("Ray is not installed (optional extra: pip install -e '.[fleet]')")
    resources = cluster.start(gpus=2)
    yield resources
    left = cluster.stop()
    assert left == 0, f"{left} Ray process(es) of this run outlived ray.shutdown()"
    # No raylet, GCS, agent or worker of any Ray cluster is left on the machine (psutil).
    assert cluster.ray_processes() == []


@pytest.mark.slow  # starts a Ray cluster
@needs_ray
def test_cluster_declares_logical_gpus(ray_cluster):
    assert ray_cluster["GPU"] == 2.0
    assert cluster.footprint()["ray_processes"] >= 2  # a raylet and a GCS at least


@pytest.mark.slow  # starts a Ray cluster
@needs_ray
def test_ray_keeps_every_connection_on_loopback(ray_cluster):
    """The course cluster is one machine: no Ray process talks over the network interface."""
    import ipaddress

    import psutil

    procs = cluster.own_session_processes()
    assert procs, "no process of this driver's Ray session was found"
    seen = 0
    for proc in [psutil.Process(), *procs]:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for conn in conns:
            for addr in (conn.laddr, conn.raddr):
                if not addr:
                    continue
                ip = ipaddress.ip_address(addr.ip)
                ip = getattr(ip, "ipv4_mapped", None) or ip
                if conn.status == psutil.CONN_LISTEN and ip.is_unspecified:
                    continue  # a listener on every interface, reached here only via loopback
                seen += 1
                assert ip.is_loopback, f"{proc.name()} uses {addr.ip}:{addr.port} ({conn.status})"
    assert seen > 0


@pytest.mark.slow  # starts a Ray cluster
@needs_ray
@pytest.mark.parametrize(
    "demands",
    [[0.5, 0.5, 0.5, 1.0, 0.25], [0.6, 0.6, 0.6], [1.0, 0.25, 0.25, 0.5, 0.5, 0.5]],
)
def test_ray_runs_what_first_fit_predicts(ray_cluster, demands):
    from infralab.engines.fleet import scheduler

    predicted = packing.first_fit(demands, 2)
    fits = [i for i, g in enumerate(predicted) if g is not None]
    queued = [i for i, g in enumerate(predicted) if g is None]
    got = scheduler.packing_experiment(demands, [g is not None for g in predicted])
    assert got["running_together"] == fits
    free = 2 - sum(demands[i] for i in fits)
    assert got["free_gpu_while_held"] == pytest.approx(free)
    assert sorted(got["start_order"]) == list(range(len(demands)))
    assert set(got["start_order"][len(fits) :]) == set(queued)  # the queued ran after


@pytest.mark.slow  # starts a Ray cluster
@needs_ray
def test_dispatcher_orders_by_priority_and_never_oversubscribes(ray_cluster):
    from infralab.engines.fleet import scheduler

    jobs = [
        scheduler.Job("train", "training", 1.0, 1.0, 0.0),
        scheduler.Job("tune", "fine-tune", 1.0, 1.0, 0.0),
        scheduler.Job("serve", "inference", 1.0, 1.0, 0.0),
        scheduler.Job("small-a", "inference", 0.5, 0.5, 0.0),
        scheduler.Job("small-b", "inference", 0.5, 0.5, 0.0),
    ]
    df = scheduler.run_day(jobs, n_gpus=2, seconds_per_hour=0.4)
    assert sorted(df["job"]) == sorted(j.name for j in jobs)
    # The dispatch order is decided by priority and capacity alone: whenever a whole GPU
    # frees up, the fine-tune (priority 1) gets it before the training run (priority 0).
    order = list(df.sort_values("dispatch_order")["job"])
    assert order[:3] == ["serve", "small-a", "small-b"]
    assert order[3:] == ["tune", "train"]
    assert (df["start_h"] >= df["dispatched_h"] - 1e-6).all()
    # Measured run intervals lie inside Ray's resource holds, so they can never overlap
    # beyond the fleet's 2 GPUs if the packing is real.
    util = scheduler.utilization(df, 2, step_h=0.01)
    assert util["busy_gpus"].max() <= 2 + 1e-9
    s = scheduler.summary(df, 2)
    assert 0 < s["utilization"] <= 1
    with pytest.raises(ValueError, match="fleet can hold"):
        scheduler.run_day([scheduler.Job("big", "training", 3.0, 1.0)], n_gpus=2)


@pytest.mark.slow  # starts a Ray cluster
@needs_ray
def test_embeddings_app_on_ray_serve(ray_cluster):
    import httpx

    from infralab.engines.fleet import ray_serve
    from infralab.engines.serving.app import HashEmbedder
    from infralab.engines.serving.launcher import free_port

    url = ray_serve.deploy_embeddings(free_port(), embedder="hash", max_replicas=1)
    try:
        assert url.startswith("http://127.0.0.1:")
        r = httpx.post(f"{url}/v1/embeddings", json={"input": ["hello fleet"]}, timeout=60)
        assert r.status_code == 200
        vec = np.array(r.json()["data"][0]["embedding"], dtype=np.float32)
        assert np.allclose(vec, HashEmbedder().embed(["hello fleet"])[0], atol=1e-6)
        bad = httpx.post(f"{url}/v1/embeddings", json={"nope": 1}, timeout=60)
        assert bad.status_code == 422 or 400 <= bad.status_code < 500
        assert ray_serve.running_replicas() == 1
    finally:
        from ray import serve

        serve.shutdown()


def test_bench_fleet_keep_alive_comparison_scales_the_wait():
    from infralab.tooling.bench import fleet as bench_fleet

    out = bench_fleet.keep_alive_comparison({"fast": 1.0, "slow": 8.0, "never": None})
    assert set(out) == {"fast", "slow"}
    assert out["fast"]["cold_starts"] >= 1
    # Same traffic and keep-alive: a slower start means at least as many cold starts and
    # proportionally more waiting.
    assert out["slow"]["cold_starts"] >= out["fast"]["cold_starts"]
    assert (
        out["slow"]["seconds_users_waited_for_starts"]
        > out["fast"]["seconds_users_waited_for_starts"]
    )


def test_sweep_stops_a_dead_drivers_ray_session_and_nothing_else():
    """A killed kernel's Ray processes are found by the driver pid in their session path."""
    import subprocess
    import sys

    import psutil

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # this pid is now free: a driver that died
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    sleep = "import time; time.sleep(60)"

    def fake(driver_pid: int) -> subprocess.Popen:
        path = f"/tmp/ray/session_2026-01-01_00-00-00_000000_{driver_pid}/logs"
        return subprocess.Popen([sys.executable, "-c", sleep, path])

    orphan, kept = fake(gone.pid), fake(alive.pid)
    try:
        assert orphan.pid in {p.pid for p in cluster.orphan_session_processes()}
        assert cluster.sweep_orphan_sessions() >= 1
        assert orphan.wait(timeout=30) is not None
        assert kept.poll() is None and alive.poll() is None  # a live driver's session stays
    finally:
        for proc in (orphan, kept, alive):
            if psutil.pid_exists(proc.pid):
                proc.kill()
                proc.wait()
