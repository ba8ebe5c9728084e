"""Benchmark: the embeddings API with and without micro-batching, in one run.

``python -m infralab bench serve`` starts the service cold (naive: one model call per
request), measures one client alone (the duration a per-request bill charges) and then N
concurrent clients; then does the same with micro-batching on. Both runs share the machine
state of the moment, so their ratio means more than either number on a busy machine.
``--record`` writes the result as the kit's recorded benchmark
(datasets/benchmarks/serving.json) in the format ``infralab.core.results`` reads. The ceiling the
batching run is held against (the model alone, in-process, in full batches) is
:mod:`infralab.tooling.bench.serve_ceiling`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from infralab.core.results import ServingResult, detail_of, machine, vcpus_used, write_recorded
from infralab.engines.serving.loadgen import PAYLOADS, TEXTS
from infralab.tooling.bench.serve_ceiling import (
    ceiling_probe,
    client_bound,
    model_alone,
    model_ceiling,
)

TARGET_RATIO = 3.0
TARGET_P99_MS = 250.0
# DESIGN §7: batching behind HTTP against the model alone in batches (the ceiling), 32 clients.
TARGET_CEILING_FRACTION = 0.85
TARGET_CEILING_P99_MS = 100.0


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in (
        "onnxruntime-gpu",
        "onnxruntime",
        "fastapi",
        "uvicorn",
        "httptools",
        "uvloop",
        "numpy",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def measure_mode(
    batching: bool,
    *,
    concurrency: int,
    requests: int,
    max_seconds: float,
    variant: str = "int8",
    threads: int | None = None,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    single_requests: int = 100,
    embedder: str | None = None,
    ceiling_probe: Any = None,
    rounds: int = 3,
) -> dict[str, Any]:
    """Start a fresh server in one mode; its cold start, one client alone, then N clients.

    With ``ceiling_probe`` (a callable giving the model alone's texts/s in full batches), the
    server then takes ``rounds`` turns with the probe: each round measures the ceiling and
    the loaded API back to back, so a neighbour's burst of load hits both alike.
    """
    from infralab.engines.serving.launcher import launch
    from infralab.engines.serving.loadgen import closed_loop

    kwargs: dict[str, Any] = {"batching": batching, "variant": variant, "threads": threads,
                              "max_batch_size": max_batch_size,
                              "max_wait_ms": max_wait_ms}  # fmt: skip
    if embedder is not None:
        kwargs["embedder"] = embedder
    with launch(factory_kwargs=kwargs, ready_timeout_s=120) as server:
        url = server.url + "/v1/embeddings"
        single = closed_loop(
            url,
            PAYLOADS,
            1,
            total_requests=single_requests,
            max_seconds=max_seconds,
            warmup_requests=10,
        )
        run = _loaded_run(server, url, concurrency, requests, max_seconds)
        turns = [
            _round_with_ceiling(url, ceiling_probe, concurrency, requests, max_seconds)
            for _ in range(rounds if ceiling_probe is not None else 0)
        ]
    return {
        "mode": "batching" if batching else "naive",
        "cold_start": run["cold"],
        "single_client": {k: v for k, v in single.summary.items() if k != "errors_by_kind"},
        "loaded": run["loaded"].summary,
        "server": _server_under_load(run),
        # the load generator shares the cores: its CPU per request is taken from the server's
        "client": {
            "cpu_s_under_load": run["client_s"],
            "cpu_ms_per_request": 1e3 * run["client_s"] / run["served"] if run["served"] else None,
        },
        "rounds_with_ceiling": turns,
    }


def _loaded_run(
    server: Any, url: str, concurrency: int, requests: int, max_seconds: float
) -> dict[str, Any]:
    """N clients against ``server``, with its counters, its CPU clock and this process's CPU
    (the load generator's) read before and after; then its memory and cold start."""
    from infralab.engines.serving.loadgen import closed_loop

    before = server.metrics()
    cpu_before = _cpu_seconds(server.pid)
    client_before = time.process_time()  # the load generator runs in this process
    loaded = closed_loop(
        url,
        PAYLOADS,
        concurrency,
        total_requests=requests,
        max_seconds=max_seconds,
        warmup_requests=concurrency,
    )
    client_s = time.process_time() - client_before
    cpu_after = _cpu_seconds(server.pid)
    cpu_s = cpu_after - cpu_before if cpu_after is not None and cpu_before is not None else None
    return {
        "loaded": loaded,
        "served": loaded.summary.get("ok", 0),
        "before": before,
        "after": server.metrics(),
        "cpu_s": cpu_s,
        "client_s": client_s,
        "rss": server.rss_mb(),
        "cold": dict(server.cold_start),
    }


def _round_with_ceiling(
    url: str, ceiling_probe: Any, concurrency: int, requests: int, max_seconds: float
) -> dict[str, float]:
    """One round: the model alone's ceiling, then the loaded API, back to back."""
    from infralab.engines.serving.loadgen import closed_loop

    ceiling = ceiling_probe()
    again = closed_loop(
        url,
        PAYLOADS,
        concurrency,
        total_requests=max(requests // 2, concurrency),
        max_seconds=max_seconds,
        warmup_requests=concurrency,
    ).summary
    return {
        "ceiling_texts_per_s": ceiling,
        "api_texts_per_s": again["throughput_rps"],
        "fraction_of_ceiling": again["throughput_rps"] / ceiling,
        "p99_ms": again["p99_ms"],
    }


def _server_under_load(run: dict[str, Any]) -> dict[str, Any]:
    """Batch size, model time and CPU under the N-client load alone (the server's counters
    are cumulative, so the reading before the load is subtracted)."""
    metrics, before, cpu_s, served = run["after"], run["before"], run["cpu_s"], run["served"]
    calls = metrics.get("model_calls", 0) - before.get("model_calls", 0)
    texts = metrics.get("texts", 0) - before.get("texts", 0)
    model_ms = metrics.get("model_ms_mean", 0) * metrics.get("model_calls", 0) - before.get(
        "model_ms_mean", 0
    ) * before.get("model_calls", 0)
    return {
        "rss_mb": run["rss"],
        "model_calls_under_load": calls,
        "mean_batch_size_under_load": texts / calls if calls else None,
        "model_ms_mean_under_load": model_ms / calls if calls else None,
        "queue_ms_mean_overall": metrics.get("queue_ms_mean"),
        # the server process's CPU (user + system, all threads) over the loaded run
        "cpu_s_under_load": cpu_s,
        "cpu_ms_per_request": 1e3 * cpu_s / served if cpu_s is not None and served else None,
        "model_ms_per_text_under_load": model_ms / texts if texts else None,
    }


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (every thread); None if unreadable.

    On Linux the process's own CPU clock is read (nanoseconds, the clock that
    ``clock_getcpuclockid`` names): ``/proc``'s figures tick in 10 ms steps, and a short
    load on a fast machine can cost the server less than one tick. Elsewhere psutil.
    """
    if sys.platform.startswith("linux"):
        try:
            return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the whole process
        except OSError:  # the process has ended
            return None
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except Exception:  # the process ended, or psutil is missing: the figure is left out
        return None


def run_benchmark(
    *,
    concurrency: int = 32,
    requests: int = 2000,
    max_seconds: float = 30.0,
    variant: str = "int8",
    threads: int | None = None,
    max_batch_size: int = 32,
    max_wait_ms: float = 5.0,
    embedder: str | None = None,
) -> dict[str, Any]:
    """Naive then batching, same settings; returns both and the comparison with the targets."""
    from tqdm.auto import tqdm

    alone = model_alone(variant, threads, max_batch_size) if embedder in (None, "onnx") else None
    probe = ceiling_probe(alone) if alone is not None else None
    settings = {"concurrency": concurrency, "requests": requests, "max_seconds": max_seconds,
                "variant": variant, "threads": threads, "max_batch_size": max_batch_size,
                "max_wait_ms": max_wait_ms}  # fmt: skip
    runs = {}
    for batching in tqdm([False, True], desc="serve benchmark", unit="mode", leave=False):
        runs["batching" if batching else "naive"] = measure_mode(
            batching, **settings, embedder=embedder, ceiling_probe=probe if batching else None
        )
    try:
        ceiling = (
            model_ceiling(variant, threads, max_batch_size, alone) if alone is not None else None
        )
    except Exception as exc:  # the API numbers still stand without the ceiling
        ceiling = {"error": str(exc)}
    naive, batched = runs["naive"]["loaded"], runs["batching"]["loaded"]
    of_ceiling, p99_at_ceiling = _share_of_ceiling(runs["batching"], ceiling)
    cores, bound = _client_bound_here(runs["batching"], ceiling)
    ratio = (
        batched["throughput_rps"] / naive["throughput_rps"]
        if naive["throughput_rps"]
        else float("nan")
    )
    return {
        "settings": {
            **settings,
            "payload": f"{len(TEXTS)} short query-like texts, one per request",
            "client": "infralab.engines.serving.loadgen raw HTTP/1.1 client on the same machine",
        },
        "naive": runs["naive"],
        "batching": runs["batching"],
        "throughput_ratio": ratio,
        "model_only": ceiling,
        # the median of the interleaved rounds (ceiling, then the API, back to back)
        "batching_fraction_of_ceiling": of_ceiling,
        "batching_p99_ms_in_that_round": p99_at_ceiling,
        # what the load generator on the same cores leaves of the ceiling (server overhead 0)
        "client_bound_fraction_of_ceiling": bound,
        "cores": cores,
        "targets": _targets(of_ceiling, p99_at_ceiling, ratio, batched["p99_ms"]),
        "load_average_after": _load_average(),
    }


def _share_of_ceiling(
    batching: dict[str, Any], ceiling: dict[str, Any] | None
) -> tuple[float | None, float]:
    """Batching behind HTTP as a fraction of the model alone in full batches, and its p99.

    One text per request, so requests/s is texts/s: the fraction is what HTTP, JSON and the
    load generator leave of the ceiling. With interleaved rounds, the median round (both
    sides saw the same machine); without, the loaded run against the ceiling measured after.
    """
    full = ceiling.get("texts_per_s_batch_full") if isinstance(ceiling, dict) else None
    turns = batching["rounds_with_ceiling"]
    if turns:
        order = sorted(turns, key=lambda t: t["fraction_of_ceiling"])
        middle = order[len(order) // 2]
        return middle["fraction_of_ceiling"], middle["p99_ms"]
    loaded = batching["loaded"]
    return (loaded["throughput_rps"] / full if full else None), loaded["p99_ms"]


def _client_bound_here(
    batching: dict[str, Any], ceiling: dict[str, Any] | None
) -> tuple[float, float | None]:
    """This machine's usable cores and :func:`client_bound` for them (None without the
    figures it needs)."""
    from infralab.core.env import usable_cores

    full = ceiling.get("texts_per_s_batch_full") if isinstance(ceiling, dict) else None
    model_ms = ceiling.get("cpu_ms_per_text_batch_full") if isinstance(ceiling, dict) else None
    client_ms = batching["client"]["cpu_ms_per_request"]
    cores = float(usable_cores())  # affinity and a cgroup quota, as the recorded machine says
    bound = (
        client_bound(full, model_ms, client_ms, cores)
        if full and model_ms and client_ms is not None
        else None
    )
    return cores, bound


def _targets(
    of_ceiling: float | None, p99_at_ceiling: float, ratio: float, p99_ms: float
) -> dict[str, Any]:
    """The run against DESIGN's targets: each target beside whether it was met."""
    return {
        "fraction_of_ceiling_min": TARGET_CEILING_FRACTION,
        "fraction_of_ceiling_p99_ms_max": TARGET_CEILING_P99_MS,
        "fraction_of_ceiling_met": None
        if of_ceiling is None
        else bool(
            of_ceiling >= TARGET_CEILING_FRACTION and p99_at_ceiling <= TARGET_CEILING_P99_MS
        ),
        "throughput_ratio_min": TARGET_RATIO,
        "p99_ms_max": TARGET_P99_MS,
        "ratio_met": bool(ratio >= TARGET_RATIO),
        "p99_met": bool(p99_ms <= TARGET_P99_MS),
    }


def _load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def result_record(bench: dict[str, Any]) -> dict[str, Any]:
    """The ``serving`` measurement later lessons price (same keys as the lesson saves)."""
    naive, batched = bench["naive"], bench["batching"]
    return {
        "throughput_rps": batched["loaded"]["throughput_rps"],
        "throughput_rps_naive": naive["loaded"]["throughput_rps"],
        "concurrency": bench["settings"]["concurrency"],
        "p50_ms": batched["loaded"]["p50_ms"],
        "p95_ms": batched["loaded"]["p95_ms"],
        "p99_ms": batched["loaded"]["p99_ms"],
        "cold_start_s": naive["cold_start"]["total_s"],
        "rss_mb": max(naive["server"]["rss_mb"], batched["server"]["rss_mb"]),
        "mean_duration_s": naive["single_client"]["mean_ms"] / 1e3,
        "variant": bench["settings"]["variant"],
    }


def _print(bench: dict[str, Any]) -> None:
    s = bench["settings"]
    print(
        f"embeddings API, {s['variant']}, {s['concurrency']} concurrent clients, {s['requests']} requests per mode"
    )
    print(
        f"{'mode':<10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}{'batch':>7}{'alone ms':>10}{'cold s':>8}"
    )
    for mode in ("naive", "batching"):
        r = bench[mode]
        ld = r["loaded"]
        print(
            f"{mode:<10}{ld['throughput_rps']:>9.1f}{ld['p50_ms']:>9.1f}{ld['p95_ms']:>9.1f}"
            f"{ld['p99_ms']:>9.1f}{ld['errors']:>8}{(r['server']['mean_batch_size_under_load'] or 0):>7.1f}"
            f"{r['single_client']['mean_ms']:>10.1f}{r['cold_start']['total_s']:>8.2f}"
        )
    t = bench["targets"]
    print(
        f"throughput ratio {bench['throughput_ratio']:.2f}x (target >= {t['throughput_ratio_min']:g}x: "
        f"{'met' if t['ratio_met'] else 'NOT met'}); batching p99 {bench['batching']['loaded']['p99_ms']:.0f} ms "
        f"(target <= {t['p99_ms_max']:g} ms: {'met' if t['p99_met'] else 'NOT met'})"
    )
    _print_ceiling(bench)
    _print_cpu(bench)


def _print_ceiling(bench: dict[str, Any]) -> None:
    """The model alone, the interleaved rounds and batching's share of the ceiling."""
    ceiling = bench.get("model_only") or {}
    if "ratio" in ceiling:
        print(
            f"the model alone, in-process: {ceiling['texts_per_s_batch_1']:.0f} texts/s one at a time, "
            f"{ceiling['texts_per_s_batch_full']:.0f} in batches of {bench['settings']['max_batch_size']}: "
            f"{ceiling['ratio']:.2f}x is the most batching can give here"
        )
    frac = bench.get("batching_fraction_of_ceiling")
    turns = bench["batching"].get("rounds_with_ceiling") or []
    if turns:
        print(
            "rounds, the model alone then the API: "
            + "; ".join(
                f"{t['ceiling_texts_per_s']:.0f} then {t['api_texts_per_s']:.0f} texts/s "
                f"({t['fraction_of_ceiling']:.0%}, p99 {t['p99_ms']:.0f} ms)"
                for t in turns
            )
        )
    if frac is not None:
        met = bench["targets"]["fraction_of_ceiling_met"]
        print(
            f"batching behind HTTP reaches {frac:.0%} of the model alone in full batches "
            + ("(median of the rounds) " if turns else "")
            + f"(target >= {TARGET_CEILING_FRACTION:.0%} with p99 <= {TARGET_CEILING_P99_MS:g} ms: "
            f"{'met' if met else 'NOT met'})"
        )


def _print_cpu(bench: dict[str, Any]) -> None:
    """CPU per request (server and load generator), the same-machine bound, the load."""
    for mode in ("naive", "batching"):
        cpu = bench[mode]["server"].get("cpu_ms_per_request")
        client = (bench[mode].get("client") or {}).get("cpu_ms_per_request")
        if cpu is not None:
            print(
                f"CPU per request, {mode}: server {cpu:.2f} ms (user + system, all threads)"
                + (f", load generator {client:.2f} ms" if client is not None else "")
            )
    bound = bench.get("client_bound_fraction_of_ceiling")
    if bound is not None:
        print(
            f"the load generator shares the {bench['cores']:g} cores: even a server with no "
            f"overhead could reach at most {bound:.0%} of the ceiling here"
        )
    if bench.get("load_average_after"):
        print(
            f"load average after the run: {', '.join(f'{x:.2f}' for x in bench['load_average_after'])} on {os.cpu_count()} CPUs"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m infralab bench serve", description=__doc__.split("\n")[0]
    )
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--requests", type=int, default=2000, help="requests per mode (default 2000)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="time cap per mode")
    p.add_argument("--variant", default="int8", choices=["int8", "fp32"])
    p.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime threads (default: its choice)"
    )
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--json", type=Path, help="also write the full result here")
    p.add_argument("--record", action="store_true", help="write datasets/benchmarks/serving.json")
    args = p.parse_args(argv)
    try:
        bench = run_benchmark(
            concurrency=args.concurrency,
            requests=args.requests,
            max_seconds=args.max_seconds,
            variant=args.variant,
            threads=args.threads,
            max_batch_size=args.max_batch_size,
            max_wait_ms=args.max_wait_ms,
        )
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print(bench)
    record = {
        "name": "serving",
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(args.threads),
        "versions": _versions(),
        "command": "python -m infralab bench serve " + " ".join(argv or []),
        "data": result_record(bench),
        "benchmark": bench,
    }
    typed = typed_record(record)  # the typed record lessons and readers use
    detail = detail_of(typed, record)
    if args.json:
        write_recorded("serving", typed, detail, path=args.json)
    if args.record:
        print(f"recorded {write_recorded('serving', typed, detail)}")
    return 0


def typed_record(out: dict[str, Any]) -> ServingResult:
    """The typed record of one run of this bench (its output as :func:`main` builds it)."""
    d, m = out["data"], out["machine"]
    return ServingResult(
        date=out["measured_at"],
        machine=m,
        command=out["command"],
        throughput_rps=float(d["throughput_rps"]),
        mean_duration_s=float(d["mean_duration_s"]),
        cpu_vcpus=vcpus_used(m),
        concurrency=int(d.get("concurrency", 1)),
        throughput_rps_naive=d.get("throughput_rps_naive"),
        p50_ms=d.get("p50_ms"),
        p95_ms=d.get("p95_ms"),
        p99_ms=d.get("p99_ms"),
        cold_start_s=d.get("cold_start_s"),
        rss_mb=d.get("rss_mb"),
        variant=d.get("variant", "int8"),
    )
