"""From a measured run to a real training bill: compute, GPU prices, spot and reserved.

The arithmetic: training a dense transformer costs about 6 x N x D FLOPs (N parameters, D
tokens; 2 for the forward pass, 4 for the backward), per Kaplan et al., "Scaling Laws for
Neural Language Models" (2020, arXiv:2001.08361). A GPU delivers a fraction of its peak,
the model FLOPs utilization (MFU); published large runs reach 38-43 % (Llama 3, 16k H100s,
arXiv:2407.21783), 46.2 % (PaLM 540B on TPU v4, arXiv:2204.02311) and up to 56.3 % in
NVIDIA's Megatron-LM benchmark at 1T parameters (github.com/NVIDIA/Megatron-LM README).
MFU is an input here, never a measured figure: there is no GPU in this kit's CI.

Spot: interruptions arrive as a Poisson process; work since the last checkpoint is lost and
a restart costs time. The expected wall time of one segment of length T (work + checkpoint
write) with interruption rate lam and restart time R is (1/lam + R) (exp(lam T) - 1), the
standard result behind Young's optimal checkpoint interval sqrt(2 C / lam) (J. W. Young,
CACM 17(9), 1974). :func:`simulate_spot` checks the formula by simulation, seeded;
:func:`checkpoint_interval` gives Young's rule and Daly's higher-order form from the mean time
between interruptions, and :func:`simulate_waste` draws many runs at once for lab 08's curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from infralab.core.errors import InfralabError
from infralab.core.paths import PRICING_DIR
from infralab.economics.costs import pricing

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "MFU_SOURCES",
    "MFU_TYPICAL",
    "TrainingRun",
    "bill_table",
    "break_even_utilization",
    "expected_spot_hours",
    "peak_tflops",
    "price_trio",
    "reserved_trap",
    "spot_sweep",
    "waste_curve",
    "young_interval",
]


GPU_PRICES_CSV = PRICING_DIR / "gpu_instances.csv"
HARDWARE_CSV = PRICING_DIR / "hardware.csv"

# Published MFU of large training runs (see the module docstring for each source).
MFU_SOURCES = (
    ("Llama 3 405B, 16k H100 (low end)", 0.38, "arXiv:2407.21783 (Meta, 2024)"),
    ("Llama 3 405B, 16k H100 (high end)", 0.43, "arXiv:2407.21783 (Meta, 2024)"),
    ("PaLM 540B, 6,144 TPU v4", 0.462, "arXiv:2204.02311 (Google, 2022)"),
    ("Megatron-LM benchmark, 1T params", 0.563, "github.com/NVIDIA/Megatron-LM README"),
)
MFU_TYPICAL = (0.35, 0.55)  # the range the sources above span, rounded outwards
MFU_DEFAULT = 0.40


class BillError(ValueError, InfralabError):
    """A bad input to the training bill; the message says which and why."""


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BillError(f"{name} must be a number, not {value!r}.") from None
    if math.isnan(v) or v < 0 or (v == 0 and not allow_zero):
        raise BillError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, not {value!r}.")
    return v


# ------------------------------------------------------------------ prices
def gpu_prices(path: Path | str = GPU_PRICES_CSV) -> pd.DataFrame:
    """The kit's GPU price rows with a per-GPU-hour column; every row keeps source and as_of.

    The kit's own file is read (and validated) by ``infralab.economics.costs.pricing``, the one reader
    of price data; a file of your own needs the columns provider, instance, gpu, gpu_count,
    pricing, usd_per_hour, source, as_of.
    """
    if Path(path) == GPU_PRICES_CSV:
        df = pricing.load_prices("gpu_instances").copy()
        df["usd_per_hour"] = df["usd_per_hour"].astype(object).where(df["usd_per_hour"].notna(), "")
        df["as_of"] = df["as_of"].astype(str)
    else:
        df = pd.read_csv(path, dtype={"as_of": str}, keep_default_na=False)
    need = {"provider", "instance", "gpu", "gpu_count", "pricing", "usd_per_hour", "source"}
    if missing := need - set(df.columns):
        raise BillError(f"{Path(path).name} lacks column(s): {', '.join(sorted(missing))}.")
    df = df[df["usd_per_hour"].astype(str).str.strip() != ""].copy()
    df["usd_per_hour"] = df["usd_per_hour"].astype(float)
    df["gpu_count"] = df["gpu_count"].astype(int)
    df["usd_per_gpu_hour"] = df["usd_per_hour"] / df["gpu_count"]
    return df.reset_index(drop=True)


def price_trio(provider: str, instance: str, path: Path | str = GPU_PRICES_CSV) -> pd.DataFrame:
    """One instance's rows at every pricing kind the data has (on-demand, reserved, spot).

    Compare kinds within one provider and instance only: spot is cheap relative to the same
    provider's on-demand price, not to every other cloud's.
    """
    df = gpu_prices(path)
    rows = df[(df["provider"] == provider) & (df["instance"] == instance)]
    if rows.empty:
        raise BillError(
            f"No price for {provider} {instance!r}; see datasets/pricing/gpu_instances.csv."
        )
    return rows.reset_index(drop=True)


def peak_tflops(device: str = "H100 SXM", metric_contains: str = "bf16") -> float:
    """A datasheet peak from datasets/pricing/hardware.csv (dense, TFLOP/s)."""
    hw = pricing.load_prices("hardware").astype(str)
    rows = hw[
        hw["device"].str.contains(device, case=False, regex=False)
        & hw["metric"].str.lower().str.contains(metric_contains.lower(), regex=False)
        & (hw["unit"] == "tflop_per_s")
    ]
    if rows.empty:
        raise BillError(f"No {metric_contains} TFLOP/s figure for {device!r} in hardware.csv.")
    return float(rows.iloc[0]["value"])


# ------------------------------------------------------------------ compute
def training_flops(params: float, tokens: float) -> float:
    """6 x N x D: forward (2) plus backward (4) FLOPs per parameter per token."""
    return 6.0 * _positive("params", params) * _positive("tokens", tokens)


@dataclass(frozen=True)
class TrainingRun:
    """A run described by its size: parameters, tokens, GPUs and the MFU they reach."""

    name: str
    params: float
    tokens: float
    gpus: int = 8
    peak_tflops: float = 989.0  # H100 SXM dense BF16 (NVIDIA datasheet, in hardware.csv)
    mfu: float = MFU_DEFAULT

    def __post_init__(self) -> None:
        _positive("params", self.params)
        _positive("tokens", self.tokens)
        _positive("peak_tflops", self.peak_tflops)
        if not 0 < float(self.mfu) <= 1:
            raise BillError(f"mfu is a fraction in (0, 1], not {self.mfu!r} (0.4 means 40 %).")
        if not isinstance(self.gpus, int) or self.gpus < 1:
            raise BillError(f"gpus must be a whole number >= 1, not {self.gpus!r}.")

    @property
    def flops(self) -> float:
        return training_flops(self.params, self.tokens)

    @property
    def gpu_hours(self) -> float:
        """GPU-hours of pure compute at the given MFU (no restarts, no idle)."""
        return self.flops / (self.peak_tflops * 1e12 * self.mfu) / 3600.0

    @property
    def wall_hours(self) -> float:
        return self.gpu_hours / self.gpus

    def cost(self, usd_per_gpu_hour: float) -> float:
        return self.gpu_hours * _positive("usd_per_gpu_hour", usd_per_gpu_hour)


def bill_table(runs: list[TrainingRun], prices: pd.DataFrame) -> pd.DataFrame:
    """Every run priced at every price row given (one row per run x price)."""
    out = []
    for run in runs:
        for _, p in prices.iterrows():
            out.append(
                {
                    "run": run.name,
                    "params": run.params,
                    "tokens": run.tokens,
                    "flops": run.flops,
                    "mfu": run.mfu,
                    "gpu_hours": run.gpu_hours,
                    "wall_days_on_gpus": run.wall_hours / 24,
                    "gpus": run.gpus,
                    "price": f"{p['provider']} {p['instance']} ({p['pricing']})",
                    "pricing": p["pricing"],
                    "usd_per_gpu_hour": p["usd_per_gpu_hour"],
                    "usd": run.cost(p["usd_per_gpu_hour"]),
                    "source": f"{p['source']}, {p['as_of']}",
                }
            )
    return pd.DataFrame(out)


# ------------------------------------------------------------------ spot
def _segments(work_h: float, interval_h: float) -> tuple[int, float]:
    """Full checkpointed segments and the last partial one; float dust counts as none."""
    full, rest = divmod(work_h, interval_h)
    if rest > interval_h * (1 - 1e-9):  # 1.0 / 0.05 gives 19 and 0.04999...: that is 20
        full, rest = full + 1, 0.0
    if rest < interval_h * 1e-9:
        rest = 0.0
    return int(full), rest


def expected_segment_hours(segment_h: float, rate_per_h: float, restart_h: float) -> float:
    """Expected wall hours to get through ``segment_h`` of uninterrupted running.

    Poisson interruptions at ``rate_per_h``; each one loses the segment's progress and
    costs ``restart_h`` before the segment starts again from its beginning.
    """
    segment_h = _positive("segment_h", segment_h, allow_zero=True)
    lam = _positive("rate_per_h", rate_per_h, allow_zero=True)
    restart_h = _positive("restart_h", restart_h, allow_zero=True)
    if lam == 0:
        return segment_h
    return (1.0 / lam + restart_h) * math.expm1(lam * segment_h)


def expected_spot_hours(
    work_h: float, interval_h: float, checkpoint_h: float, rate_per_h: float, restart_h: float
) -> float:
    """Expected wall hours for ``work_h`` of training that checkpoints every ``interval_h``.

    Each checkpoint write takes ``checkpoint_h``; the last partial segment is shorter.
    """
    work_h = _positive("work_h", work_h)
    interval_h = _positive("interval_h", interval_h)
    checkpoint_h = _positive("checkpoint_h", checkpoint_h, allow_zero=True)
    full, rest = _segments(work_h, interval_h)
    total = full * expected_segment_hours(interval_h + checkpoint_h, rate_per_h, restart_h)
    if rest > 0:
        total += expected_segment_hours(rest, rate_per_h, restart_h)
    return total


def simulate_spot(
    work_h: float,
    interval_h: float,
    checkpoint_h: float,
    rate_per_h: float,
    restart_h: float,
    *,
    runs: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Monte-Carlo runs of one job on spot capacity: wall hours and interruptions per run.

    Billed hours are the wall hours minus waiting for capacity; here a restart is billed
    (the instance reloads the checkpoint), so billed = wall. Seeded: same inputs, same rows.
    """
    work_h = _positive("work_h", work_h)
    interval_h = _positive("interval_h", interval_h)
    lam = _positive("rate_per_h", rate_per_h, allow_zero=True)
    if runs < 1:
        raise BillError("runs must be at least 1.")
    rng = np.random.default_rng(seed)
    full, rest = _segments(work_h, interval_h)
    segments = [interval_h + checkpoint_h] * full + ([rest] if rest > 0 else [])
    rows = []
    for r in range(runs):
        wall, interruptions = 0.0, 0
        for seg in segments:
            while True:
                t_fail = rng.exponential(1.0 / lam) if lam > 0 else math.inf
                if t_fail >= seg:
                    wall += seg
                    break
                wall += t_fail + restart_h
                interruptions += 1
        rows.append({"run": r, "wall_hours": wall, "interruptions": interruptions})
    return pd.DataFrame(rows)


