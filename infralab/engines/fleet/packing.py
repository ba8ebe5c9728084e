"""What should run where: packing fractional GPU demands onto whole GPUs, in plain Python.

A fraction of a GPU (0.25, 0.5) is a share of one device: two halves on two different GPUs
do not add up to a whole one. So the question "does this job fit?" is not "is the fleet's
free total >= demand" but "is there one GPU with that much free". The gap between those
two answers is fragmentation, and it is where a shared fleet loses utilization.

``first_fit`` is the rule the lesson predicts with (and the lab asks the student to write);
the scheduler tests compare its prediction with what Ray actually ran.
"""

from __future__ import annotations

from collections.abc import Sequence

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "first_fit",
]


EPS = 1e-9


class PackingError(ValueError, InfralabError):
    """A demand that no GPU can ever hold, or a bad fleet size."""


def check_demands(demands: Sequence[float], n_gpus: int) -> list[float]:
    if not isinstance(n_gpus, int) or n_gpus < 1:
        raise PackingError(f"n_gpus must be a whole number >= 1, not {n_gpus!r}.")
    out = []
    for i, d in enumerate(demands):
        d = float(d)
        if not 0 < d <= 1 and not (d > 1 and d.is_integer()):
            raise PackingError(
                f"demand {i} is {d!r}: a job asks for a fraction in (0, 1] of one GPU or a "
                "whole number of GPUs."
            )
        out.append(d)
    return out


def first_fit(demands: Sequence[float], n_gpus: int) -> list[int | None]:
    """Place jobs in order, each on the lowest-numbered GPU with room; None = must queue.

    A job of 1 or more (whole GPUs) takes that many completely free GPUs. Nothing finishes
    in between: this is the snapshot of what can run at once.
    """
    ds = check_demands(demands, n_gpus)
    free = [1.0] * n_gpus
    placed: list[int | None] = []
    for d in ds:
        spot = None
        if d <= 1:
            for g in range(n_gpus):
                if free[g] + EPS >= d:
                    spot = g
                    free[g] -= d
                    break
        else:
            whole = [g for g in range(n_gpus) if free[g] >= 1 - EPS]
            if len(whole) >= d:
                for g in whole[: int(d)]:
                    free[g] = 0.0
                spot = whole[0]
        placed.append(spot)
    return placed


def fragmentation(demands: Sequence[float], n_gpus: int) -> dict[str, float]:
    """Free capacity left in total versus the largest free share on any one GPU."""
    ds = check_demands(demands, n_gpus)
    placed = first_fit(ds, n_gpus)
    free = [1.0] * n_gpus
    for d, g in zip(ds, placed, strict=True):
        if g is not None and d <= 1:
            free[g] -= d
        elif g is not None:
            whole = [i for i in range(n_gpus) if free[i] >= 1 - EPS][: int(d)]
            for i in whole:
                free[i] = 0.0
    queued = [d for d, g in zip(ds, placed, strict=True) if g is None]
    return {
        "free_total": round(sum(free), 9),
        "largest_free_share": round(max(free), 9),
        "queued_demand": round(sum(queued), 9),
    }
