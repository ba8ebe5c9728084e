"""Training lesson: the routing set, the numpy head, checkpoints that resume exactly, the bill."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infralab.economics.costs import training_bill as bill
from infralab.engines.training import baselines, data, head

# Resumed and uninterrupted runs take the same batches in the same order with the same
# arithmetic, so they should agree to the last bit; the stated tolerance allows for a
# BLAS that reorders sums between calls, and nothing more.
RESUME_TOLERANCE = 1e-9


def blobs(n: int = 240, dim: int = 16, k: int = 3, seed: int = 0):
    """Separable synthetic features: a head that learns beats the majority class."""
    centers = np.random.default_rng(99).normal(0, 1, size=(k, dim))  # same classes per seed
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    X = centers[y] + rng.normal(0, 0.6, size=(n, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, y


def test_routing_set_is_stratified_seeded_and_disjoint():
    rs = data.routing_set(seed=3)
    again = data.routing_set(seed=3)
    other = data.routing_set(seed=4)
    assert set(rs.train["qid"]).isdisjoint(rs.val["qid"])
    assert len(rs.train) + len(rs.val) == 318
    assert rs.artifacts() == again.artifacts()  # same seed, same bytes, same hashes
    assert rs.artifacts()["val_split"] != other.artifacts()["val_split"]
    share = rs.val["label"].value_counts(normalize=True)
    full = pd.concat([rs.train, rs.val])["label"].value_counts(normalize=True)
    assert (share - full).abs().max() < 0.03  # every tenant in its share
    assert rs.source == "datasets/corpus/questions.csv"


def test_routing_set_rejects_bad_input(tmp_path):
    with pytest.raises(data.DataError, match="missing"):
        data.routing_set(tmp_path / "nope.csv")
    bad = tmp_path / "q.csv"
    bad.write_text("qid,question\n1,hi\n")
    with pytest.raises(data.DataError, match="tenant"):
        data.routing_set(bad)
    with pytest.raises(data.DataError, match="val_fraction"):
        data.routing_set(val_fraction=0.9)


def test_hashes_name_content():
    a = np.arange(6, dtype=np.float32)
    assert data.sha256_array(a) == data.sha256_array(a.copy())
    assert data.sha256_array(a) != data.sha256_array(a.reshape(2, 3))
    assert data.sha256_array(a) != data.sha256_array(a.astype(np.float64))


def test_head_learns_and_beats_majority():
    X, y = blobs()
    Xv, yv = blobs(seed=1)
    state = head.train(X, y, 3, head.HeadConfig(epochs=15), X_val=Xv, y_val=yv)
    acc = state.history[-1]["val_accuracy"]
    assert acc > baselines.majority_class(y, yv) + 0.2
    assert state.history[-1]["train_loss"] < state.history[0]["train_loss"]
    assert state.examples_seen == 15 * len(X)


def test_gradient_matches_finite_differences():
    """The hand-written backward pass is the derivative of the loss it reports."""
    X, y = blobs(n=20, dim=5)
    state = head.HeadState.init(5, 3, seed=0)
    state.W = np.random.default_rng(1).normal(size=(5, 3))
    p = head.softmax(X @ state.W + state.b)
    p[np.arange(len(y)), y] -= 1.0
    grad = X.T @ (p / len(y))
    eps = 1e-6
    for i, j in [(0, 0), (2, 1), (4, 2)]:
        state.W[i, j] += eps
        up = head.loss_and_accuracy(state, X, y)[0]
        state.W[i, j] -= 2 * eps
        down = head.loss_and_accuracy(state, X, y)[0]
        state.W[i, j] += eps
        assert (up - down) / (2 * eps) == pytest.approx(grad[i, j], rel=1e-5, abs=1e-8)


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path):
    X, y = blobs()
    cfg = head.HeadConfig(epochs=8, batch_size=16, seed=7)
    full = head.train(X, y, 3, cfg)
    head.train(X, y, 3, cfg, stop_after_epoch=3, checkpoint_dir=tmp_path)  # "interrupted"
    state, cfg2 = head.load_checkpoint(tmp_path / "epoch_003.npz")
    assert state.epoch == 3 and cfg2 == cfg
    resumed = head.train(X, y, 3, cfg2, state=state)
    assert resumed.epoch == full.epoch == 8
    assert head.max_abs_difference(resumed, full) <= RESUME_TOLERANCE
    assert resumed.step == full.step
    assert [h["train_loss"] for h in resumed.history] == pytest.approx(
        [h["train_loss"] for h in full.history], abs=RESUME_TOLERANCE
    )
    # A run resumed from the wrong epoch does not match: the test can fail.
    early, _ = head.load_checkpoint(tmp_path / "epoch_001.npz")
    early.epoch = 3
    wrong = head.train(X, y, 3, cfg, state=early)
    assert head.max_abs_difference(wrong, full) > 1e-3


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(head.TrainingError, match="No checkpoint"):
        head.load_checkpoint(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    np.savez(junk, x=np.zeros(2))
    with pytest.raises(head.TrainingError, match="not a head checkpoint"):
        head.load_checkpoint(junk)
    X, y = blobs()
    state = head.HeadState.init(8, 3, seed=0)
    with pytest.raises(head.TrainingError, match="same features"):
        head.train(X, y, 3, state=state)
    with pytest.raises(head.TrainingError, match="labels"):
        head.train(X, y + 5, 3)


def test_flop_counts():
    f = head.flops_per_example(384, 3)
    assert f["forward"] == 2 * 384 * 3 + 3 + 15
    assert f["backward"] == 2 * 384 * 3 + 6
    # The encoder's forward on a 10-token text dwarfs the head: that is why it is frozen.
    enc = head.encoder_forward_flops([10])
    assert enc == 6 * 10 * (8 * 384**2 + 4 * 384 * 1536 + 4 * 10 * 384)
    assert enc > 1000 * f["total"]


def test_baselines():
    X, y = blobs()
    assert baselines.majority_class(np.array([0, 0, 1]), np.array([0, 1])) == 0.5
    assert baselines.nearest_centroid(X, y, X, y) > 0.9


def test_six_n_d_and_run_cost():
    assert bill.training_flops(7e9, 1e12) == 6 * 7e9 * 1e12
    run = bill.TrainingRun("7B", 7e9, 2e12, gpus=64, peak_tflops=989.0, mfu=0.4)
    assert run.gpu_hours == pytest.approx(6 * 7e9 * 2e12 / (989e12 * 0.4) / 3600)
    assert run.cost(2.0) == pytest.approx(2 * run.gpu_hours)
    with pytest.raises(bill.BillError, match="fraction"):
        bill.TrainingRun("x", 1e9, 1e9, mfu=40)
    with pytest.raises(bill.BillError, match="params"):
        bill.training_flops(-1, 5)


def test_prices_come_with_sources():
    df = bill.gpu_prices()
    assert (df["source"].str.len() > 0).all() and (df["as_of"].str.len() >= 7).all()
    trio = bill.price_trio("coreweave", "HGX H100 8-GPU")
    assert set(trio["pricing"]) == {"on_demand", "spot"}
    assert trio.set_index("pricing").loc["spot", "usd_per_gpu_hour"] == pytest.approx(19.71 / 8)
    assert bill.peak_tflops("H100 SXM") == 989.0
    with pytest.raises(bill.BillError, match="No price"):
        bill.price_trio("nobody", "x")


@pytest.mark.parametrize("interval", [0.5, 2.0, 7.0])
def test_spot_simulation_matches_the_formula(interval):
    args = (40.0, interval, 0.1, 0.05, 0.2)  # work, interval, checkpoint, rate, restart
    sim = bill.simulate_spot(*args, runs=2000, seed=1)
    mean, sem = sim["wall_hours"].mean(), sim["wall_hours"].std() / math.sqrt(len(sim))
    assert abs(mean - bill.expected_spot_hours(*args)) < 4 * sem + 1e-9
    assert bill.simulate_spot(*args, runs=5, seed=2).equals(
        bill.simulate_spot(*args, runs=5, seed=2)
    )


def test_spot_without_interruptions_is_work_plus_checkpoints():
    assert bill.expected_spot_hours(10, 2, 0.1, 0.0, 1.0) == pytest.approx(10 + 5 * 0.1)
    assert bill.expected_spot_hours(10, 3, 0.1, 0.0, 1.0) == pytest.approx(10 + 3 * 0.1)


def test_spot_sweep_has_an_interior_optimum_near_young():
    sweep = bill.spot_sweep(
        100, np.geomspace(0.1, 50, 12), 0.05, 0.1, 0.25,
        spot_usd_per_h=2.46, on_demand_usd_per_h=6.16, runs=300,
    )  # fmt: skip
    best = sweep.loc[sweep["spot_hours_formula"].idxmin(), "interval_h"]
    young = bill.young_interval(0.05, 0.1)
    assert young / 3 < best < young * 3
    assert sweep["spot_usd"].iloc[0] > sweep["spot_usd"].min()  # too-frequent checkpoints cost
    assert sweep["spot_usd"].iloc[-1] > sweep["spot_usd"].min()  # too-rare ones lose work


def test_reserved_trap():
    assert bill.break_even_utilization(13.921, 21.958) == pytest.approx(13.921 / 21.958)
    t = bill.reserved_trap(13.921, 21.958, [0.3, 0.634, 1.0])
    r = t["reserved_usd_per_useful_h"].to_numpy()
    assert r[0] > 21.958 > r[2] and r[1] == pytest.approx(21.958, rel=0.01)
    with pytest.raises(bill.BillError, match="utilization"):
        bill.reserved_trap(1, 2, [0])
