"""Fuzzing the API: whatever a client sends, the answer is never a 5xx, and every 4xx explains itself.

Two fuzzers: schemathesis generates requests from the OpenAPI spec (valid and invalid
against it), hypothesis throws arbitrary JSON and raw bytes at the endpoint.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infralab.serving.app import create_app

APP = create_app("hash", max_items=16, max_chars=200, max_total_tokens=300)
CLIENT = TestClient(APP)
CLIENT.__enter__()  # run the lifespan once: one event loop for the whole module


@pytest.fixture(scope="module", autouse=True)
def _close_client():
    yield
    CLIENT.__exit__(None, None, None)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _assert_sane(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        body = r.json()
        assert isinstance(body["error"]["message"], str) and len(body["error"]["message"]) > 5


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "input": st.one_of(
                st.text(max_size=300), st.lists(st.text(max_size=250), max_size=20), json_values
            )
        },
        optional={
            "model": st.one_of(
                st.none(), st.text(max_size=20), st.just("all-MiniLM-L6-v2"), json_values
            ),
            "encoding_format": st.one_of(st.sampled_from(["float", "base64"]), json_values),
            "dimensions": st.one_of(st.none(), st.integers(), json_values),
            "user": json_values,
        },
    ),
)


@SETTINGS
@given(body=bodies)
def test_any_json_body_gets_a_2xx_or_an_explained_4xx(body):
    _assert_sane(CLIENT.post("/v1/embeddings", json=body))


@SETTINGS
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_any_bytes_get_a_2xx_or_an_explained_4xx(raw, content_type):
    headers = {"content-type": content_type} if content_type else {}
    _assert_sane(CLIENT.post("/v1/embeddings", content=raw, headers=headers))


@SETTINGS
@given(
    path=st.text(alphabet="abcxyz/._-%", max_size=20),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
)
def test_any_route_and_method_gets_an_explained_answer(path, method):
    _assert_sane(CLIENT.request(method, "/" + path, content=json.dumps({"input": "x"})))


schemathesis = pytest.importorskip("schemathesis")
try:
    # One model call per request here: schemathesis drives the app without its lifespan.
    SCHEMA = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app("hash", batching=False, max_items=16, max_chars=200)
    )
except Exception as exc:  # an API change in schemathesis: the hypothesis fuzzers above still run
    SCHEMA = None
    REASON = f"schemathesis could not load the spec: {exc}"
else:
    REASON = ""

if SCHEMA is not None:

    @SCHEMA.parametrize()
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def test_schemathesis_no_server_errors(case):
        response = case.call()
        assert response.status_code < 500, (case, response.text[:300])
        if response.status_code >= 400:
            assert response.json()["error"]["message"]

else:

    def test_schemathesis_no_server_errors():
        pytest.skip(REASON)