def spot_sweep(
    work_h: float,
    intervals_h: list[float] | np.ndarray,
    checkpoint_h: float,
    rate_per_h: float,
    restart_h: float,
    *,
    spot_usd_per_h: float,
    on_demand_usd_per_h: float,
    runs: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Cost and time to finish against the checkpoint interval, spot vs on-demand.

    On-demand runs uninterrupted but still writes its checkpoints (the same interval).
    """
    out = []
    for i, tau in enumerate(intervals_h):
        sim = simulate_spot(
            work_h, tau, checkpoint_h, rate_per_h, restart_h, runs=runs, seed=seed + i
        )
        spot_h = float(sim["wall_hours"].mean())
        od_h = expected_spot_hours(work_h, tau, checkpoint_h, 0.0, restart_h)
        out.append(
            {
                "interval_h": float(tau),
                "spot_hours_mean": spot_h,
                "spot_hours_p90": float(sim["wall_hours"].quantile(0.9)),
                "spot_hours_formula": expected_spot_hours(
                    work_h, tau, checkpoint_h, rate_per_h, restart_h
                ),
                "spot_usd": spot_h * spot_usd_per_h,
                "on_demand_hours": od_h,
                "on_demand_usd": od_h * on_demand_usd_per_h,
                "interruptions_mean": float(sim["interruptions"].mean()),
            }
        )
    return pd.DataFrame(out)


def young_interval(checkpoint_h: float, rate_per_h: float) -> float:
    """Young's first-order optimal checkpoint interval, sqrt(2 C / lam)."""
    c = _positive("checkpoint_h", checkpoint_h)
    lam = _positive("rate_per_h", rate_per_h)
    return math.sqrt(2 * c / lam)


def checkpoint_interval(checkpoint_h: float, mtbf_h: float, *, order: str = "young") -> float:
    """The checkpoint interval (hours of work between writes) that minimises expected waste.

    ``order="young"``: Young's first-order rule sqrt(2 C M) (J. W. Young, CACM 17(9), 1974).
    ``order="daly"``: Daly's higher-order form (J. T. Daly, Future Generation Computer Systems
    22(3), 2006): sqrt(2 C M) (1 + sqrt(C / 2M) / 3 + C / 18M) - C while C < 2M, else M.
    C is the time to write one checkpoint and M the mean time between interruptions (1 / rate).
    """
    c = _positive_or_hint("checkpoint_h", checkpoint_h, "the time one checkpoint write takes")
    m = _positive_or_hint("mtbf_h", mtbf_h, "the mean time between interruptions (1 / rate)")
    if order == "young":
        return math.sqrt(2 * c * m)
    if order == "daly":
        if c >= 2 * m:
            return m
        return math.sqrt(2 * c * m) * (1 + math.sqrt(c / (2 * m)) / 3 + c / (18 * m)) - c
    raise BillError(f"order must be 'young' or 'daly', not {order!r}.")


def _positive_or_hint(name: str, value: float, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BillError(f"{name} must be a number of hours ({what}), not {value!r}.") from None
    if not math.isfinite(v) or v <= 0:
        raise BillError(
            f"{name} must be a positive, finite number of hours ({what}), not {value!r}."
        )
    return v


def simulate_waste(
    work_h: float,
    interval_h: float,
    checkpoint_h: float,
    mtbf_h: float,
    restart_h: float = 0.0,
    *,
    trials: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Wasted hours (wall time minus ``work_h``) of ``trials`` simulated spot runs, seeded.

    The same model as :func:`simulate_spot` (exponential times between interruptions, mean
    ``mtbf_h``; each one loses the segment's progress and costs ``restart_h``), drawn in bulk
    with numpy: a segment of length S survives with probability exp(-S / M), so the
    interruptions of n equal segments are negative-binomial and each one's lost time is an
    exponential cut at S. Waste = checkpoint writes + lost progress + restarts.
    """
    work_h = _positive("work_h", work_h)
    interval_h = _positive("interval_h", interval_h)
    checkpoint_h = _positive("checkpoint_h", checkpoint_h, allow_zero=True)
    restart_h = _positive("restart_h", restart_h, allow_zero=True)
    m = _positive_or_hint("mtbf_h", mtbf_h, "the mean time between interruptions (1 / rate)")
    if int(trials) < 1:
        raise BillError("trials must be at least 1.")
    rng = np.random.default_rng(seed)
    full, rest = _segments(work_h, interval_h)
    wall = np.zeros(int(trials))
    for length, count in ((interval_h + checkpoint_h, full), (rest, 1 if rest > 0 else 0)):
        if count == 0:
            continue
        survive = math.exp(-length / m)
        fails = rng.negative_binomial(count, survive, size=int(trials)) if survive < 1 else 0
        fails = np.broadcast_to(np.asarray(fails), wall.shape)
        total = int(fails.sum())
        u = rng.random(total)
        lost = -m * np.log1p(-u * -math.expm1(-length / m))  # exponential cut at `length`
        owner = np.repeat(np.arange(wall.size), fails)
        wall += count * length + np.bincount(owner, weights=lost + restart_h, minlength=wall.size)
    return wall - work_h


def waste_curve(
    work_h: float,
    intervals_h: list[float] | np.ndarray,
    checkpoint_h: float,
    mtbf_h: float,
    restart_h: float = 0.0,
    *,
    trials: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean simulated waste (and its standard error) against the interval, same seed at each
    interval (common random numbers, so the curve's shape is not noise), beside the formula."""
    rows = []
    for tau in intervals_h:
        w = simulate_waste(work_h, tau, checkpoint_h, mtbf_h, restart_h, trials=trials, seed=seed)
        rows.append(
            {
                "interval_h": float(tau),
                "waste_h": float(w.mean()),
                "waste_sem_h": float(w.std(ddof=1) / math.sqrt(w.size)) if w.size > 1 else 0.0,
                "waste_formula_h": expected_spot_hours(
                    work_h, tau, checkpoint_h, 1.0 / float(mtbf_h), restart_h
                )
                - work_h,
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ reserved
def reserved_trap(
    reserved_usd_per_h: float,
    on_demand_usd_per_h: float,
    utilizations: list[float] | np.ndarray,
) -> pd.DataFrame:
    """Cost per *useful* GPU-hour of a reserved fleet at the utilization a team reaches.

    A reservation is paid for every hour; on-demand only for the hours used. Break-even
    utilization = reserved / on-demand: below it, the discount is a loss.
    """
    r = _positive("reserved_usd_per_h", reserved_usd_per_h)
    o = _positive("on_demand_usd_per_h", on_demand_usd_per_h)
    rows = []
    for u in utilizations:
        u = float(u)
        if not 0 < u <= 1:
            raise BillError(f"utilization must be in (0, 1], not {u!r}.")
        rows.append(
            {
                "utilization": u,
                "reserved_usd_per_useful_h": r / u,
                "on_demand_usd_per_useful_h": o,
            }
        )
    return pd.DataFrame(rows)


def break_even_utilization(reserved_usd_per_h: float, on_demand_usd_per_h: float) -> float:
    """The utilization at which a reservation costs the same per useful hour as on-demand."""
    return _positive("reserved_usd_per_h", reserved_usd_per_h) / _positive(
        "on_demand_usd_per_h", on_demand_usd_per_h
    )
