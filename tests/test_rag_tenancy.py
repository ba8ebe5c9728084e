"""The kit's server-side tenant scope (lab 06's reference mechanism): key map, scope filter,
filter evaluation (checked against Qdrant itself), raw and scoped search, the sound and leaky
servers, and the server thread's clean-up."""

from __future__ import annotations

import random

import httpx
import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient, models

from infralab.engines.rag import tenancy, tenancy_probes

DOCS = [
    {"tenant": "acme", "doc_id": "acme-1", "title": "Leave", "text": "Twenty days of leave. zebrafrost"},
    {"tenant": "acme", "doc_id": "acme-2", "title": "Meals", "text": "Meals up to forty dollars."},
    {"tenant": "bolt", "doc_id": "bolt-1", "title": "Audio", "text": "Audio kept ninety days. quartzlynx"},
    {"tenant": "bolt", "doc_id": "bolt-2", "title": "Travel", "text": "Economy class under six hours."},
]  # fmt: skip
KEYS = {"key-acme-123": "acme", "key-bolt-456": "bolt"}
ME = {"key": "key-acme-123", "tenant": "acme"}
VICTIM = {"tenant": "bolt", "doc_id": "bolt-1", "phrase": "quartzlynx"}


@pytest.fixture(scope="module")
def index():
    return tenancy_probes.probe_index(DOCS)


@pytest.mark.parametrize(
    ("presented", "want"),
    [("key-acme-123", "acme"), ("key-bolt-456", "bolt"), (None, None), ("", None),
     ("key-acme-12", None), ("key-acme-1234", None), ("KEY-ACME-123", None), ("é", None)],
)  # fmt: skip
def test_tenant_for_key(presented, want):
    assert tenancy.tenant_for_key(KEYS, presented) == want


def test_scope_filter_only_narrows():
    assert tenancy.scope_filter("acme", None) == {
        "must": [{"key": "tenant", "match": {"value": "acme"}}]
    }
    widen = {"should": [{"key": "tenant", "match": {"value": "bolt"}}]}
    scoped = tenancy.scope_filter("acme", widen)
    payloads = [tenancy.payload_of(c) for c in tenancy_probes.probe_index(DOCS).chunks]
    assert not any(tenancy.filter_matches(scoped, p) for p in payloads)


def _random_filter(rng: random.Random, depth: int = 0) -> dict:
    def cond():
        key = rng.choice(["tenant", "doc_id", "title"])
        values = {"tenant": ["acme", "bolt", "zed"], "doc_id": ["acme-1", "bolt-1", "bolt-2"],
                  "title": ["Leave", "Audio", "Nope"]}[key]  # fmt: skip
        kind = rng.choice(["value", "any", "except"])
        match = {"value": rng.choice(values)} if kind == "value" else {kind: rng.sample(values, 2)}
        return {"key": key, "match": match}

    out = {}
    for clause in rng.sample(["must", "should", "must_not"], rng.randint(1, 3)):
        items = [cond() for _ in range(rng.randint(1, 2))]
        if depth < 2 and rng.random() < 0.3:
            items.append(_random_filter(rng, depth + 1))
        out[clause] = items
    return out


def test_filter_matches_agrees_with_qdrant_on_random_filters():
    client = QdrantClient(location=":memory:")
    client.create_collection("t", vectors_config=models.VectorParams(size=2, distance="Cosine"))
    client.upsert("t", points=[
        models.PointStruct(id=i, vector=[1.0, 0.5], payload=d) for i, d in enumerate(DOCS)
    ])  # fmt: skip
    rng = random.Random(6)
    for _ in range(150):
        flt = _random_filter(rng)
        points, _ = client.scroll("t", scroll_filter=models.Filter.model_validate(flt), limit=10)
        want = {p.payload["doc_id"] for p in points}
        got = {d["doc_id"] for d in DOCS if tenancy.filter_matches(flt, d)}
        assert got == want, flt


@pytest.mark.parametrize("bad", [[1], {"must": [{"key": "tenant"}]}, {"filter": []},
                                 {"must": [{"key": "t", "match": {"regex": "x"}}]}])  # fmt: skip
