"""Metrics after a known sequence of requests, read the way an operator reads them:
scraped, parsed, turned into rates, percentiles and an SLO report."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from infralab.engines.serving.app import create_app
from infralab.engines.serving.launcher import launch
from infralab.engines.serving.loadgen import closed_loop
from infralab.engines.serving.observe import (
    SLO,
    Scraper,
    parse,
    quantile_from_buckets,
    quantiles_over_time,
    rate,
    series,
)


@pytest.fixture(scope="module")
def scraped():
    """5 good embedding requests (3 + 2 texts), 2 refused ones, then one scrape."""
    with TestClient(create_app("hash", max_items=8)) as c:
        for texts in (["a", "b", "c"], "one", "two", ["x", "y"], "three"):
            assert c.post("/v1/embeddings", json={"input": texts}).status_code == 200
        for bad in ({"input": []}, {"nope": 1}):
            assert c.post("/v1/embeddings", json=bad).status_code in (400, 422)
        text = c.get("/metrics", headers={"Accept": "text/plain"}).text
    df = parse(text)
    return df.assign(t=0.0)


def _value(df, name, **labels):
    return series(df, name, **labels).iloc[-1]


def test_request_counts_by_status(scraped):
    route = "/v1/embeddings"
    assert _value(scraped, "infralab_http_requests_total", route=route, status="200") == 5
    statuses = {
        lab["status"]
        for lab in scraped[scraped.name == "infralab_http_requests_total"].labels
        if lab["route"] == route
    }
    assert statuses - {"200"} and all(s.startswith("4") for s in statuses - {"200"})
    assert _value(scraped, "infralab_http_requests_total", route=route) == 7
    # every answered request is in the latency histogram, no more
    assert _value(scraped, "infralab_http_request_duration_seconds_count", route=route) == 7


def test_texts_and_batches_add_up(scraped):
    assert _value(scraped, "infralab_embed_texts_total") == 8
    assert _value(scraped, "infralab_embed_batch_size_sum") == 8


def test_slo_report_counts_no_server_errors(scraped):
    r = SLO("/v1/embeddings", latency_s=10.0, objective=0.99).report(scraped)
    assert r["requests"] == 7 and r["server_errors"] == 0
    assert r["error_budget_requests"] == pytest.approx(0.07)
    with pytest.raises(ValueError, match="bucket bound"):
        SLO("/v1/embeddings", latency_s=0.123).report(scraped)
    with pytest.raises(ValueError, match="objective"):
        SLO("/x", 1.0, objective=1.0)


def test_quantile_from_buckets_interpolates_like_prometheus():
    bounds = np.array([0.1, 0.5, 1.0, np.inf])
    counts = np.array([10.0, 30.0, 40.0, 40.0])  # cumulative
    assert quantile_from_buckets(bounds, counts, 0.25) == pytest.approx(0.1)
    assert quantile_from_buckets(bounds, counts, 0.5) == pytest.approx(0.3)
    assert quantile_from_buckets(bounds, counts, 1.0) == pytest.approx(1.0)
    assert np.isnan(quantile_from_buckets(bounds, np.zeros(4), 0.5))
    tail = np.array([0.0, 0.0, 0.0, 5.0])
    assert quantile_from_buckets(bounds, tail, 0.99) == 1.0  # +Inf: the last finite bound


def test_scraping_during_a_load_test_sees_every_request():
    with launch(factory_kwargs={"embedder": "hash"}) as srv:
        with Scraper(srv.url, interval_s=0.3) as s:
            res = closed_loop(
                srv.url + "/v1/embeddings", {"input": "hi"}, 4, total_requests=60, max_seconds=30
            )
        df = s.frame
    assert res.summary["ok"] == 60
    assert df.t.nunique() >= 2
    final = series(df, "infralab_http_requests_total", route="/v1/embeddings", status="200")
    warm = final.iloc[0]  # the launcher's own warm-up requests
    assert final.iloc[-1] - warm == 60
    r = rate(df, "infralab_http_requests_total", route="/v1/embeddings")
    assert (r.per_s.dropna() >= 0).all()
    q = quantiles_over_time(df, "infralab_http_request_duration_seconds", route="/v1/embeddings")
    assert set(q["quantile"]) <= {"p50", "p95"} and (q.value > 0).all()
