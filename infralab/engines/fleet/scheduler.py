"""Jobs that really run on Ray: fractional GPUs, queueing, priorities, a day of traffic.

Ray Core places each task on a node and a GPU with enough free share and queues it when
none has; it does not order its queue by priority or preempt. Priorities here are the
fleet's admission policy on top of Ray: the dispatcher keeps waiting jobs in its own
queue, highest priority first, and hands Ray only what fits. Preemption (stopping a
training job to make room for inference) is left to Kubernetes or Slurm and not shown.

Time is compressed: ``seconds_per_hour`` of wall time stand for one hour of the day, and
every start and end time is measured inside the task, not computed.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infralab.engines.fleet.cluster import require_ray
from infralab.engines.fleet.packing import PackingError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "mixed_day",
    "packing_experiment",
    "run_day",
    "summary",
    "utilization",
]


KIND_PRIORITY = {"inference": 2, "fine-tune": 1, "training": 0}


@dataclass(frozen=True)
class Job:
    """A unit of work for the fleet: a GPU share for a duration, submitted at an hour."""

    name: str
    kind: str
    gpu: float
    hours: float
    submit_h: float = 0.0
    priority: int | None = None  # None: from the kind (inference > fine-tune > training)

    @property
    def rank(self) -> int:
        return KIND_PRIORITY.get(self.kind, 0) if self.priority is None else self.priority


# ------------------------------------------------------------------ the packing experiment
def _gate_actor():
    ray = require_ray()

    @ray.remote(num_cpus=0)
    class Gate:
        """Holds jobs running until released, and records who started: no timing involved."""

        def __init__(self) -> None:
            self.started: list[int] = []
            self.released = False

        def start(self, i: int) -> None:
            self.started.append(i)

        def is_released(self) -> bool:
            return self.released

        def release(self) -> None:
            self.released = True

        def log(self) -> list[int]:
            return list(self.started)

    return Gate


def packing_experiment(
    demands: Sequence[float], expect_start: Sequence[bool], timeout_s: float = 90.0
) -> dict[str, object]:
    """Submit jobs with these GPU demands to the running Ray cluster and hold them running.

    Jobs go in one at a time, in order: after a job that ``expect_start`` says should run,
    the next waits until it has started (or ``timeout_s``). Ray does not promise to place
    tasks of different shapes in submission order, so this keeps the experiment about
    *what fits*, not about the order Ray happens to pick. Then it reads which jobs run
    together and what Ray reports free, releases all, and returns the full start order.
    Concurrency is decided by Ray's resource accounting, never by how fast this machine is.
    """
    ray = require_ray()
    if len(expect_start) != len(demands):
        raise PackingError(
            "expect_start needs one True/False per demand.",
            hint="Give expect_start the same length as demands, in the same order.",
        )
    gate = _gate_actor().remote()

    @ray.remote(num_cpus=0)
    def held(i: int, gate) -> int:
        ray.get(gate.start.remote(i))
        while not ray.get(gate.is_released.remote()):
            time.sleep(0.05)
        return i

    refs = []
    deadline = time.monotonic() + timeout_s
    for i, (d, should_start) in enumerate(zip(demands, expect_start, strict=True)):
        refs.append(held.options(num_gpus=float(d)).remote(i, gate))
        while should_start and time.monotonic() < deadline:
            if i in ray.get(gate.log.remote()):
                break
            time.sleep(0.05)
    time.sleep(0.5)  # a job that should queue but wrongly started would show up by now
    running = sorted(ray.get(gate.log.remote()))
    free_gpu = ray.available_resources().get("GPU", 0.0)
    ray.get(gate.release.remote())
    ray.get(refs)
    order = ray.get(gate.log.remote())
    ray.kill(gate)
    return {"running_together": running, "free_gpu_while_held": free_gpu, "start_order": order}


# ------------------------------------------------------------------ a day of mixed traffic
def mixed_day(
    seed: int = 0,
    *,
    hours: int = 24,
    training_jobs: int = 2,
    fine_tunes: int = 4,
    peak_replicas: int = 4,
) -> list[Job]:
    """A seeded day: inference replicas that follow daytime demand, fine-tunes, training.

    Inference: one half-GPU replica per hour of demand, more in the day (a sine
    with its peak at 14:00). Fine-tunes: half a GPU for 2-5 h, submitted in working hours.
    Training: a whole GPU for 6-12 h, submitted in the morning.
    """
    rng = np.random.default_rng(seed)
    jobs: list[Job] = []
    for h in range(hours):
        level = 0.5 - 0.5 * np.cos(2 * np.pi * (h - 2) / 24)  # 0 at 02:00, 1 at 14:00
        n = int(round(1 + (peak_replicas - 1) * level))
        for r in range(n):
            # Half a GPU each: at most 2 x n_gpus tasks run at once, and every running task
            # is a Ray worker process (about 100 MB), so finer shares cost memory here.
            jobs.append(Job(f"serve-{h:02d}-{r}", "inference", 0.5, 1, h))
    for i in range(fine_tunes):
        jobs.append(
            Job(
                f"finetune-{i}",
                "fine-tune",
                0.5,
                float(rng.integers(2, 6)),
                float(rng.integers(8, 18)),
            )
        )
    for i in range(training_jobs):
        jobs.append(
            Job(
                f"train-{i}",
                "training",
                1.0,
                float(rng.integers(6, 13)),
                float(rng.integers(6, 11)),
            )
        )
    return sorted(jobs, key=lambda j: (j.submit_h, -j.rank, j.name))


def run_day(
    jobs: Sequence[Job],
    n_gpus: int,
    *,
    seconds_per_hour: float = 0.25,
    progress: bool = False,
) -> pd.DataFrame:
    """Run the jobs on the live Ray cluster with a priority dispatcher; one row per job.

    Columns: submit, dispatch and start and end hour (start/end measured inside the task),
    wait hours, the GPU share, priority and the order in which the dispatcher released jobs
    (``dispatch_order``: decided by priorities and capacity, not by how fast workers start). The dispatcher releases a job to Ray when the fleet's free
    share (its own ledger) covers it; Ray then places it on one GPU or holds it in its queue.
    """
    ray = require_ray()

    @ray.remote(num_cpus=0)
    def work(duration_s: float) -> tuple[float, float]:
        t0 = time.time()
        time.sleep(duration_s)
        return t0, time.time()

    for j in jobs:
        if not 0 < j.gpu <= n_gpus or j.hours <= 0:
            raise PackingError(
                f"job {j.name!r} asks for {j.gpu} GPU for {j.hours} h on a {n_gpus}-GPU fleet: "
                "a job needs a positive share that the fleet can hold, for a positive time.",
                hint=f"Give each job a gpu share in (0, {n_gpus}] and hours above 0.",
            )
    pending = sorted(jobs, key=lambda j: j.submit_h)
    dispatched = 0
    waiting: list[tuple[int, float, int, Job]] = []  # (-rank, submit, seq, job)
    running: dict = {}
    rows = []
    free = float(n_gpus)
    seq = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc="jobs finished", unit="job")
    t0 = time.time()
    while pending or waiting or running:
        now_h = (time.time() - t0) / seconds_per_hour
        while pending and pending[0].submit_h <= now_h:
            j = pending.pop(0)
            heapq.heappush(waiting, (-j.rank, j.submit_h, seq, j))
            seq += 1
        # Highest priority first; a job that does not fit blocks lower ones only if it
        # is inference (so a big training job cannot starve serving, but serving can wait).
        skipped = []
        while waiting:
            item = heapq.heappop(waiting)
            j = item[3]
            if j.gpu <= free + 1e-9:
                sent_h = (time.time() - t0) / seconds_per_hour  # before: the task may start at once
                ref = work.options(num_gpus=j.gpu).remote(j.hours * seconds_per_hour)
                running[ref] = (j, dispatched, sent_h)
                dispatched += 1
                free -= j.gpu
            else:
                skipped.append(item)
                if j.kind == "inference":
                    break
        for item in skipped:
            heapq.heappush(waiting, item)
        if running:
            done, _ = ray.wait(list(running), num_returns=1, timeout=seconds_per_hour / 4)
            for ref in done:
                j, order, sent_h = running.pop(ref)
                s, e = ray.get(ref)
                free += j.gpu
                rows.append(
                    {
                        "job": j.name,
                        "kind": j.kind,
                        "gpu": j.gpu,
                        "priority": j.rank,
                        "submit_h": j.submit_h,
                        "dispatch_order": order,
                        "dispatched_h": sent_h,
                        "start_h": (s - t0) / seconds_per_hour,
                        "end_h": (e - t0) / seconds_per_hour,
                    }
                )
                if bar is not None:
                    bar.update(1)
        else:
            time.sleep(
                min(
                    seconds_per_hour / 4,
                    max(0.0, (pending[0].submit_h - now_h) * seconds_per_hour) if pending else 0.0,
                )
            )
    if bar is not None:
        bar.close()
    df = pd.DataFrame(rows)
    df["wait_h"] = (df["start_h"] - df["submit_h"]).clip(lower=0)
    return df.sort_values("start_h").reset_index(drop=True)


def utilization(df: pd.DataFrame, n_gpus: int, *, step_h: float = 0.25) -> pd.DataFrame:
    """Share of the fleet's GPUs busy over time, from measured start and end hours."""
    end = float(df["end_h"].max())
    grid = np.arange(0.0, end, step_h)
    busy = np.zeros_like(grid)
    for _, r in df.iterrows():
        busy += r["gpu"] * ((grid >= r["start_h"]) & (grid < r["end_h"]))
    return pd.DataFrame({"hour": grid, "busy_gpus": busy, "utilization": busy / n_gpus})


def summary(df: pd.DataFrame, n_gpus: int) -> dict[str, float]:
    """GPU-hours used over GPU-hours available, and the wait each kind of job saw."""
    span = float(df["end_h"].max())
    used = float((df["gpu"] * (df["end_h"] - df["start_h"])).sum())
    out = {"span_h": span, "gpu_hours_used": used, "utilization": used / (n_gpus * span)}
    for kind, g in df.groupby("kind"):
        out[f"mean_wait_h_{kind}"] = float(g["wait_h"].mean())
    return out