def test_filter_matches_refuses_what_it_cannot_read(bad):
    with pytest.raises(ValueError):
        tenancy.filter_matches(bad, DOCS[0])


def test_raw_search_enforces_nothing_and_scoped_search_everything(index):
    vector = index.embed_query("quartzlynx")
    raw = tenancy.search_all_tenants(index, "quartzlynx", vector, k=10)
    assert {h.tenant for h in raw} == {"acme", "bolt"}
    for flt in [None, {"must": [{"key": "doc_id", "match": {"value": "bolt-1"}}]},
                {"should": [{"key": "tenant", "match": {"value": "bolt"}}]}]:  # fmt: skip
        hits = tenancy.scoped_search(index, "acme", "quartzlynx", flt, k=10)
        assert {h.tenant for h in hits} <= {"acme"}
    own = tenancy.scoped_search(index, "acme", "zebrafrost leave")
    assert own and own[0].doc_id == "acme-1"
    narrow = {"must": [{"key": "doc_id", "match": {"value": "acme-2"}}]}
    assert {h.doc_id for h in tenancy.scoped_search(index, "acme", "zebrafrost", narrow)} <= {
        "acme-2"
    }
    with pytest.raises(ValueError):
        tenancy.search_all_tenants(index, "x", vector, mode="fuzzy")


def test_the_sound_server_holds_and_answers(index):
    with TestClient(tenancy.search_app(index, KEYS)) as client:
        tenancy.standard_attack(client, ME, VICTIM)
        ok = client.post("/search", headers={"X-API-Key": ME["key"]}, json={"question": "leave"})
        assert ok.status_code == 200 and ok.json()["tenant"] == "acme"
        bad = client.post("/search", headers={"X-API-Key": ME["key"]},
                          json={"question": "x", "filter": {"must": [{"key": "t"}]}})  # fmt: skip
        assert bad.status_code == 400


@pytest.mark.parametrize("leak", sorted(tenancy.LEAKS))
def test_each_leaky_server_is_caught_by_the_standard_attack(index, leak):
    with TestClient(tenancy.search_app(index, KEYS, leak=leak)) as client:
        with pytest.raises(AssertionError):
            tenancy.standard_attack(client, ME, VICTIM)
    out = tenancy_probes.run_attack(tenancy.standard_attack, DOCS, KEYS, ME, VICTIM, leak)
    assert out["outcome"] == "raised" and out["type"] == "AssertionError"
    assert (
        tenancy_probes.run_attack(lambda c, m, v: None, DOCS, KEYS, ME, VICTIM, leak)["outcome"]
        == "held"
    )


def test_unknown_leak_is_refused(index):
    with pytest.raises(ValueError, match="leak must be one of"):
        tenancy.search_app(index, KEYS, leak="everything")


def test_serve_starts_and_stops_its_thread(index):
    import threading

    def servers() -> set[threading.Thread]:  # serve's own threads (other tests may leave
        # AnyIO workers running in the same process, e.g. under pytest-xdist)
        return {t for t in threading.enumerate() if t.name.startswith("infralab-serve-")}

    before = servers()
    with tenancy.serve(tenancy.search_app(index, KEYS)) as url:
        started = servers() - before
        assert len(started) == 1  # the server runs in a thread of its own
        r = httpx.post(f"{url}/search", json={"question": "x"}, timeout=10)
        assert r.status_code == 401
    assert not any(t.is_alive() for t in started) and servers() <= before
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/search", json={"question": "x"}, timeout=2)


def test_attack_app_reports_a_leaky_make_app():
    own = {"doc_id": "acme-1", "phrase": "zebrafrost"}
    sound = tenancy_probes.attack_app(tenancy.search_app, DOCS, KEYS, ME, VICTIM, own)
    assert sound["outcome"] == "held" and sound["status"] == 200 and "acme-1" in sound["docs"]

    def leaky(index, keys):
        return tenancy.search_app(index, keys, leak="caller_filter")

    assert tenancy_probes.attack_app(leaky, DOCS, KEYS, ME, VICTIM, own)["outcome"] == "leaked"
