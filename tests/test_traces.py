"""Traces and the keep-alive simulation: seeded, shaped as named, cold starts counted right."""

from __future__ import annotations

import numpy as np
import pytest

from infralab.economics.traces import KINDS, make_trace, provisioned_cost, simulate_keep_alive


@pytest.mark.parametrize("kind", KINDS)
def test_traces_are_seeded_sorted_and_average_the_asked_rate(kind):
    a = make_trace(kind, mean_rps=0.2, seed=7)
    b = make_trace(kind, mean_rps=0.2, seed=7)
    assert np.array_equal(a, b) and np.all(np.diff(a) >= 0)
    assert a.min() >= 0 and a.max() < 86_400
    assert len(a) == pytest.approx(0.2 * 86_400, rel=0.15)
    assert not np.array_equal(a, make_trace(kind, mean_rps=0.2, seed=8))


def test_diurnal_peaks_in_the_afternoon_and_bursty_is_burstier():
    d = make_trace("diurnal", mean_rps=1, seed=0)
    hours = np.bincount((d // 3600).astype(int), minlength=24)
    assert hours[13:17].mean() > 2 * hours[1:5].mean()
    per_min = lambda ts: np.bincount((ts // 60).astype(int), minlength=1440)  # noqa: E731
    steady, bursty = (
        make_trace("steady", mean_rps=1, seed=0),
        make_trace("bursty", mean_rps=1, seed=0),
    )
    assert per_min(bursty).std() > 3 * per_min(steady).std()


def test_bad_trace_arguments():
    with pytest.raises(ValueError, match="kind"):
        make_trace("spiky", mean_rps=1)
    with pytest.raises(ValueError, match="mean_rps"):
        make_trace("steady", mean_rps=0)
    with pytest.raises(ValueError, match="limit"):
        make_trace("steady", mean_rps=1000)


def test_keep_alive_by_hand():
    ts = np.array([0.0, 10.0, 100.0, 100.01])
    r = simulate_keep_alive(ts, keep_alive_s=60, duration_s=0.05, cold_start_s=1.0)
    # 0: cold; 10: warm; 100: the instance idled 90 s > 60 s, reclaimed -> cold;
    # 100.01: the first is still busy (cold start + 50 ms) -> a second instance, cold.
    assert r["cold_starts"] == 3 and r["peak_instances"] == 2 and r["requests"] == 4
    assert simulate_keep_alive(ts, keep_alive_s=120, cold_start_s=1.0)["cold_starts"] == 2


def test_concurrency_lets_one_instance_take_overlapping_requests():
    ts = np.array([0.0, 0.01, 0.02, 0.03])
    assert simulate_keep_alive(ts, 60, duration_s=1.0, concurrency=1)["cold_starts"] == 4
    assert simulate_keep_alive(ts, 60, duration_s=1.0, concurrency=4)["cold_starts"] == 1


def test_longer_keep_alive_and_warm_instances_mean_fewer_cold_starts():
    ts = make_trace("bursty", mean_rps=0.05, seed=2)
    colds = [simulate_keep_alive(ts, k)["cold_starts"] for k in (10, 60, 600, 3600)]
    assert colds == sorted(colds, reverse=True) and colds[0] > colds[-1]
    assert simulate_keep_alive(ts, 10, min_warm=2)["cold_starts"] < colds[0]
    assert simulate_keep_alive(ts, 10, min_warm=50)["cold_starts"] == 0


def test_simulation_rejects_unsorted_or_bad_input():
    with pytest.raises(ValueError, match="sorted"):
        simulate_keep_alive(np.array([2.0, 1.0]), 60)
    with pytest.raises(ValueError, match="keep_alive_s"):
        simulate_keep_alive(np.array([1.0]), -5)
    with pytest.raises(ValueError, match="concurrency"):
        simulate_keep_alive(np.array([1.0]), 5, concurrency=0)
    assert simulate_keep_alive(np.array([]), 60)["cold_starts"] == 0


def test_provisioned_cost_by_hand():
    out = provisioned_cost(2, 1.0, hours=730)
    assert out["gb_seconds"] == pytest.approx(2 * 730 * 3600)
    assert out["total_usd"] == pytest.approx(2 * 730 * 3600 * 0.00001667)
    assert provisioned_cost(2, 1.0, price_per_gb_s=1e-6)["total_usd"] == pytest.approx(
        2 * 730 * 3600 * 1e-6
    )
    with pytest.raises(ValueError, match="instances"):
        provisioned_cost(-1, 1.0)
