"""Soak: 5,000 requests from 64 concurrent clients against the real model; no errors, no leak.

Behaviour only, no speed: every request is answered with 200 (the server counts the same
number), memory does not grow with the request count, and the port is released. The time
caps below are the load generator's safety bounds (its maximum), not performance claims: a
slow, busy machine takes longer but passes; a server that hangs fails on the per-request
timeout (an error of kind ``timeout``) long before.
"""

from __future__ import annotations

import pytest

from infralab.engines.serving.launcher import launch
from infralab.engines.serving.loadgen import MAX_SECONDS, TEXTS, closed_loop
from infralab.engines.serving.server_process import port_is_free

REQUEST_TIMEOUT_S = 120.0  # only a hung server takes this long for one request


@pytest.mark.slow
def test_5000_requests_at_64_clients_no_errors_and_rss_stable():
    payloads = [{"input": t} for t in TEXTS]
    with launch(factory_kwargs={"variant": "int8"}, ready_timeout_s=120) as server:
        url = server.url + "/v1/embeddings"

        def load(n: int):
            return closed_loop(
                url,
                payloads,
                64,
                total_requests=n,
                max_seconds=MAX_SECONDS,
                timeout_s=REQUEST_TIMEOUT_S,
            )

        # Warm-up: allocator pools and the batcher reach their steady size first.
        warm = load(600)
        assert warm.summary["errors"] == 0, warm.summary["errors_by_kind"]
        before = server.rss_mb()
        first = load(2500)
        middle = server.rss_mb()
        second = load(2500)
        after = server.rss_mb()
        metrics = server.metrics()
        port = server.port
    for half in (first, second):
        assert half.summary["requests"] == 2500, half.summary
        assert half.summary["errors"] == 0, half.summary["errors_by_kind"]
    # The server answered every request the clients sent (plus its readiness probes) with 200.
    assert metrics["http_responses"].get("200", 0) >= 600 + 5000, metrics["http_responses"]
    assert set(metrics["http_responses"]) == {"200"}, metrics["http_responses"]
    # A leak grows with the request count, so both halves would grow alike; allocator
    # settling grows at most the first. The second half may not add more than 5 % (the
    # RSS of a Python process moves by a few MiB for reasons unrelated to requests).
    assert after - middle <= 0.05 * before, (
        f"server RSS {before:.0f} -> {middle:.0f} -> {after:.0f} MiB over two equal halves"
    )
    assert after < before * 1.10, f"server RSS grew from {before:.0f} MiB to {after:.0f} MiB"
    assert port_is_free(port)
