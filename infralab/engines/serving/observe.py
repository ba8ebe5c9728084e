"""What an operator sees: scrape a service's Prometheus ``/metrics`` during a load test,
turn the samples into rates and percentiles over time, and hold them to an SLO.

Prometheus itself scrapes every 15-60 s and computes ``rate()`` and
``histogram_quantile()`` server-side; here a thread scrapes every ``interval_s`` into a
DataFrame and the same two calculations are done in pandas, so a lesson can chart a
ten-second load test (its charts are ``infralab.presentation.charts.reliability.rate_chart`` and
``quantile_chart``). Parsing uses ``prometheus_client``'s own text parser.

An SLO is a target on a share of good events over a window (here: requests answered
without a server error within a latency bound); the error budget is the share allowed to be
bad, and the budget consumed says how much of it a window used up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "SLO",
    "Scraper",
    "quantiles_over_time",
    "rate",
]


def parse(text: str) -> pd.DataFrame:
    """Prometheus text -> one row per sample: ``name``, ``labels`` (dict), ``value``."""
    from prometheus_client.parser import text_string_to_metric_families

    rows = [
        {"name": s.name, "labels": dict(s.labels), "value": float(s.value)}
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    ]
    return pd.DataFrame(rows, columns=["name", "labels", "value"])


def scrape_once(base_url: str, timeout_s: float = 5.0) -> pd.DataFrame:
    """One scrape of ``base_url + '/metrics'`` asking for the Prometheus format."""
    import httpx

    from infralab.engines.serving.loadgen import check_loopback

    check_loopback(base_url)
    resp = httpx.get(
        base_url.rstrip("/") + "/metrics",
        headers={"Accept": "text/plain"},
        params={"format": "prometheus"},
        timeout=timeout_s,
    )
    resp.raise_for_status()
    return parse(resp.text)


class ObserveError(ValueError, InfralabError):
    """Bad input to the metrics helpers; the message names the value."""


class MetricMissing(KeyError, ObserveError):
    """A metric, label set or route the scrapes do not hold (a KeyError, as it always was)."""

    def __str__(self) -> str:  # KeyError would quote the whole sentence
        return str(self.args[0]) if self.args else ""


class ScrapeFailed(RuntimeError, ObserveError):
    """Not one scrape of /metrics succeeded (a RuntimeError, as it always was)."""


class Scraper:
    """``with Scraper(url, interval_s=0.5) as s: <load test>``; then ``s.frame`` holds every
    sample with ``t`` (seconds since the first scrape). Scrapes once more on exit."""

    def __init__(self, base_url: str, interval_s: float = 0.5) -> None:
        if interval_s <= 0:
            raise ObserveError(
                f"interval_s must be above 0, got {interval_s}.",
                hint="interval_s is the seconds between scrapes, e.g. 0.5 (the default).",
            )
        self.base_url = base_url
        self.interval_s = interval_s
        self._frames: list[pd.DataFrame] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self.errors = 0

    def _take(self) -> None:
        try:
            df = scrape_once(self.base_url)
        except Exception:  # a missed scrape is a gap in the chart, not a failed lesson
            self.errors += 1
            return
        df["t"] = time.perf_counter() - self._t0
        self._frames.append(df)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def __enter__(self) -> Scraper:
        self._t0 = time.perf_counter()
        self._take()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._take()

    @property
    def frame(self) -> pd.DataFrame:
        if not self._frames:
            raise ScrapeFailed(
                "no scrape succeeded: is the service up and serving /metrics?",
                hint="Open base_url + '/metrics' in a browser; start the service before the Scraper.",
            )
        return pd.concat(self._frames, ignore_index=True)


def _select(df: pd.DataFrame, name: str, **labels: str) -> pd.DataFrame:
    mask = df["name"] == name
    for key, want in labels.items():
        mask &= df["labels"].map(lambda lab, k=key, w=want: lab.get(k) == w)
    return df[mask]


def series(df: pd.DataFrame, name: str, **labels: str) -> pd.Series:
    """A counter's (or gauge's) value per scrape time, summed over other labels."""
    sel = _select(df, name, **labels)
    if sel.empty:
        known = sorted(df["name"].unique())[:20]
        raise MetricMissing(
            f"no samples of {name!r} {labels or ''}; some present: {known}",
            hint="Pick a name from the list above (check the spelling and the labels).",
        )
    return sel.groupby("t")["value"].sum().sort_index()


def rate(df: pd.DataFrame, name: str, **labels: str) -> pd.DataFrame:
    """Per-second increase of a counter between consecutive scrapes (like PromQL rate())."""
    s = series(df, name, **labels)
    dt = np.diff(s.index.to_numpy())
    dv = np.diff(s.to_numpy())
    return pd.DataFrame({"t": s.index[1:], "per_s": np.where(dt > 0, dv / dt, np.nan)})


def quantile_from_buckets(bounds: np.ndarray, counts: np.ndarray, q: float) -> float:
    """histogram_quantile(): linear interpolation inside the bucket holding quantile ``q``.

    ``bounds`` are the upper bounds (``le``, +Inf last) and ``counts`` the cumulative counts.
    NaN when there are no observations; the last finite bound when q falls in +Inf."""
    if not 0 <= q <= 1:
        raise ObserveError(
            f"q is a share in [0, 1], got {q}.", hint="Write the p95 as q=0.95, not 95."
        )
    total = counts[-1] if len(counts) else 0
    if total <= 0:
        return float("nan")
    rank = q * total
    i = int(np.searchsorted(counts, rank, side="left"))
    if i >= len(bounds) - 1 and np.isinf(bounds[-1]):
        return float(bounds[-2])
    lo = 0.0 if i == 0 else float(bounds[i - 1])
    below = 0.0 if i == 0 else float(counts[i - 1])
    inside = float(counts[i]) - below
    return lo + (float(bounds[i]) - lo) * ((rank - below) / inside if inside else 1.0)


def _buckets(df: pd.DataFrame, name: str, **labels: str) -> pd.DataFrame:
    sel = _select(df, name + "_bucket", **labels)
    if sel.empty:
        raise MetricMissing(
            f"no histogram {name!r} with labels {labels}.",
            hint="Pass the histogram's name without _bucket, and labels its samples carry.",
        )
    sel = sel.assign(le=sel["labels"].map(lambda lab: float(lab["le"])))
    return sel.groupby(["t", "le"])["value"].sum().unstack("le").sort_index()


def quantiles_over_time(
    df: pd.DataFrame, name: str, qs: tuple[float, ...] = (0.5, 0.95), **labels: str
) -> pd.DataFrame:
    """Per scrape interval: quantiles of the observations made *in that interval* (the
    bucket counts' increase), in the histogram's unit. Intervals without requests drop."""
    b = _buckets(df, name, **labels)
    bounds = b.columns.to_numpy(float)
    deltas = b.diff().iloc[1:]
    rows = []
    for t, row in deltas.iterrows():
        counts = row.to_numpy(float)
        if counts[-1] <= 0:
            continue
        rows += [
            {
                "t": t,
                "quantile": f"p{round(q * 100)}",
                "value": quantile_from_buckets(bounds, counts, q),
            }
            for q in qs
        ]
    return pd.DataFrame(rows, columns=["t", "quantile", "value"])


@dataclass(frozen=True)
class SLO:
    """``objective`` of requests to ``route`` must succeed (status < 500) within
    ``latency_s``; ``latency_s`` must be one of the histogram's bucket bounds."""

    route: str
    latency_s: float
    objective: float = 0.99

    def __post_init__(self) -> None:
        if not 0 < self.objective < 1:
            raise ObserveError(
                f"objective is a share in (0, 1), got {self.objective}.",
                hint="Write 99 % as objective=0.99; 1.0 would leave no error budget at all.",
            )

    def report(self, df: pd.DataFrame) -> dict[str, Any]:
        """Good and bad requests over the whole scraped window and the budget they used.

        Bad = server errors (5xx) + requests slower than ``latency_s``. A slow error counts
        twice, which errs on the operator's side (a budget burnt a little early)."""
        last = df[df["t"] == df["t"].max()]
        reqs = _select(last, "infralab_http_requests_total", route=self.route)
        if reqs.empty:
            raise MetricMissing(
                f"no requests counted for route {self.route!r} yet.",
                hint="Send some requests to that route while the Scraper runs, then report.",
            )
        total = float(reqs["value"].sum())
        errors = float(
            reqs[reqs["labels"].map(lambda lab: lab["status"].startswith("5"))]["value"].sum()
        )
        b = _buckets(last, "infralab_http_request_duration_seconds", route=self.route)
        if self.latency_s not in b.columns:
            raise ObserveError(
                f"latency_s={self.latency_s} is not a bucket bound; choose from "
                f"{[float(x) for x in b.columns]}.",
                hint="A histogram counts only at its bucket bounds; pick latency_s from that list.",
            )
        observed = float(b.iloc[-1].iloc[-1])
        fast = float(b.iloc[-1][self.latency_s])
        slow = observed - fast
        bad = errors + slow
        budget = (1 - self.objective) * total
        return {
            "slo": f"{self.objective:.1%} of {self.route} answered (no 5xx) within "
            f"{self.latency_s * 1e3:.0f} ms",
            "requests": total,
            "server_errors": errors,
            "slower_than_bound": slow,
            "good_share": 1 - bad / total if total else float("nan"),
            "error_budget_requests": budget,
            "budget_consumed": bad / budget if budget else float("inf"),
        }
