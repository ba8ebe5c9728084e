"""The kit's embeddings app as a Ray Serve deployment with autoscaling replicas.

The app is the same FastAPI object lesson 02 serves with uvicorn (``create_app``); Ray
Serve builds one copy inside each replica (an actor process) and puts its HTTP proxy in
front. Autoscaling adds a replica when the requests in flight per replica stay above a
target, and removes one when they fall: the same decision a serverless platform makes,
but with replicas that stay warm until the autoscaler's downscale delay, not a keep-alive
chosen by the provider.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from infralab.engines.fleet.cluster import require_ray

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "deploy_embeddings",
    "running_replicas",
]


APP_NAME = "embeddings"


def _serve():
    require_ray()
    from ray import serve

    quiet_serve_logger()
    return serve


def quiet_serve_logger() -> None:
    """Keep Ray Serve's INFO lines out of the notebook: warnings and errors still show.

    Importing ``ray.serve`` gives the driver's ``ray.serve`` logger an INFO level and a
    stderr handler, so every deployment step ("Started Serve", "Deploying app", "Application
    is ready") printed in red under lesson 08's cells, which students read as errors.
    ``ray.init(address=..., log_to_driver=False, logging_level="ERROR")`` (cluster.start) covers the
    workers and Ray Core, not this logger. The replicas' own logs stay in Ray's log folder.
    """
    logging.getLogger("ray.serve").setLevel(logging.WARNING)


def deploy_embeddings(
    port: int,
    *,
    embedder: str = "onnx",
    variant: str = "int8",
    threads: int = 1,
    min_replicas: int = 1,
    max_replicas: int = 2,
    target_ongoing_requests: float = 2.0,
    replica_cpus: float = 0.5,
    upscale_delay_s: float = 1.0,
    downscale_delay_s: float = 30.0,
) -> str:
    """Deploy the embeddings app on the running Ray cluster; returns its loopback URL.

    Blocks until the first replica answers. ``embedder="hash"`` serves without the model
    (it measures what Serve itself costs).
    """
    serve = _serve()
    serve.start(http_options={"host": "127.0.0.1", "port": int(port)})

    def build_app():  # runs inside each replica: the ONNX session is never pickled
        from infralab.engines.serving.app import create_app

        return create_app(embedder, variant=variant, threads=threads)

    deployment = serve.deployment(
        serve.ingress(build_app)(),
        name="EmbeddingsApp",
        ray_actor_options={"num_cpus": replica_cpus},
        autoscaling_config={
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "initial_replicas": min_replicas,
            "target_ongoing_requests": target_ongoing_requests,
            "upscale_delay_s": upscale_delay_s,
            "downscale_delay_s": downscale_delay_s,
            # Serve's default is a metrics push every 10 s: too slow to see a scale-up in a
            # short run. Deprecated in favour of environment variables, still honoured.
            "metrics_interval_s": 0.5,
            "look_back_period_s": 2.0,
        },
        max_ongoing_requests=8,
    )
    serve.run(deployment.bind(), name=APP_NAME, route_prefix="/", blocking=False)
    quiet_serve_logger()  # in case running it configured the logger again
    _wait_running(timeout_s=180)
    return f"http://127.0.0.1:{int(port)}"


def _wait_running(timeout_s: float) -> None:
    serve = _serve()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = serve.status().applications.get(APP_NAME)
        if app is not None and str(app.status).endswith("RUNNING"):
            return
        time.sleep(0.25)
    raise TimeoutError(f"Ray Serve app {APP_NAME!r} was not running after {timeout_s:.0f} s.")


def running_replicas() -> int:
    """Replicas of the embeddings deployment in the RUNNING state now."""
    serve = _serve()
    app = serve.status().applications.get(APP_NAME)
    if app is None:
        return 0
    total = 0
    for dep in app.deployments.values():
        for state, n in dep.replica_states.items():
            if str(state).endswith("RUNNING"):
                total += int(n)
    return total


@dataclass
class ReplicaWatch:
    """Samples the replica count in a background thread while load runs."""

    interval_s: float = 0.25
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ReplicaWatch:
        t0 = time.monotonic()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.samples.append((time.monotonic() - t0, running_replicas()))
                except Exception:  # a status call during shutdown: stop sampling
                    return
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def first_time_at(self, replicas: int) -> float | None:
        """Seconds from the start of the watch until ``replicas`` were running (None: never)."""
        for t, n in self.samples:
            if n >= replicas:
                return t
        return None
