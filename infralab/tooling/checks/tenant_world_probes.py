"""Lab 06's random tenants: the worlds of tenants, documents and keys that lab 06's checks
draw (hypothesis), the hostile filters, payloads, queries and roles tried on a student's
key lookup, scope filter, scoped search and server, and the hints those checks give.
Used by ``lab06``'s tenancy checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
)

WORDS = ("policy leave audio invoice retention travel contract backup laptop meeting refund "
         "payroll storage vendor wallet audit deploy privacy office expense").split()  # fmt: skip


KEY_HINT = (
    "Hash (or encode) the presented key and every stored key and compare each pair with "
    "hmac.compare_digest, without stopping at the first match; a missing (None or empty) or "
    "unknown key gives None."
)


SCOPE_HINT = (
    "Return {'must': [the tenant condition, the caller's filter]}: the tenant condition is "
    "{'key': 'tenant', 'match': {'value': tenant}}; add the caller's filter as a second item "
    "(only when there is one), never merged into or in place of the tenant condition."
)


SEARCH_HINT = (
    "Build the filter with your scope_filter(tenant, caller_filter) and give it to both "
    "search_all_tenants calls (dense and lexical), then fuse the two rankings with your rrf."
)


ATTACK_HINT = (
    "Use the client you are given: one request per trick (a forged X-Tenant header, a 'tenant' "
    "field in the body, a filter on the victim's doc_id, a filter that widens to the victim's "
    "tenant, the victim's own phrase, no key, a made-up key) and `assert` that nothing of the "
    "victim comes back and that a bad key gets 401. Take names from `me` and `victim`."
)


SERVER_HINT = (
    "Take the tenant from the X-API-Key header through your tenant_for_key (401 when it gives "
    "None), never from a header or body field the caller chooses, and search with your "
    "scoped_search."
)


def _names(draw: Any, st: Any, n: int, size: tuple[int, int]) -> list[str]:
    letters = st.text("abcdefghijklmnopqrstuvwxyz", min_size=size[0], max_size=size[1])
    return draw(st.lists(letters, min_size=n, max_size=n, unique=True))


def _world_strategy() -> Any:
    """Random tenants, their documents (each with a unique marker phrase) and API keys."""
    from hypothesis import strategies as st

    @st.composite
    def world(draw: Any) -> dict[str, Any]:
        n = draw(st.integers(2, 3))
        tenants = _names(draw, st, n, (3, 8))
        per = [draw(st.integers(1, 3)) for _ in tenants]
        markers = _names(draw, st, 2 * sum(per), (9, 12))
        docs, m = [], iter(markers)
        for t, count in zip(tenants, per, strict=True):
            for i in range(count):
                filler = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=3, max_size=8)))
                phrase = f"{next(m)} {next(m)}"
                docs.append({"tenant": t, "doc_id": f"{t}-{i}", "title": f"{t} note {i}",
                             "text": f"{filler} {phrase} {filler}.", "phrase": phrase})  # fmt: skip
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
        keys = draw(st.lists(st.text(alphabet, min_size=8, max_size=24), min_size=n, max_size=n,
                             unique=True))  # fmt: skip
        return {"tenants": tenants, "docs": docs, "keys": dict(zip(keys, tenants, strict=True))}

    return world()


def _for_random(strategy: Any, test: Callable[[Any], None], max_examples: int) -> int:
    """Run ``test`` on random draws (derandomized outside grading); CheckFailed passes through
    with the first failing draw (no shrinking: each draw may start a small index)."""
    from hypothesis import HealthCheck, Phase, given, settings

    tried = 0

    @settings(max_examples=max_examples, deadline=None, database=None, print_blob=False,
              derandomize=not checks._GRADING.get(), phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def run(value: Any) -> None:
        nonlocal tried
        tried += 1
        test(value)

    try:
        run()
    except CheckFailed as exc:
        raise CheckFailed(exc.problem, exc.hint) from None
    return tried


def _kit_tenancy() -> list[Callable[..., Any]]:
    from infralab.engines.rag import cloud_app, tenancy, vector_store

    return [tenancy.tenant_for_key, tenancy.scope_filter, tenancy.scoped_search,
            tenancy.search_app, tenancy.standard_attack, cloud_app.KeyRing.tenant,
            vector_store.scoped_filter]  # fmt: skip


def _refuse_kit_calls(report: Any, name: str, hint: str) -> None:
    """A probe's report names the kit's own lab functions the student's code ran: refused."""
    used = report.get("kit") if isinstance(report, dict) else None
    if not isinstance(report, dict) or not isinstance(used, list):
        raise CheckFailed(f"{name} could not be probed (the kit's probe sent back {report!r}"[:200]
                          + ").", "Run the lab's cells in order and try again.")  # fmt: skip
    if used:
        raise CheckFailed(f"{name} runs the kit's own {', '.join(map(str, used))}: the lab asks "
                          "for yours.", hint)  # fmt: skip


