"""What lab 06's checks run beside a student's code: a probe index, attack runners, a watch.

Why apart from :mod:`infralab.engines.rag.tenancy`: that module is the mechanism (the key to tenant,
the scope filter, the search service, its leaky variants, the attack suite); this one is the
harness that runs a student's version of each on random documents and hands back plain data
for the grader, noting which of the kit's own lab functions ran (so a check can refuse a
solution that only calls the kit).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from infralab.engines.rag.hybrid import RagIndex
from infralab.engines.rag.tenancy import (
    payload_of,
    scope_filter,
    scoped_search,
    search_app,
    standard_attack,
    tenant_for_key,
)


def _kit_codes(*, but: tuple[str, ...] = ()) -> set[Any]:
    """The code objects of the functions lab 06 asks students to write themselves."""
    fns = [tenant_for_key, scope_filter, scoped_search, search_app, standard_attack]
    return {fn.__code__ for fn in fns if fn.__name__ not in but}


@contextlib.contextmanager
def _watch(codes: set[Any]) -> Iterator[list[str]]:
    """Names of the ``codes`` entered meanwhile, in this thread and in threads started now
    (a test client's server threads): how a probe tells a student's code from the kit's."""
    entered: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            entered.append(frame.f_code.co_name)

    previous, previous_threads = sys.getprofile(), threading.getprofile()
    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        yield entered
    finally:
        sys.setprofile(previous)
        threading.setprofile(previous_threads)  # type: ignore[arg-type]


def probe_index(docs: Sequence[Mapping[str, str]]) -> RagIndex:
    """A small in-memory index of plain records (``tenant``, ``doc_id``, ``title``, ``text``)
    embedded with the model-free stand-in: what a check builds from its random documents."""
    from infralab.engines.models.standin import HashEmbedder
    from infralab.engines.rag.corpus import Document

    documents = [
        Document(str(d["doc_id"]), str(d["tenant"]), str(d["title"]), str(d["text"])) for d in docs
    ]
    return RagIndex.build(documents, HashEmbedder(), size=60, overlap=10, layout="per_tenant")


def probe_hits(
    search: Callable[..., Any],
    docs: Sequence[Mapping[str, str]],
    queries: Sequence[tuple[str, str, Any]],
) -> list[list[dict[str, Any]]]:
    """Build :func:`probe_index` from ``docs`` and run ``search(index, tenant, question,
    caller_filter)`` for each query: ``{"hits": [payloads per query], "kit": [the kit's own
    lab functions it entered]}``, plain data for the check."""
    index = probe_index(docs)
    out = []
    with _watch(_kit_codes()) as kit:
        for tenant, question, flt in queries:
            hits = search(index, tenant, question, flt)
            out.append([payload_of(h) for h in hits] if isinstance(hits, list) else [repr(hits)])
    return {"hits": out, "kit": sorted(set(kit))}


def run_attack(
    attack: Callable[..., Any],
    docs: Sequence[Mapping[str, str]],
    keys: Mapping[str, str],
    me: Mapping[str, str],
    victim: Mapping[str, str],
    leak: str | None,
) -> dict[str, str]:
    """Run a student's ``attack(client, me, victim)`` against the kit's sound server
    (``leak=None``) or a leaky one, through an httpx client; returns what happened as data:
    ``{"outcome": "held" | "raised", "type", "message", "kit"}`` (``kit``: whether the attack
    ran the kit's own :func:`standard_attack`)."""
    from fastapi.testclient import TestClient

    app = search_app(probe_index(docs), keys, leak=leak)
    out = {"outcome": "held", "type": "", "message": ""}
    with TestClient(app, raise_server_exceptions=False) as client:
        with _watch({standard_attack.__code__}) as kit:
            try:
                attack(client, dict(me), dict(victim))
            except AssertionError as exc:
                out = {"outcome": "raised", "type": "AssertionError", "message": str(exc)[:300]}
            except Exception as exc:  # noqa: BLE001 - reported to the check as data
                out = {"outcome": "raised", "type": type(exc).__name__, "message": str(exc)[:300]}
    return {**out, "kit": sorted(set(kit))}


def attack_app(
    make_app: Callable[..., Any],
    docs: Sequence[Mapping[str, str]],
    keys: Mapping[str, str],
    me: Mapping[str, str],
    victim: Mapping[str, str],
    own: Mapping[str, str],
) -> dict[str, Any]:
    """Build ``make_app(index, keys)`` on :func:`probe_index` (``docs``), run
    :func:`standard_attack` on it, and ask it one honest question (``own``: a phrase and the
    document of ``me``'s tenant that holds it); the outcome as plain data for a check, with
    ``kit``: the kit's own lab functions the app ran."""
    index = probe_index(docs)
    out: dict[str, Any] = {"outcome": "held", "message": "", "status": None, "docs": []}
    with _watch(_kit_codes(but=("standard_attack",))) as kit:
        _attack_app(make_app(index, dict(keys)), me, victim, own, out)
    out["kit"] = sorted(set(kit))
    return out


def _attack_app(
    app: Any,
    me: Mapping[str, str],
    victim: Mapping[str, str],
    own: Mapping[str, str],
    out: dict[str, Any],
) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as client:
        try:
            standard_attack(client, me, victim)
        except AssertionError as exc:
            out.update(outcome="leaked", message=str(exc)[:300])
        except Exception as exc:  # noqa: BLE001 - reported to the check as data
            out.update(outcome="crashed", message=f"{type(exc).__name__}: {exc}"[:300])
        resp = client.post(
            "/search", headers={"X-API-Key": me["key"]}, json={"question": own["phrase"]}
        )
        out["status"] = resp.status_code
        if resp.status_code == 200:
            try:
                out["docs"] = [str(h.get("doc_id")) for h in resp.json().get("hits", [])]
            except (ValueError, AttributeError):
                out["docs"] = []
