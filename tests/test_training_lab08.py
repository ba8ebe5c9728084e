"""Lab 08's checks accept a correct student function and refuse the kit's own, a constant and
plausible mistakes; the kit's checkpoint interval and waste simulator agree with the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infralab.economics.costs import training_bill as bill
from infralab.engines.fleet import packing
from infralab.tooling.checks import CheckFailed, lab08


def _valid(c, m):
    for v in (c, m):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{v!r} is not a positive, finite number of hours")


def student_young(c, m):
    _valid(c, m)
    return math.sqrt(2 * c * m)


def student_daly(c, m):
    _valid(c, m)
    if c >= 2 * m:
        return m
    return math.sqrt(2 * c * m) * (1 + math.sqrt(c / (2 * m)) / 3 + c / (18 * m)) - c


def student_simulate(work_h, interval_h, checkpoint_h, mtbf_h, restart_h, trials, seed):
    rng = np.random.default_rng(seed)
    full, rest = divmod(work_h, interval_h)
    segments = [interval_h + checkpoint_h] * int(full) + ([rest] if rest > 0 else [])
    total = 0.0
    for _ in range(trials):
        wall = 0.0
        for seg in segments:
            while (t := rng.exponential(mtbf_h)) < seg:
                wall += t + restart_h
            wall += seg
        total += wall - work_h
    return total / trials


def student_first_fit(demands, n_gpus):
    free, out = [1.0] * n_gpus, []
    for d in demands:
        spot = None
        if d <= 1:
            spot = next((g for g in range(n_gpus) if free[g] + 1e-9 >= d), None)
            if spot is not None:
                free[spot] -= d
        else:
            whole = [g for g in range(n_gpus) if free[g] >= 1 - 1e-9]
            if len(whole) >= d:
                for g in whole[: int(d)]:
                    free[g] = 0.0
                spot = whole[0]
        out.append(spot)
    return out


# ------------------------------------------------------------------ the kit
def test_young_and_daly():
    assert bill.checkpoint_interval(5 / 60, 10) == pytest.approx(math.sqrt(2 * 5 / 60 * 10))
    assert bill.checkpoint_interval(0.05, 10) == pytest.approx(bill.young_interval(0.05, 0.1))
    daly = bill.checkpoint_interval(5 / 60, 10, order="daly")
    assert daly < bill.checkpoint_interval(5 / 60, 10)  # the "- C" term wins for small C / M
    assert bill.checkpoint_interval(3.0, 1.0, order="daly") == 1.0  # C >= 2M: the MTBF itself


@pytest.mark.parametrize("args", [(0, 10), (-1, 10), (0.1, 0), (0.1, -2), (math.nan, 1), ("x", 1)])
def test_bad_interval_inputs_raise_a_clear_error(args):
    with pytest.raises(bill.BillError, match="checkpoint_h|mtbf_h") as err:
        bill.checkpoint_interval(*args)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("interval", [0.5, 1.3, 4.0])
def test_bulk_simulator_matches_the_formula_and_the_loop(interval):
    args = (20.0, interval, 0.1, 5.0, 0.25)
    waste = bill.simulate_waste(*args, trials=20_000, seed=3)
    want = bill.expected_spot_hours(20.0, interval, 0.1, 1 / 5.0, 0.25) - 20.0
    sem = waste.std(ddof=1) / math.sqrt(waste.size)
    assert abs(waste.mean() - want) < 5 * sem
    loop = bill.simulate_spot(20.0, interval, 0.1, 1 / 5.0, 0.25, runs=2000, seed=4)
    loop_sem = loop["wall_hours"].std(ddof=1) / math.sqrt(len(loop))
    assert abs(loop["wall_hours"].mean() - 20.0 - want) < 5 * loop_sem
    assert np.array_equal(waste, bill.simulate_waste(*args, trials=20_000, seed=3))


def test_without_interruptions_the_waste_is_the_writes():
    waste = bill.simulate_waste(10.0, 3.0, 0.1, 1e15, 0.5, trials=50, seed=0)
    assert waste == pytest.approx(np.full(50, 0.3))


def test_waste_curve_bottoms_out_near_young():
    curve = bill.waste_curve(40.0, np.geomspace(0.1, 20, 40), 0.05, 10.0, 0.2, trials=3000)
    best = curve.loc[curve["waste_h"].idxmin(), "interval_h"]
    young = bill.checkpoint_interval(0.05, 10.0)
    assert young / 1.5 < best < young * 1.5
    assert {"waste_sem_h", "waste_formula_h"} <= set(curve)


# ------------------------------------------------------------------ the checks
@pytest.mark.parametrize("fn", [student_young, student_daly])
def test_young_or_daly_pass(fn):
    assert "Young/Daly" in lab08.check_checkpoint_interval(fn)
    assert "grid" in lab08.check_interval_waste(fn)


@pytest.mark.parametrize(
    "bad",
    [
        lambda c, m: bill.checkpoint_interval(c, m),
        bill.checkpoint_interval,
        lambda c, m: 1.3,
        lambda c, m: math.sqrt(c * m),  # forgets the 2
        lambda c, m: math.sqrt(2 * c * m),  # no error for bad input
        lambda c, m: math.sqrt(2 * c / m),  # a rate where the MTBF goes
    ],
)
def test_interval_check_refuses(bad):
    with pytest.raises(CheckFailed) as err:
        lab08.check_checkpoint_interval(bad)
    assert err.value.hint


@pytest.mark.parametrize("bad", [lambda c, m: 1.3, lambda c, m: 4 * math.sqrt(2 * c * m),
                                 lambda c, m: math.sqrt(2 * c * m) / 5])  # fmt: skip
def test_interval_far_from_the_bottom_of_the_curve_fails(bad):
    with pytest.raises(CheckFailed, match="wastes"):
        lab08.check_interval_waste(bad)


def test_simulator_check_passes_a_loop_and_refuses_mistakes():
    assert "expected waste" in lab08.check_simulate_waste(student_simulate)
    wrong = [
        lambda *a: 1.0,  # a constant
        lambda w, i, c, m, r, n, s: bill.simulate_waste(w, i, c, m, r, trials=n, seed=s).mean(),
        lambda w, i, c, m, r, n, s: bill.expected_spot_hours(w, i, c, 1 / m, r) - w,  # no seed
        lambda w, i, c, m, r, n, s: student_simulate(w, i, 0.0, m, r, n, s),  # forgets writes
        lambda w, i, c, m, r, n, s: student_simulate(w, i, c, m, 0.0, n, s),  # forgets restarts
    ]
    for fn in wrong:
        with pytest.raises(CheckFailed):
            lab08.check_simulate_waste(fn)


@pytest.mark.parametrize(
    "bad",
    [
        packing.first_fit,
        lambda d, n: packing.first_fit(d, n),
        lambda d, n: [0] * len(d),
        lambda d, n: [None] * len(d),
        lambda d, n: [i % n for i in range(len(d))],  # round robin ignores the shares
    ],
)
def test_packing_check_refuses(bad):
    with pytest.raises(CheckFailed):
        lab08.check_first_fit(bad)


def test_first_fit_passes():
    assert "random fleets" in lab08.check_first_fit(student_first_fit)


def test_spot_choice_and_fragmentation_checks():
    work, ckpt, mtbf, restart, spot_p, od_p = 30.0, 0.1, 10.0, 0.25, 20.0, 50.0
    best = student_young(ckpt, mtbf)
    spot = bill.expected_spot_hours(work, best, ckpt, 1 / mtbf, restart) * spot_p
    od = bill.expected_spot_hours(work, best, ckpt, 0.0, restart) * od_p
    args = (work, ckpt, mtbf, restart, spot_p, od_p)
    assert "Right" in lab08.check_spot_choice(best, spot, od, *args)
    with pytest.raises(CheckFailed, match="Young/Daly"):
        lab08.check_spot_choice(best * 2, spot, od, *args)
    with pytest.raises(CheckFailed, match="spot_cost"):
        lab08.check_spot_choice(best, spot * 0.8, od, *args)
    assert "fragmentation" in lab08.check_fragmentation([0.6, 0.6, 0.6], 2, 0.8, 0.6)
    with pytest.raises(CheckFailed):
        lab08.check_fragmentation([0.6, 0.6, 0.6], 2, 0.2, 0.6)
