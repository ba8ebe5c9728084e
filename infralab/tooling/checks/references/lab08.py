"""Lab 08's references: the kit's checkpoint interval, expected waste and first-fit rules, and
their uses."""

from __future__ import annotations

import numpy as np

from infralab.economics.costs import training_bill as bill
from infralab.engines.fleet import packing

spot_hours = bill.expected_spot_hours
first_fit = packing.first_fit


def checkpoint_interval(checkpoint_h: float, mtbf_h: float) -> tuple[float, float]:
    """Young's and Daly's intervals: a student may write either."""
    return (
        bill.checkpoint_interval(checkpoint_h, mtbf_h, order="young"),
        bill.checkpoint_interval(checkpoint_h, mtbf_h, order="daly"),
    )


def expected_waste(
    work_h: float,
    interval_h: float,
    checkpoint_h: float,
    mtbf_h: float,
    restart_h: float,
    trials: int,
) -> tuple[float, float]:
    """The exact expected waste (formula) and the standard error of a mean over ``trials``
    runs (the spread from 20,000 of the kit's simulated runs, seeded)."""
    want = bill.expected_spot_hours(work_h, interval_h, checkpoint_h, 1 / mtbf_h, restart_h)
    spread = bill.simulate_waste(
        work_h, interval_h, checkpoint_h, mtbf_h, restart_h, trials=20_000, seed=5
    ).std(ddof=1)
    return want - work_h, float(spread / np.sqrt(trials))


def spot_and_on_demand(
    work_h: float,
    interval_h: float,
    checkpoint_h: float,
    mtbf_h: float,
    restart_h: float,
    spot_usd_h: float,
    on_demand_usd_h: float,
) -> tuple[float, float]:
    spot = spot_hours(work_h, interval_h, checkpoint_h, 1 / mtbf_h, restart_h) * spot_usd_h
    return spot, spot_hours(work_h, interval_h, checkpoint_h, 0.0, restart_h) * on_demand_usd_h


def fragmentation(demands: list[float], n_gpus: int) -> dict[str, float]:
    return packing.fragmentation(demands, n_gpus)
