"""Schemathesis drives the embeddings service from its OpenAPI spec: no 5xx, explained 4xx.

Its own file so that a missing schemathesis skips only this fuzzer (the hypothesis fuzzers in
``test_api_fuzz.py`` always run); a spec it cannot load is a failure, not a skip.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from infralab.engines.serving.app import create_app

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

# One model call per request here: schemathesis drives the app without its lifespan.
SCHEMA = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app("hash", batching=False, max_items=16, max_chars=200)
)


@pytest.mark.slow  # about 13 s on the shared 2-core machine
@SCHEMA.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_no_server_errors(case):
    response = case.call()
    assert response.status_code < 500, (case, response.text[:300])
    if response.status_code >= 400:
        assert response.json()["error"]["message"]
