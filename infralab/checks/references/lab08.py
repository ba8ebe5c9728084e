"""Lab 08's references: the kit's spot-hours and first-fit rules, and their uses."""

from __future__ import annotations

from typing import Any

from infralab.fleet import packing
from infralab.training import bill

spot_hours = bill.expected_spot_hours
first_fit = packing.first_fit


def spot_choice(
    work_h: float,
    intervals: Any,
    checkpoint_h: float,
    rate_per_h: float,
    restart_h: float,
    spot_usd_h: float,
) -> list[float]:
    """The spot cost of each interval."""
    return [
        spot_hours(work_h, float(i), checkpoint_h, rate_per_h, restart_h) * spot_usd_h
        for i in intervals
    ]


def on_demand_cost(
    work_h: float, interval: float, checkpoint_h: float, restart_h: float, on_demand_usd_h: float
) -> float:
    return spot_hours(work_h, interval, checkpoint_h, 0.0, restart_h) * on_demand_usd_h


def fragmentation(demands: list[float], n_gpus: int) -> dict[str, float]:
    return packing.fragmentation(demands, n_gpus)
