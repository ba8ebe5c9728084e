"""Prometheus metrics for the kit's services, one registry per app.

Why ``prometheus-client``: its text format is what Prometheus, Grafana Agent and every
cloud's managed scraper read, so the lesson's servers can be watched like production ones.
Why one registry per app: tests and notebooks run several apps in one process, and each
``/metrics`` must report its own app only.

``GET /metrics`` answers the Prometheus text format to a scraper (it asks for
``text/plain`` or OpenMetrics) or to ``?format=prometheus``, and a JSON summary to a plain
``GET`` (``Accept: */*`` or ``application/json``, or ``?format=json``): the launcher's
``server.metrics()``, the benchmarks and lesson 02 read that one.

Labels never carry prompt or question text: routes are the route templates, not raw paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    """The HTTP metrics every service has, plus named extras a service adds."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "infralab_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "infralab_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.info = Gauge(
            "infralab_service_info", "Which service this is.", ["service"], registry=self.registry
        )
        self.info.labels(service).set(1)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Called by :class:`~infralab.engines.serving.api_errors.ServiceGuard` once per request."""
        if route == "/metrics":  # scrapes would otherwise dominate their own counts
            return
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # prometheus_client's labels() costs several µs a call
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def histogram(
        self, name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
    ) -> Histogram:
        return Histogram(name, doc, list(labels), buckets=buckets, registry=self.registry)

    def gauge(self, name: str, doc: str) -> Gauge:
        return Gauge(name, doc, registry=self.registry)

    def exposition(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def as_dict(self) -> dict[str, float]:
        """Every sample as ``{'name{label="value"}': number}`` (the JSON view)."""
        out: dict[str, float] = {}
        for family in self.registry.collect():
            for smp in family.samples:
                if smp.name.endswith("_created"):
                    continue
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(smp.labels.items()))
                out[f"{smp.name}{{{labels}}}" if labels else smp.name] = smp.value
        return out


def wants_prometheus(request: Request) -> bool:
    """True for a Prometheus scraper (``text/plain`` / OpenMetrics) or ``?format=prometheus``."""
    fmt = request.query_params.get("format", "").lower()
    if fmt:
        return fmt != "json"
    accept = request.headers.get("accept", "").lower()
    return "text/plain" in accept or "openmetrics" in accept


def metrics_endpoint(
    metrics: ServiceMetrics, json_summary: Callable[[], dict[str, Any]] | None = None
) -> Callable[[Request], Any]:
    """A ``GET /metrics`` handler: Prometheus text, or JSON (``json_summary()`` or every sample)."""

    async def handler(request: Request) -> Response:
        if wants_prometheus(request):
            return metrics.exposition()
        return JSONResponse(json_summary() if json_summary is not None else metrics.as_dict())

    return handler


def sample(metrics: ServiceMetrics, name: str, labels: dict[str, str] | None = None) -> float:
    """One sample's value from the registry (0 when absent): for tests and notebooks."""
    value = metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else float(value)