def _code_names(fn: Any) -> set[str]:
    """The global and attribute names a function's code uses (through the proxy too)."""
    if hasattr(fn, "attribute") and hasattr(fn, "remote_type"):
        code = fn.attribute("__code__")
        names = code.attribute("co_names") if hasattr(code, "attribute") else ()
        return (
            {n for n in names if isinstance(n, str)} if isinstance(names, tuple | list) else set()
        )
    code = getattr(checks._unwrap(fn), "__code__", None)
    return set(code.co_names) if code is not None else set()


def _hostile_filters(world: dict[str, Any], me: str) -> list[Any]:
    others = [t for t in world["tenants"] if t != me]
    theirs = [d["doc_id"] for d in world["docs"] if d["tenant"] != me]
    mine = [d["doc_id"] for d in world["docs"] if d["tenant"] == me]

    def cond(key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "match": {"value": value}}

    return [
        None,
        {},
        {"should": [cond("tenant", others[0])]},
        {"must": [{"key": "tenant", "match": {"any": world["tenants"]}}]},
        {"must_not": [cond("tenant", me)]},
        {"must": [cond("doc_id", theirs[0])]},
        {"should": [cond("doc_id", theirs[0]), cond("doc_id", mine[0])]},
        {"must": [{"should": [cond("tenant", others[-1])]}]},
        {"must": [cond("doc_id", mine[0])]},
        {"must_not": [cond("doc_id", mine[0])]},
    ]


def _payloads(world: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"tenant": d["tenant"], "doc_id": d["doc_id"], "chunk_id": f"{d['doc_id']}#0",
             "title": d["title"], "text": d["text"]} for d in world["docs"]]  # fmt: skip


def _queries(world: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """(tenant, question, caller filter, what it tests) for every tenant of a random world."""
    out = []
    for me in world["tenants"]:
        own = [d for d in world["docs"] if d["tenant"] == me]
        other = next(d for d in world["docs"] if d["tenant"] != me)
        out.append((me, own[0]["phrase"], None, "own"))
        for flt in _hostile_filters(world, me):
            out.append((me, other["phrase"], flt, "attack"))
        if len(own) > 1:
            only = {"must": [{"key": "doc_id", "match": {"value": own[1]["doc_id"]}}]}
            out.append((me, own[0]["phrase"], only, "narrow"))
    return out


def _roles(world: dict[str, Any]) -> tuple[dict, dict, dict]:
    by_tenant = {v: k for k, v in world["keys"].items()}
    me_t, victim_t = world["tenants"][0], world["tenants"][1]
    victim_doc = next(d for d in world["docs"] if d["tenant"] == victim_t)
    own_doc = next(d for d in world["docs"] if d["tenant"] == me_t)
    return (
        {"key": by_tenant[me_t], "tenant": me_t},
        {"tenant": victim_t, "doc_id": victim_doc["doc_id"], "phrase": victim_doc["phrase"]},
        {"doc_id": own_doc["doc_id"], "phrase": own_doc["phrase"]},
    )
