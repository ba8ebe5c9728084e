"""Benchmark: the embeddings app on Ray Serve (autoscaling) next to the kit's own server.

``python -m infralab bench fleet`` measures, in one run on this machine:

1. the kit's server (uvicorn, one process, lesson 02): cold start from nothing to the first
   answer, then throughput and p99 under a closed loop of clients;
2. the same app as a Ray Serve deployment with 1-2 autoscaling replicas: the time to deploy
   the first replica, the time until the autoscaler has a second replica running under
   load (scale-up), and throughput and p99 under the same load;
3. lesson 02's keep-alive simulation on a diurnal day, once with each measured start-up
   time as the cold start, so "how often does a user wait" is compared on equal traffic.

A benchmark, not a test: one run, figures printed (and written with ``--json``). Ray is an
optional extra (``pip install -e '.[fleet]'``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from infralab.engines.serving.loadgen import PAYLOADS


def _load(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    from infralab.engines.serving import loadgen

    res = loadgen.closed_loop(
        f"{url}/v1/embeddings",
        PAYLOADS,
        concurrency,
        total_requests=100_000,
        max_seconds=seconds,
        warmup_requests=concurrency,
    )
    s = res.summary
    keys = ("requests", "errors", "throughput_rps", "p50_ms", "p99_ms")
    return {k: s[k] for k in keys}


def kit_server(variant: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Lesson 02's server: one uvicorn process, started cold, then loaded."""
    from infralab.engines.serving.launcher import launch

    t0 = time.perf_counter()
    server = launch(factory_kwargs={"variant": variant, "threads": 1})
    ready_s = time.perf_counter() - t0
    try:
        load = _load(server.url, concurrency, seconds)
    finally:
        server.stop()
    return {"cold_start_s": ready_s, **load}


def ray_serve(variant: str, concurrency: int, seconds: float, max_replicas: int) -> dict[str, Any]:
    """The same app on Ray Serve: deploy, then load until the autoscaler adds replicas."""
    from infralab.engines.fleet import cluster, ray_serve
    from infralab.engines.serving.launcher import free_port

    t0 = time.perf_counter()
    cluster.start(gpus=0)
    cluster_s = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        url = ray_serve.deploy_embeddings(
            free_port(), variant=variant, threads=1, max_replicas=max_replicas
        )
        deploy_s = time.perf_counter() - t1
        with ray_serve.ReplicaWatch() as watch:
            load = _load(url, concurrency, seconds)
        scale_up = watch.first_time_at(2)
        peak = max((n for _, n in watch.samples), default=0)
        mem = cluster.footprint()
    finally:
        left = cluster.stop()
    return {
        "ray_start_s": cluster_s,
        "deploy_first_replica_s": deploy_s,
        "scale_up_to_2_replicas_s": scale_up,
        "peak_replicas": peak,
        "ray_rss_mb": mem["ray_rss_mb"],
        "ray_processes_left_after_stop": left,
        **load,
    }


def keep_alive_comparison(cold_starts: dict[str, float], seed: int = 0) -> dict[str, Any]:
    """Lesson 02's keep-alive replay of one diurnal day, per measured cold-start time."""
    from infralab.economics import traces

    ts = traces.make_trace("diurnal", mean_rps=0.05, seed=seed)
    out = {}
    for name, cold in cold_starts.items():
        if cold is None:
            continue
        r = traces.simulate_keep_alive(ts, keep_alive_s=300.0, cold_start_s=cold)
        out[name] = {
            "cold_start_s": cold,
            "requests": r["requests"],
            "cold_starts": r["cold_starts"],
            "cold_fraction": r["cold_fraction"],
            "seconds_users_waited_for_starts": r["cold_starts"] * cold,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m infralab bench fleet", description=__doc__.split("\n")[0]
    )
    p.add_argument("--variant", default="int8", choices=["int8", "fp32"])
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0, help="load duration per server")
    p.add_argument("--max-replicas", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    from infralab.engines.fleet.cluster import FleetError, ray_available

    if not ray_available():
        print("error: Ray is not installed; pip install -e '.[fleet]'", file=sys.stderr)
        return 2
    try:
        kit = kit_server(args.variant, args.concurrency, args.seconds)
    except (TimeoutError, RuntimeError, ValueError) as exc:
        print(f"error: the kit's server did not run: {exc}", file=sys.stderr)
        return 2
    try:
        ray = ray_serve(args.variant, args.concurrency, args.seconds, args.max_replicas)
    except (FleetError, TimeoutError, RuntimeError, ValueError) as exc:
        # Keep the half that ran: the kit server's figures are still a measurement.
        print(f"error: Ray Serve did not run: {exc}", file=sys.stderr)
        ray = {"error": str(exc), "scale_up_to_2_replicas_s": None}
    result = {
        "kit_server": kit,
        "ray_serve": ray,
        "keep_alive_diurnal_day": keep_alive_comparison(
            {
                "kit_cold_start": kit["cold_start_s"],
                "ray_serve_new_replica": ray["scale_up_to_2_replicas_s"],
            }
        ),
        "command": "python -m infralab bench fleet " + " ".join(argv or []),
    }
    print(json.dumps(result, indent=2, default=float))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return 0 if "error" not in ray else 2
