"""Soak: 5,000 requests from 64 concurrent clients against the real model; no errors, no leak."""

from __future__ import annotations

import pytest

from infralab.bench.serve import TEXTS
from infralab.serving.launcher import launch, port_is_free
from infralab.serving.loadgen import closed_loop


@pytest.mark.slow
def test_5000_requests_at_64_clients_no_errors_and_rss_stable():
    pytest.importorskip("infralab.models.encoder", reason="the ONNX embedder is not available")
    payloads = [{"input": t} for t in TEXTS]
    with launch(factory_kwargs={"variant": "int8"}, ready_timeout_s=120) as server:
        url = server.url + "/v1/embeddings"
        # Warm-up: allocator pools and the batcher reach their steady size first.
        warm = closed_loop(url, payloads, 64, total_requests=600, max_seconds=120)
        assert warm.summary["errors"] == 0, warm.summary
        before = server.rss_mb()
        res = closed_loop(url, payloads, 64, total_requests=5000, max_seconds=300)
        after = server.rss_mb()
        metrics = server.metrics()
        port = server.port
    assert res.summary["requests"] == 5000, res.summary
    assert res.summary["errors"] == 0, res.summary["errors_by_kind"]
    assert after < before * 1.10, f"server RSS grew from {before:.0f} MiB to {after:.0f} MiB"
    assert metrics["http_responses"].get("200", 0) >= 5600
    assert port_is_free(port)
