"""The embeddings API: OpenAI-shaped answers, 4xx with a message for bad input, Lambda via Mangum."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from infralab.engines.serving import app as app_module
from infralab.engines.serving.app import HashEmbedder, create_app, make_lambda_handler


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app("hash", max_items=8, max_chars=100, max_total_tokens=40)) as c:
        yield c


def _message(r) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]["message"]


def test_single_text_gives_one_unit_vector_in_openai_shape(client):
    r = client.post("/v1/embeddings", json={"input": "hello world", "model": "all-MiniLM-L6-v2"})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
    (item,) = body["data"]
    assert item["object"] == "embedding" and item["index"] == 0
    vec = np.array(item["embedding"])
    assert vec.shape == (384,) and abs(np.linalg.norm(vec) - 1) < 1e-5


def test_list_input_keeps_order_and_matches_the_embedder(client):
    texts = ["first text", "second one here", "third"]
    r = client.post("/v1/embeddings", json={"input": texts})
    assert r.status_code == 200
    got = np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, HashEmbedder().embed(texts), atol=1e-6)
    assert [d["index"] for d in r.json()["data"]] == [0, 1, 2]


def test_base64_encoding_decodes_to_the_same_floats(client):
    a = client.post("/v1/embeddings", json={"input": "same", "encoding_format": "base64"}).json()
    b = client.post("/v1/embeddings", json={"input": "same"}).json()
    decoded = np.frombuffer(base64.b64decode(a["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(decoded, b["data"][0]["embedding"], atol=1e-7)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "'input' is missing"),
        ({"input": []}, 400, "empty list"),
        ({"input": ""}, 400, "empty"),
        ({"input": ["ok", "   "]}, 400, "input[1] is empty"),
        ({"input": [1, 2, 3]}, 400, "token-id arrays"),
        ({"input": "x" * 101}, 400, "101 characters; the limit is 100"),
        ({"input": ["a"] * 9}, 400, "9 texts; the limit is 8"),
        ({"input": ["w " * 30, "w " * 30]}, 400, "64 tokens together; the limit is 40"),
        ({"input": "x", "model": "text-embedding-3-small"}, 404, "not served here"),
        ({"input": "x", "dimensions": 1536}, 400, "384-dimensional"),
        ({"input": "x", "encoding_format": "hex"}, 400, "encoding_format"),
        ([1, 2], 400, "JSON object"),
        ("just a string", 400, "JSON object"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_was_wrong(client, body, status, words):
    r = client.post("/v1/embeddings", json=body)
    assert r.status_code == status
    assert words in _message(r)


def test_malformed_json_oversized_body_and_unknown_routes_are_4xx_with_messages(client):
    r = client.post(
        "/v1/embeddings", content=b'{"input": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in _message(r)
    r = client.post("/v1/embeddings", content=b"x" * 10, headers={"content-length": "99999999"})
    assert r.status_code == 413 and "limit" in _message(r)
    r = client.get("/nowhere")
    assert r.status_code == 404 and "/v1/embeddings" in _message(r)
    r = client.get("/v1/embeddings")
    assert r.status_code == 405 and "GET" in _message(r)


def test_lone_surrogate_is_a_400_not_a_crash(client):
    raw = b'{"input": "bad \\ud800 text"}'
    r = client.post("/v1/embeddings", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "surrogate" in _message(r)


def test_healthz_reports_startup_times_and_metrics_count_batches(client):
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["mode"] == "batching"
    st = h["startup"]
    assert st["module_imported"] <= st["factory_called"] <= st["warmed_up"] <= st["ready"]
    m = client.get("/metrics").json()
    assert m["requests"] >= 1 and m["model_calls"] >= 1
    assert sum(m["batch_size_histogram"].values()) == m["model_calls"]
    assert m["http_responses"]["200"] >= 1 and m["rss_mb"] > 0


def test_a_model_failure_is_a_500_with_a_message_not_a_traceback():
    class Broken(HashEmbedder):
        def embed(self, texts):
            if texts == ["warm-up"]:
                return super().embed(texts)
            raise RuntimeError("secret internal detail")

    with TestClient(create_app(Broken(), batching=False), raise_server_exceptions=False) as c:
        r = c.post("/v1/embeddings", json={"input": "x"})
    assert r.status_code == 500
    assert "secret" not in r.text and "failed" in _message(r)


def test_bad_factory_arguments_are_refused():
    with pytest.raises(ValueError, match="embedder"):
        create_app("nonsense")
    with pytest.raises(ValueError, match="max_items"):
        create_app("hash", max_items=0)


def _apigw_v2_event(body: dict | None, method: str = "POST", path: str = "/v1/embeddings") -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.1",
                "userAgent": "pytest",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795824000000,
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class _Context:
    function_name = "infralab-embeddings"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_the_same_app_answers_an_api_gateway_v2_event_through_mangum():
    handler = make_lambda_handler(create_app("hash", batching=False))
    out = handler(_apigw_v2_event({"input": ["a lambda request", "two"]}), _Context())
    assert out["statusCode"] == 200
    body = json.loads(out["body"])
    assert len(body["data"]) == 2 and len(body["data"][0]["embedding"]) == 384
    bad = handler(_apigw_v2_event({"input": []}), _Context())
    assert bad["statusCode"] == 400 and "empty" in json.loads(bad["body"])["error"]["message"]
    again = handler(_apigw_v2_event(None, "GET", "/healthz"), _Context())
    assert again["statusCode"] == 200


def test_module_level_lambda_handler_builds_its_app_once(monkeypatch):
    monkeypatch.setenv("INFRALAB_EMBEDDER", "hash")
    monkeypatch.setattr(app_module, "_LAMBDA_HANDLER", None)
    first = app_module.lambda_handler(_apigw_v2_event({"input": "cold"}), _Context())
    built = app_module._LAMBDA_HANDLER
    second = app_module.lambda_handler(_apigw_v2_event({"input": "warm"}), _Context())
    assert first["statusCode"] == second["statusCode"] == 200
    assert app_module._LAMBDA_HANDLER is built
    monkeypatch.setattr(app_module, "_LAMBDA_HANDLER", None)


def test_real_model_through_the_api_matches_the_reference(reference_dir):
    from infralab.core.assets import AssetError, asset_paths

    try:  # the one optional thing: the pinned MiniLM files (a failure past this one fails)
        asset_paths("minilm")
    except AssetError as exc:
        pytest.skip(f"the MiniLM weights are not available here: {exc}")
    ref = json.loads((reference_dir / "minilm_reference.json").read_text())["items"][:4]
    texts = [item["text"] for item in ref]
    app = create_app(variant="fp32", max_wait_ms=2)
    with TestClient(app) as c:
        r = c.post("/v1/embeddings", json={"input": texts})
    assert r.status_code == 200
    got = np.array([d["embedding"] for d in r.json()["data"]])
    want = np.array([item["embedding"] for item in ref])
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999
    assert np.abs(got - want).max() <= 1e-4
    assert r.json()["usage"]["prompt_tokens"] == sum(item["num_tokens"] for item in ref)


def test_models_lists_the_served_model():
    with TestClient(create_app("hash")) as c:
        body = c.get("/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["id"] == "all-MiniLM-L6-v2"


def test_body_limit_holds_for_chunked_bodies():
    with TestClient(create_app("hash", max_body_bytes=50_000)) as c:

        def chunks():  # no Content-Length: counted while read
            for _ in range(20):
                yield b'"' + b"a" * 9_998 + b'"'

        r = c.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
        assert c.post("/v1/embeddings", json={"input": "fine"}).status_code == 200


def test_wrong_content_type_is_named():
    with TestClient(create_app("hash")) as c:
        r = c.post("/v1/embeddings", content=b"input=x", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "text/plain" in r.json()["error"]["message"]


def test_metrics_prometheus_and_json_after_a_known_sequence():
    from prometheus_client.parser import text_string_to_metric_families

    with TestClient(create_app("hash", batching=False)) as c:
        assert c.post("/v1/embeddings", json={"input": ["a b", "c"]}).status_code == 200
        assert c.post("/v1/embeddings", json={"input": "d"}).status_code == 200
        assert c.post("/v1/embeddings", json={"input": []}).status_code == 400
        legacy = c.get("/metrics").json()  # what the launcher and lesson 02 read
        prom = c.get("/metrics", headers={"accept": "text/plain;version=0.0.4"})
    assert legacy["texts"] == 3 and legacy["model_calls"] == 2  # one call per request (naive)
    assert legacy["http_responses"]["200"] == 2 and legacy["http_responses"]["400"] == 1
    values = {
        (smp.name, tuple(sorted(smp.labels.items()))): smp.value
        for fam in text_string_to_metric_families(prom.text)
        for smp in fam.samples
    }
    key = ("infralab_http_requests_total",
           (("method", "POST"), ("route", "/v1/embeddings"), ("status", "200")))  # fmt: skip
    assert values[key] == 2
    assert values[("infralab_embed_texts_total", ())] == 3
    assert values[("infralab_embed_batch_size_count", ())] == 2
    assert values[("infralab_embed_batch_size_sum", ())] == 3
    assert values[("infralab_embed_batch_size_bucket", (("le", "1.0"),))] == 1


def test_the_stand_in_embedder_is_the_same_everywhere():
    """The service's stand-in and the neutral one the RAG app uses give the same vectors
    (serving.app keeps its own copy until it imports infralab.engines.models.standin)."""
    from infralab.engines.models.standin import HashEmbedder as Neutral

    texts = ["a", "the same text", "ünïcode \ud800 surrogate"]
    np.testing.assert_array_equal(Neutral().embed(texts), HashEmbedder().embed(texts))
    assert Neutral().count_tokens(texts) == HashEmbedder().count_tokens(texts)


def test_float_form_is_exact_and_fast_encoder_matches_the_standard_library():
    vectors = HashEmbedder().embed(["one", "two words", "three words here"])
    body = {"data": app_module.encode_vectors(vectors, "float")}
    parsed = json.loads(app_module.dumps(body))
    # float32 values widened to float64: exactly what tolist() and json.dumps gave before
    assert parsed == json.loads(json.dumps({"data": vectors.astype(np.float64).tolist()}))
    np.testing.assert_array_equal(np.array(parsed["data"], dtype=np.float32), vectors)
    b64 = app_module.encode_vectors(vectors, "base64")
    back = np.stack([np.frombuffer(base64.b64decode(s), dtype="<f4") for s in b64])
    np.testing.assert_array_equal(back, vectors)


def test_openai_client_round_trip_base64_by_default_and_float():
    """The official client asks for base64 unless told otherwise; both forms give our floats."""
    openai = pytest.importorskip("openai")
    from infralab.engines.serving.launcher import launch

    texts = ["a short text", "another, somewhat longer, text to embed", "x"]
    want = HashEmbedder().embed(texts)
    with launch(factory_kwargs={"embedder": "hash", "max_wait_ms": 1}) as server:
        oc = openai.OpenAI(base_url=server.url + "/v1", api_key="local", max_retries=0,
                           timeout=60)  # fmt: skip
        default = oc.embeddings.create(input=texts, model=app_module.MODEL_ID)
        floats = oc.embeddings.create(input=texts, model=app_module.MODEL_ID,
                                      encoding_format="float")  # fmt: skip
        raw = oc.embeddings.with_raw_response.create(input=texts, model=app_module.MODEL_ID)
    np.testing.assert_array_equal(np.array([d.embedding for d in default.data], np.float32), want)
    np.testing.assert_array_equal(np.array([d.embedding for d in floats.data], np.float32), want)
    assert [d.index for d in default.data] == [0, 1, 2]
    sent = json.loads(raw.http_request.content)
    assert sent.get("encoding_format") == "base64"  # the client's default: base64 on the wire
    assert isinstance(json.loads(raw.http_response.content)["data"][0]["embedding"], str)


def test_valid_requests_take_the_fast_lane_and_everything_else_the_full_path():
    app = create_app("hash")
    router = app.state.embeddings_router
    inner, answered = router.answer_embeddings, []

    async def counting(req):
        out = await inner(req)
        answered.append(req)
        return out

    router.answer_embeddings = counting  # the lane binds it on its first request
    with TestClient(app) as c:
        one = c.post("/v1/embeddings", json={"input": "a b"})
        assert one.status_code == 200 and len(answered) == 1
        listed = c.post("/v1/embeddings", json={"input": ["a b"]})
        assert listed.json()["data"] == one.json()["data"]
        empty = c.post("/v1/embeddings", json={"input": []})
        assert empty.status_code == 400 and "empty list" in _message(empty)
        wrong_type = c.post("/v1/embeddings", json={"input": 5})
        assert wrong_type.status_code == 400 and "'input' must be" in _message(wrong_type)
        plain = c.post(
            "/v1/embeddings", content=b'{"input": "a b"}', headers={"content-type": "text/plain"}
        )
        assert plain.status_code >= 400
        assert len(answered) == 2  # only the two valid JSON requests took the lane
        assert "/v1/embeddings" in c.get("/openapi.json").json()["paths"]  # still documented
