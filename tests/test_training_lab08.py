"""Lab 08's checks accept a correct student function and refuse the kit's own or a constant."""

from __future__ import annotations

import math

import pytest

from infralab.checks import CheckFailed, lab08
from infralab.fleet import packing
from infralab.training import bill


def student_spot_hours(work_h, interval_h, checkpoint_h, rate_per_h, restart_h):
    def segment(t):
        return t if rate_per_h == 0 else (1 / rate_per_h + restart_h) * math.expm1(rate_per_h * t)

    full, rest = divmod(work_h, interval_h)
    return full * segment(interval_h + checkpoint_h) + (segment(rest) if rest > 0 else 0.0)


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


def test_correct_functions_pass():
    assert "random jobs" in lab08.check_spot_hours(student_spot_hours)
    assert "random fleets" in lab08.check_first_fit(student_first_fit)


@pytest.mark.parametrize(
    "bad",
    [
        bill.expected_spot_hours,
        lambda *a: bill.expected_spot_hours(*a),
        lambda *a: 12.0,
        lambda w, i, c, r, R: w + (w // i) * c,  # forgets interruptions
        lambda w, i, c, r, R: None,
    ],
)
def test_spot_check_refuses(bad):
    with pytest.raises(CheckFailed):
        lab08.check_spot_hours(bad)


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


def test_spot_choice_and_fragmentation_checks():
    intervals = [0.5, 1.0, 2.0, 4.0]
    args = (30.0, intervals, 0.1, 0.1, 0.25, 20.0, 50.0)
    costs = [bill.expected_spot_hours(30.0, i, 0.1, 0.1, 0.25) * 20.0 for i in intervals]
    best = intervals[costs.index(min(costs))]
    od = bill.expected_spot_hours(30.0, best, 0.1, 0.0, 0.25) * 50.0
    assert "Right" in lab08.check_spot_choice(best, min(costs), od, *args)
    worst = intervals[costs.index(max(costs))]
    with pytest.raises(CheckFailed, match="cheapest"):
        lab08.check_spot_choice(worst, min(costs), od, *args)
    assert "fragmentation" in lab08.check_fragmentation([0.6, 0.6, 0.6], 2, 0.8, 0.6)
    with pytest.raises(CheckFailed):
        lab08.check_fragmentation([0.6, 0.6, 0.6], 2, 0.2, 0.6)
