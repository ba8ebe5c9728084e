"""Tenant scope enforced by the server, from the API key: the kit's own version of lab 06.

Why a module of its own: lab 06 has students build this mechanism (key -> tenant, the filter
that scopes every query, a search service, an attack that proves the scope holds), and its
checks need the kit's sound implementation beside deliberately leaky ones to attack; it is
one module so the sound server and its leaky variants share one code path. What the checks
run beside a student's code (a probe index, the attack runners, the watch on which kit
functions ran) is :mod:`infralab.engines.rag.tenancy_probes`.

* :func:`tenant_for_key` compares the presented key with every stored key in constant time
  (``hmac.compare_digest`` on sha256 digests, no early exit), so timing does not say which
  key or how much of one matched; a missing or unknown key maps to no tenant.
* :func:`scope_filter` ANDs the tenant condition with whatever filter the caller sent, in
  Qdrant's JSON filter form, so a caller can only narrow the search inside its tenant.
* :func:`search_all_tenants` is the raw search over every tenant's chunks: it enforces
  nothing, and :func:`scoped_search` is what makes it safe.
* :func:`search_app` is the service (``POST /search``, key in ``X-API-Key``); ``leak=`` builds
  one of :data:`LEAKS`, the classic mistakes, for an attack suite to catch.
* :func:`filter_matches` evaluates a JSON filter on one chunk's payload, the same way the
  store does, so a check can judge a filter without a database.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, Field

from infralab.core.errors import InfralabError
from infralab.engines.rag.hybrid import RagIndex, reciprocal_rank_fusion
from infralab.engines.rag.vector_store import Hit, parse_caller_filter

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "LEAKS",
    "search_app",
    "serve",
]


TENANT_FIELD = "tenant"
PAYLOAD_FIELDS = ("tenant", "chunk_id", "doc_id", "title", "text")

# The deliberately leaky servers an attack suite must catch, and the mistake each one makes.
LEAKS: dict[str, str] = {
    "tenant_header": "trusts an X-Tenant header over the key",
    "body_tenant": "trusts a 'tenant' field in the JSON body over the key",
    "caller_filter": "lets the caller's filter replace the tenant condition instead of narrowing it",
    "lexical_unscoped": "scopes the dense search but runs the keyword (BM25) search over every tenant",
    "missing_key": "serves a request without a key as a default tenant",
    "unknown_key": "serves a request with an unknown key as a default tenant",
}


FILTER_HINT = (
    "Write the filter in Qdrant's JSON form: {'must': [{'key': 'doc_id', 'match': {'value': "
    "'d1'}}]} (clauses must, should, must_not; a match of value, any, except or text)."
)


class TenancyInputError(ValueError, InfralabError):
    """A search, filter or server setting this module refuses (before any search runs)."""

    hint = FILTER_HINT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class SearchServerError(RuntimeError, InfralabError):
    """The background search server did not come up."""

    hint = (
        "Look for the server's error above this message (the app may have failed to build); "
        "a port taken between probing and binding is rare: run the cell again."
    )


# ------------------------------------------------------------------ key -> tenant
def tenant_for_key(keys: Mapping[str, str], presented: str | None) -> str | None:
    """The tenant whose key is ``presented``, or None (missing, empty or unknown key).

    Every stored key is compared, with ``hmac.compare_digest`` on sha256 digests (equal
    lengths, so the comparison's time does not depend on where the bytes differ)."""
    if not isinstance(presented, str) or not presented:
        return None
    digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    found = None
    for key, tenant in keys.items():
        stored = hashlib.sha256(str(key).encode("utf-8", "surrogatepass")).digest()
        if hmac.compare_digest(stored, digest):  # no early exit
            found = tenant
    return found


# ------------------------------------------------------------------ filters
def tenant_condition(tenant: str) -> dict[str, Any]:
    """The one condition that keeps a search inside ``tenant`` (Qdrant JSON form)."""
    return {"key": TENANT_FIELD, "match": {"value": tenant}}


def scope_filter(tenant: str, caller_filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """The tenant condition AND the caller's filter: the caller can only narrow."""
    must: list[Any] = [tenant_condition(tenant)]
    if caller_filter:
        must.append(dict(caller_filter))
    return {"must": must}


def _as_dict(flt: Any) -> Any:
    if hasattr(flt, "model_dump"):  # a qdrant_client Filter or condition
        return flt.model_dump(exclude_none=True)
    return flt


def _condition_matches(cond: Any, payload: Mapping[str, Any]) -> bool:
    cond = _as_dict(cond)
    if not isinstance(cond, Mapping):
        raise TenancyInputError(f"a filter condition must be an object, got {type(cond).__name__}.")
    if "key" not in cond:  # a nested filter
        return filter_matches(cond, payload)
    value = payload.get(cond["key"])
    match = cond.get("match")
    if not isinstance(match, Mapping):
        raise TenancyInputError(f"condition on {cond['key']!r} needs a 'match' object.")
    if "value" in match:
        return value == match["value"]
    if "any" in match:
        return value in list(match["any"])
    if "except" in match:
        return value is not None and value not in list(match["except"])
    if "text" in match:
        return isinstance(value, str) and str(match["text"]) in value
    raise TenancyInputError(f"unsupported match {sorted(match)} (use value, any, except or text).")


def _clauses(flt: Mapping[str, Any], name: str) -> list[Any]:
    raw = flt.get(name)
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def filter_matches(flt: Any, payload: Mapping[str, Any]) -> bool:
    """Whether one chunk's ``payload`` passes ``flt`` (Qdrant's JSON form: ``must`` all,
    ``should`` at least one when present, ``must_not`` none; conditions ``match`` a value,
    ``any`` of values, ``except`` values, or a ``text`` substring; filters nest).

    Raises ValueError for anything else, so a filter is never half understood."""
    flt = _as_dict(flt)
    if flt is None or flt == {}:
        return True
    if not isinstance(flt, Mapping):
        raise TenancyInputError(f"a filter must be an object, got {type(flt).__name__}.")
    unknown = set(flt) - {"must", "should", "must_not", "min_should"}
    if unknown:
        raise TenancyInputError(f"unsupported filter clauses {sorted(unknown)}.")
    if flt.get("min_should") is not None:
        raise TenancyInputError("min_should is not supported here.")
    # every condition is evaluated (no short cut), so an unreadable one always raises
    must = [_condition_matches(c, payload) for c in _clauses(flt, "must")]
    should = [_condition_matches(c, payload) for c in _clauses(flt, "should")]
    must_not = [_condition_matches(c, payload) for c in _clauses(flt, "must_not")]
    return all(must) and (not should or any(should)) and not any(must_not)


def payload_of(hit: Hit | Any) -> dict[str, Any]:
    """The payload fields of a hit or chunk, as the store keeps them."""
    return {name: getattr(hit, name) for name in PAYLOAD_FIELDS}


# ------------------------------------------------------------------ searches
_REACH: weakref.WeakKeyDictionary[RagIndex, dict[str, list[tuple[str, bool]]]] = (
    weakref.WeakKeyDictionary()
)


def _reach(index: RagIndex, query_filter: Any) -> list[tuple[str, bool]]:
    """(tenant, whether the filter lets ALL its chunks through) for every tenant with at least
    one chunk the filter lets through. A speed-up, not a scope (every hit is still checked
    against the filter): the other tenants are not searched, and where the filter lets a whole
    tenant through, the store searches that tenant without it (qdrant's local mode checks a
    filter point by point in Python). Remembered per index and filter."""
    if query_filter in (None, {}):
        return [(t, True) for t in sorted(index.tenants)]
    seen = _REACH.setdefault(index, {})
    key = json.dumps(query_filter, sort_keys=True, default=repr)
    if key not in seen:
        by_tenant: dict[str, list[bool]] = {}
        for chunk in index.chunks:
            by_tenant.setdefault(chunk.tenant, []).append(
                filter_matches(query_filter, payload_of(chunk))
            )
        if len(seen) > 256:
            seen.clear()
        seen[key] = [(t, all(by_tenant[t])) for t in sorted(by_tenant) if any(by_tenant[t])]
    return seen[key]


def search_all_tenants(
    index: RagIndex,
    query: str,
    vector: Any,
    *,
    mode: str = "hybrid",
    k: int = 5,
    query_filter: Any = None,
    depth: int = 20,
) -> list[Hit]:
    """The raw search over EVERY tenant's chunks, keeping those ``query_filter`` lets through.

    It enforces no tenant scope on its own: whatever calls it must put the tenant into the
    filter (:func:`scope_filter`). Dense and lexical rankings are fused with RRF in hybrid mode.
    """
    if mode not in ("dense", "lexical", "hybrid"):
        raise TenancyInputError(
            f"mode must be dense, lexical or hybrid, got {mode!r}.",
            "Use mode='hybrid' (dense and BM25 fused), 'dense' or 'lexical'.",
        )
    parse_caller_filter(query_filter)  # a malformed filter is refused before any search,
    filter_matches(query_filter, {})  # and so is one this module could only half read
    wide = max(k, depth)
    dense: list[Hit] = []
    lexical: list[Hit] = []
    for tenant, whole in _reach(index, query_filter):
        if mode != "lexical":
            if vector is None:
                raise TenancyInputError(
                    "dense and hybrid search need the query vector.",
                    "Pass index.embed_query(query) as the vector, or use mode='lexical'.",
                )
            # the per-tenant collections are an implementation detail here: the filter alone
            # decides what comes back (checked on every hit below)
            flt = None if whole else query_filter
            dense += index.store.search(tenant, vector, k=wide, query_filter=flt)
        if mode != "dense":
            lexical += index.lexical.search(tenant, query, k=wide)
    dense = [h for h in dense if filter_matches(query_filter, payload_of(h))]
    lexical = [h for h in lexical if filter_matches(query_filter, payload_of(h))]
    dense.sort(key=lambda h: -h.score)
    lexical.sort(key=lambda h: -h.score)
    if mode == "dense":
        return dense[:k]
    if mode == "lexical":
        return lexical[:k]
    by_id = {h.chunk_id: h for h in [*lexical, *dense]}
    fused = reciprocal_rank_fusion(
        [[h.chunk_id for h in dense[:wide]], [h.chunk_id for h in lexical[:wide]]], limit=k
    )
    return [by_id[c] for c, _ in fused]


def scoped_search(
    index: RagIndex,
    tenant: str,
    question: str,
    caller_filter: Mapping[str, Any] | None = None,
    k: int = 5,
    mode: str = "hybrid",
) -> list[Hit]:
    """Search inside ``tenant`` only (from the key), the caller's filter narrowing it."""
    vector = index.embed_query(question) if mode != "lexical" else None
    hits = search_all_tenants(
        index, question, vector, mode=mode, k=k, query_filter=scope_filter(tenant, caller_filter)
    )
    return [h for h in hits if h.tenant == tenant]  # defence in depth


# ------------------------------------------------------------------ the service
class SearchBody(BaseModel):
    """The body of ``POST /search``; there is no tenant field: the key decides the tenant."""

    question: str = Field(min_length=1, max_length=2000)
    filter: dict[str, Any] | None = None
    k: int = Field(default=5, ge=1, le=20)


def search_app(index: RagIndex, keys: Mapping[str, str], *, leak: str | None = None) -> FastAPI:
    """``POST /search`` with the key in ``X-API-Key`` and ``{"question", "filter", "k"}``:
    ``{"tenant", "hits": [...]}``, 401 for a missing or unknown key.

    ``leak`` (one of :data:`LEAKS`) builds a deliberately broken server for attack suites."""
    if leak is not None and leak not in LEAKS:
        raise TenancyInputError(
            f"leak must be one of {sorted(LEAKS)}, got {leak!r}.",
            "Leave leak=None for the sound server; tenancy.LEAKS names each broken one.",
        )
    keys = dict(keys)
    default_tenant = sorted(set(keys.values()))[0]

    def tenant_from_key(request: Request, x_api_key: str | None = Header(default=None)) -> str:
        tenant = tenant_for_key(keys, x_api_key)
        if tenant is None and leak == "missing_key" and not x_api_key:
            tenant = default_tenant
        if tenant is None and leak == "unknown_key" and x_api_key:
            tenant = default_tenant
        if tenant is None:
            raise HTTPException(status_code=401, detail="missing or unknown API key")
        if leak == "tenant_header" and request.headers.get("x-tenant"):
            tenant = request.headers["x-tenant"]
        return tenant

    app = FastAPI(title="infralab tenant search" + (f" (leaky: {leak})" if leak else ""))

    @app.post("/search")
    async def search(request: Request, tenant: str = Depends(tenant_from_key)) -> dict[str, Any]:
        raw = await request.json()
        if leak == "body_tenant" and isinstance(raw, dict) and raw.get("tenant"):
            tenant = str(raw["tenant"])
        body = SearchBody.model_validate(
            {k: v for k, v in raw.items() if k in SearchBody.model_fields}
            if isinstance(raw, dict)
            else raw
        )
        try:
            hits = _search_hits(index, tenant, body, leak)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return {"tenant": tenant, "hits": [payload_of(h) | {"score": h.score} for h in hits]}

    return app


def _search_hits(index: RagIndex, tenant: str, body: SearchBody, leak: str | None) -> list[Hit]:
    """The hits for ``body`` inside ``tenant`` (:func:`scoped_search`), or, on a leaky
    server, what its mistake returns."""
    if leak == "caller_filter":
        flt = body.filter or scope_filter(tenant, None)  # the bug: replaces the scope
        return search_all_tenants(
            index, body.question, index.embed_query(body.question), k=body.k, query_filter=flt
        )
    if leak == "lexical_unscoped":
        scoped = scope_filter(tenant, body.filter)
        vector = index.embed_query(body.question)
        dense = search_all_tenants(index, body.question, vector, mode="dense",
                                   k=body.k, query_filter=scoped)  # fmt: skip
        lexical = search_all_tenants(index, body.question, None, mode="lexical",
                                     k=body.k, query_filter=body.filter)  # fmt: skip
        by_id = {h.chunk_id: h for h in [*lexical, *dense]}
        fused = reciprocal_rank_fusion(
            [[h.chunk_id for h in dense], [h.chunk_id for h in lexical]], limit=body.k
        )
        return [by_id[c] for c, _ in fused]
    return scoped_search(index, tenant, body.question, body.filter, k=body.k)


@contextlib.contextmanager
def serve(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port in a background thread; yields the base
    URL and stops the server (and its thread) on exit."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=f"infralab-serve-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SearchServerError(f"the server on port {port} did not start.")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ------------------------------------------------------------------ the kit's attack suite
def standard_attack(client: Any, me: Mapping[str, str], victim: Mapping[str, str]) -> None:
    """The kit's attack suite: raises AssertionError naming the first probe that got past the
    tenant scope (forged tenant header or body field, filters on the victim's document or
    tenant, the victim's own words, no key, a made-up key)."""
    mine = {"X-API-Key": me["key"]}
    words = victim["phrase"]

    def leaked(resp: Any) -> list[dict[str, Any]]:
        if resp.status_code != 200:
            return []
        return [
            hit
            for hit in resp.json().get("hits", [])
            if hit.get("tenant") != me["tenant"]
            or hit.get("doc_id") == victim["doc_id"]
            or words in str(hit.get("text", ""))
        ]

    def doc(value: str) -> dict[str, Any]:
        return {"must": [{"key": "doc_id", "match": {"value": value}}]}

    probes = {
        "a forged X-Tenant header": ({**mine, "X-Tenant": victim["tenant"]}, {}),
        "a tenant field in the body": (mine, {"tenant": victim["tenant"]}),
        "a filter on the victim's document": (mine, {"filter": doc(victim["doc_id"])}),
        "a filter that widens to the victim's tenant": (
            mine,
            {"filter": {"should": [{"key": "tenant", "match": {"value": victim["tenant"]}}]}},
        ),
        "the victim's own words": (mine, {}),
    }
    for name, (headers, extra) in probes.items():
        resp = client.post("/search", headers=headers, json={"question": words, **extra})
        assert resp.status_code < 500, f"{name}: the server failed ({resp.status_code})"
        found = leaked(resp)
        assert not found, f"{name} returned {found[0].get('doc_id')!r} of another tenant"
    for name, headers in {"no key": {}, "a made-up key": {"X-API-Key": me["key"] + "-x"}}.items():
        resp = client.post("/search", headers=headers, json={"question": words})
        assert resp.status_code == 401, f"{name}: got {resp.status_code}, not 401"
