"""Load generator: bounded, loopback only, honest about errors."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from infralab.engines.serving.launcher import launch
from infralab.engines.serving.loadgen import (
    check_loopback,
    closed_loop,
    concurrency_sweep,
    open_loop,
    poisson_arrivals,
)
from infralab.engines.serving.server_process import free_port
from infralab.presentation.charts.serving import latency_timeline

PAYLOADS = [{"input": f"text number {i}"} for i in range(8)]


@pytest.fixture(scope="module")
def server():
    with launch(factory_kwargs={"embedder": "hash", "max_wait_ms": 1}) as s:
        yield s


@pytest.mark.parametrize(
    "url", ["http://example.com/v1", "http://10.0.0.5:8000/x", "http://192.168.1.1/"]
)
def test_non_loopback_targets_are_refused(url):
    with pytest.raises(ValueError, match="only targets this machine"):
        closed_loop(url, PAYLOADS, 1, total_requests=1, max_seconds=1)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/x", "http://localhost:8000/", "http://[::1]:80/"]
)
def test_loopback_targets_pass(url):
    assert check_loopback(url) == url


def test_closed_loop_sends_exactly_the_requests_asked_for(server):
    res = closed_loop(server.url + "/v1/embeddings", PAYLOADS, 4, total_requests=40, max_seconds=30)
    df = res.df
    assert isinstance(df, pd.DataFrame) and len(df) == 40
    assert list(df["i"]) == list(range(40)) and df["ok"].all()
    assert set(df["client"]) <= set(range(4))
    s = res.summary
    assert s["requests"] == 40 and s["errors"] == 0 and s["errors_by_kind"] == {}
    assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["throughput_rps"] > 0
    chart = latency_timeline(res.df, title="requests over time")
    assert chart.to_dict()["encoding"]["y"]["title"] == "latency (ms)"


def test_httpx_client_gives_the_same_counts(server):
    res = closed_loop(
        server.url + "/v1/embeddings",
        PAYLOADS,
        2,
        total_requests=10,
        max_seconds=30,
        client="httpx",
    )
    assert res.summary["ok"] == 10


def test_http_errors_are_counted_by_kind(server):
    res = closed_loop(
        server.url + "/v1/embeddings", [{"input": []}], 2, total_requests=6, max_seconds=30
    )
    assert res.summary["errors_by_kind"] == {"http_400": 6}


def test_connection_refused_is_an_error_kind_not_a_crash():
    res = closed_loop(
        f"http://127.0.0.1:{free_port()}/x", PAYLOADS, 2, total_requests=4, max_seconds=10
    )
    assert res.summary["errors_by_kind"] == {"connect": 4}


def test_time_bound_stops_early(server):
    res = closed_loop(
        server.url + "/v1/embeddings", PAYLOADS, 2, total_requests=100_000, max_seconds=0.3
    )
    df = res.df
    assert 0 < res.summary["requests"] == len(df) < 100_000 and df["ok"].all()
    # Behaviour, not speed: once the bound has passed, a client starts no new request, so at
    # most one request per client (the one that passed the check just before) starts late.
    late = (df["start_s"] >= 0.3).groupby(df["client"]).sum()
    assert (late <= 1).all(), df[df["start_s"] >= 0.3]
    assert res.summary["wall_s"] >= df["start_s"].max()


def test_open_loop_follows_its_seeded_schedule(server):
    res = open_loop(server.url + "/v1/embeddings", PAYLOADS, 40, duration_s=0.5, seed=3)
    assert res.summary["requests"] == len(poisson_arrivals(40, 0.5, 3))
    assert res.summary["errors"] == 0 and res.summary["offered_rps"] == 40


def test_poisson_arrivals_are_seeded_and_bounded():
    a, b = poisson_arrivals(100, 2, seed=1), poisson_arrivals(100, 2, seed=1)
    assert (a == b).all() and (a < 2).all() and 120 < len(a) < 280
    with pytest.raises(ValueError, match="limit"):
        poisson_arrivals(10_000, 600, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 5000}, "concurrency"),
        ({"total_requests": 10**7}, "total_requests"),
        ({"max_seconds": 10_000}, "max_seconds"),
    ],
)
def test_bounds_are_enforced(kwargs, match):
    args = {"concurrency": 1, "total_requests": 1, "max_seconds": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        closed_loop("http://127.0.0.1:9/x", PAYLOADS, args.pop("concurrency"), **args)


def test_payloads_must_be_json_bodies():
    with pytest.raises(ValueError, match="payloads"):
        closed_loop("http://127.0.0.1:9/x", [], 1, total_requests=1, max_seconds=1)
    with pytest.raises(ValueError, match="JSON"):
        closed_loop("http://127.0.0.1:9/x", [{"x": object()}], 1, total_requests=1, max_seconds=1)


def test_runs_from_inside_a_running_event_loop_like_jupyter(server):
    async def inside():
        return closed_loop(
            server.url + "/v1/embeddings", PAYLOADS, 2, total_requests=6, max_seconds=10
        )

    assert asyncio.run(inside()).summary["ok"] == 6


def test_sweep_has_one_row_per_level(server):
    df = concurrency_sweep(
        server.url + "/v1/embeddings",
        PAYLOADS,
        [1, 4],
        requests_per_level=12,
        max_seconds_per_level=10,
        progress=False,
    )
    assert list(df["concurrency"]) == [1, 4] and (df["ok"] == 12).all()


@pytest.mark.slow
def test_a_quiet_spell_longer_than_the_server_keep_alive_is_not_an_error(server):
    """uvicorn closes idle connections after 5 s; a slow open loop must not count that as errors."""
    # seed 26: requests at 1.4 s, then 7.4 s and 7.7 s (a 6 s gap)
    res = open_loop(server.url + "/v1/embeddings", PAYLOADS, 0.3, duration_s=10, seed=26)
    assert res.summary["requests"] >= 2 and res.summary["errors"] == 0, res.summary
