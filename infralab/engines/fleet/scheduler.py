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
from typing import Any

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


def _check_jobs(jobs: Sequence[Job], n_gpus: int) -> None:
    """Refuse a job the fleet could never hold before any starts (else it would wait forever)."""
    for j in jobs:
        if not 0 < j.gpu <= n_gpus or j.hours <= 0:
            raise PackingError(
                f"job {j.name!r} asks for {j.gpu} GPU for {j.hours} h on a {n_gpus}-GPU fleet: "
                "a job needs a positive share that the fleet can hold, for a positive time.",
                hint=f"Give each job a gpu share in (0, {n_gpus}] and hours above 0.",
            )


def _sleeper_task(ray: Any) -> Any:
    """A Ray task that holds its GPU share for a while and reports when it really ran."""

    @ray.remote(num_cpus=0)
    def work(duration_s: float) -> tuple[float, float]:
        t0 = time.time()
        time.sleep(duration_s)
        return t0, time.time()

    return work


class _Dispatcher:
    """The dispatcher's ledger: jobs not yet submitted, queued, running, and the free share."""

    def __init__(
        self, jobs: Sequence[Job], n_gpus: int, seconds_per_hour: float, work: Any
    ) -> None:
        self.pending = sorted(jobs, key=lambda j: j.submit_h)
        self.waiting: list[tuple[int, float, int, Job]] = []  # (-rank, submit, seq, job)
        self.running: dict[Any, tuple[Job, int, float]] = {}  # Ray ref -> (job, order, sent h)
        self.rows: list[dict[str, Any]] = []
        self.free = float(n_gpus)
        self.seq = self.dispatched = 0
        self.seconds_per_hour = seconds_per_hour
        self.work = work
        self.t0 = time.time()

    def busy(self) -> bool:
        """Whether any job is still to submit, queued or running."""
        return bool(self.pending or self.waiting or self.running)

    def hour(self, at: float | None = None) -> float:
        """Simulated hours since the day started (``at``: a wall-clock time, default now)."""
        return ((time.time() if at is None else at) - self.t0) / self.seconds_per_hour

    def queue_submitted(self, now_h: float) -> None:
        """Move every job submitted by ``now_h`` into the priority queue."""
        while self.pending and self.pending[0].submit_h <= now_h:
            j = self.pending.pop(0)
            heapq.heappush(self.waiting, (-j.rank, j.submit_h, self.seq, j))
            self.seq += 1

    def release(self) -> None:
        """Send queued jobs to Ray, highest priority first, while the free share covers them."""
        # A job that does not fit blocks lower ones only if it is inference (so a big
        # training job cannot starve serving, but serving can wait).
        skipped = []
        while self.waiting:
            item = heapq.heappop(self.waiting)
            j = item[3]
            if j.gpu <= self.free + 1e-9:
                sent_h = self.hour()  # before: the task may start at once
                ref = self.work.options(num_gpus=j.gpu).remote(j.hours * self.seconds_per_hour)
                self.running[ref] = (j, self.dispatched, sent_h)
                self.dispatched += 1
                self.free -= j.gpu
            else:
                skipped.append(item)
                if j.kind == "inference":
                    break
        for item in skipped:
            heapq.heappush(self.waiting, item)

    def collect(self, ray: Any, bar: Any) -> None:
        """Wait briefly for a running job to end; record each that did and free its share."""
        wait_s = self.seconds_per_hour / 4
        done, _ = ray.wait(list(self.running), num_returns=1, timeout=wait_s)
        for ref in done:
            j, order, sent_h = self.running.pop(ref)
            s, e = ray.get(ref)
            self.free += j.gpu
            self.rows.append(
                {
                    "job": j.name,
                    "kind": j.kind,
                    "gpu": j.gpu,
                    "priority": j.rank,
                    "submit_h": j.submit_h,
                    "dispatch_order": order,
                    "dispatched_h": sent_h,
                    "start_h": self.hour(s),
                    "end_h": self.hour(e),
                }
            )
            if bar is not None:
                bar.update(1)

    def sleep_until_next(self, now_h: float) -> None:
        """Nothing runs: sleep until the next submission (at most a quarter simulated hour)."""
        ahead_s = (
            (self.pending[0].submit_h - now_h) * self.seconds_per_hour if self.pending else 0.0
        )
        time.sleep(min(self.seconds_per_hour / 4, max(0.0, ahead_s)))


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
    work = _sleeper_task(ray)
    _check_jobs(jobs, n_gpus)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc="jobs finished", unit="job")
    fleet = _Dispatcher(jobs, n_gpus, seconds_per_hour, work)
    while fleet.busy():
        now_h = fleet.hour()
        fleet.queue_submitted(now_h)
        fleet.release()
        if fleet.running:
            fleet.collect(ray, bar)
        else:
            fleet.sleep_until_next(now_h)
    if bar is not None:
        bar.close()
    df = pd.DataFrame(fleet.rows)
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
