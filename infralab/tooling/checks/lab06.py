"""Checks for lab 06 (multi-tenant RAG): tenant scope from the API key, an attack that proves
it holds, fusion, recall@k, the placement choice.

The student writes the key -> tenant mapping, the scope filter, the scoped search, a FastAPI
server, an attack suite, reciprocal rank fusion, recall@k and the placement choice. The
isolation checks draw random tenants, documents and keys (hypothesis) and judge here, in the
grader, what comes back: a filter is evaluated with :func:`infralab.engines.rag.tenancy.filter_matches`,
a search and a server run on a small index built in the student's kernel from the check's
documents, and an attack suite must pass against the kit's sound server and fail against each
deliberately leaky one (:data:`infralab.engines.rag.tenancy.LEAKS`). The pure functions are compared
on random inputs with references kept in ``infralab.tooling.checks.references.lab06`` (public checks
where the references are absent); the kit's own implementations handed in are refused.

The judgements behind these checks live beside them: ``tenant_world_probes`` (random tenants,
documents, keys and the probes tried on them) and ``retrieval_judges`` (recall, fusion,
placement); this module is the list of public checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from infralab.engines.rag import evaluate as ev
from infralab.tooling import checks
from infralab.tooling.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    check_close,
    expect,
    points,
    public_pass,
    refuse_kit_function,
    run_beside,
    run_student_function,
)
from infralab.tooling.checks.retrieval_judges import (
    PLACEMENT_HINT,
    RECALL_HINT,
    RRF_HINT,
    YOURS_TOLERANCE,
    _plans,
    _public_placement,
    _public_recall,
    _public_rrf,
    _your_service_recall,
)
from infralab.tooling.checks.tenant_world_probes import (
    ATTACK_HINT,
    KEY_HINT,
    SCOPE_HINT,
    SEARCH_HINT,
    SERVER_HINT,
    _code_names,
    _for_random,
    _hostile_filters,
    _kit_tenancy,
    _names,
    _payloads,
    _queries,
    _refuse_kit_calls,
    _roles,
    _world_strategy,
)

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "check_attack",
    "check_choose_placement",
    "check_make_app",
    "check_placement",
    "check_recall_at_k",
    "check_rrf",
    "check_scope_filter",
    "check_scoped_search",
    "check_summary",
    "check_tenant_for_key",
]


RRF_K0 = 60  # the lab's constant


def _ref() -> Any:
    return checks.reference_module("lab06")


def _kit() -> list[Callable[..., Any]]:
    from infralab.engines.rag import hybrid

    return [
        ev.recall_at_k,
        ev.reciprocal_rank,
        ev.ndcg_at_k,
        hybrid.reciprocal_rank_fusion,
        hybrid.fuse_hits,
        *([ref.recall_at_k, ref.rrf, ref.choose_placement] if (ref := _ref()) else []),
    ]


# ---------------------------------------------------------------- 1. key -> tenant


@points(2)
def check_tenant_for_key(fn: Any) -> CheckPassed:
    """``fn(keys, presented)`` -> the tenant of the presented key, or None for a missing,
    empty or unknown one (prefixes, suffixes and other cases included); compared in constant
    time with ``hmac.compare_digest``."""
    from hypothesis import strategies as st

    name = "tenant_for_key"
    refuse_kit_function(fn, _kit_tenancy(), name=name, sample_args=({"k-1": "a"}, "k-1"),
                        hint=KEY_HINT)  # fmt: skip
    ref = _ref()

    @st.composite
    def case(draw: Any) -> tuple[dict[str, str], Any]:
        n = draw(st.integers(1, 4))
        tenants = _names(draw, st, n, (3, 8))
        secrets = draw(st.lists(st.text(min_size=6, max_size=24), min_size=n, max_size=n,
                                unique=True))  # fmt: skip
        keys = dict(zip(secrets, tenants, strict=True))
        real = draw(st.sampled_from(sorted(keys)))
        presented = draw(st.sampled_from([
            real, real, None, "", real[:-1], real + "x", real.upper() if real.upper() != real
            else real + "X", " " + real, draw(st.text(min_size=1, max_size=20)),
        ]))  # fmt: skip
        return keys, presented

    def test(args: tuple[dict[str, str], Any]) -> None:
        keys, presented = args
        got = run_student_function(fn, dict(keys), presented, name=name)
        # the reference where present; else the definition itself (exact match or nothing)
        want = ref.tenant_for_key(keys, presented) if ref else (keys.get(presented) or None)
        expect(got == want, f"{name}(<{len(keys)} keys>, {presented!r}) returned {got!r}.",
               KEY_HINT)  # fmt: skip

    tried = _for_random(case(), test, 60)
    if "compare_digest" not in _code_names(fn):
        raise CheckFailed(
            f"{name} maps keys right but does not compare them with compare_digest.",
            "`==` stops at the first different byte, so its timing leaks how much of a key "
            "matched; use hmac.compare_digest (or secrets.compare_digest) on every stored key.",
        )
    text = (f"{name} maps the right key to its tenant and refuses every bad one, on {tried} "
            "random key sets, with a constant-time comparison")  # fmt: skip
    return CheckPassed(text + ".") if ref else public_pass(text)


# ---------------------------------------------------------------- 2. the scope filter


@points(2)
def check_scope_filter(fn: Any) -> CheckPassed:
    """``fn(tenant, caller_filter)`` -> a filter (Qdrant JSON) that lets through exactly the
    tenant's chunks that the caller's filter lets through: never another tenant's, whatever
    the caller sent, and the caller's narrowing kept."""
    from hypothesis import strategies as st

    from infralab.engines.rag.tenancy import filter_matches

    name = "scope_filter"
    refuse_kit_function(fn, _kit_tenancy(), name=name, sample_args=("a", None), hint=SCOPE_HINT)

    @st.composite
    def case(draw: Any) -> tuple[dict[str, Any], str, Any]:
        world = draw(_world_strategy())
        me = draw(st.sampled_from(world["tenants"]))
        return world, me, draw(st.sampled_from(_hostile_filters(world, me)))

    def test(args: tuple[dict[str, Any], str, Any]) -> None:
        world, me, caller = args
        got = run_student_function(fn, me, caller, name=name)
        expect(isinstance(got, dict), f"{name}({me!r}, {caller}) returned "
               f"{type(got).__name__}, not a filter dict.", SCOPE_HINT)  # fmt: skip
        for p in _payloads(world):
            try:
                passes = filter_matches(got, p)
            except ValueError as exc:
                raise CheckFailed(f"{name}({me!r}, {caller}) returned a filter the store cannot "
                                  f"read: {exc}", SCOPE_HINT) from None  # fmt: skip
            if passes and p["tenant"] != me:
                raise CheckFailed(f"{name}({me!r}, {caller}) lets {p['doc_id']!r} of tenant "
                                  f"{p['tenant']!r} through.", SCOPE_HINT)  # fmt: skip
            want = p["tenant"] == me and filter_matches(caller, p)
            if passes != want:
                raise CheckFailed(f"{name}({me!r}, {caller}) "
                                  f"{'keeps' if passes else 'drops'} {p['doc_id']!r} of the "
                                  "caller's own tenant: the caller's filter should narrow, "
                                  "no more and no less.", SCOPE_HINT)  # fmt: skip

    tried = _for_random(case(), test, 60)
    text = (f"{name} keeps every search inside its tenant and honours the caller's narrowing, "
            f"on {tried} random tenants and hostile filters")  # fmt: skip
    return CheckPassed(text + ".") if _ref() else public_pass(text)


# ---------------------------------------------------------------- 4. the scoped search


@points(3)
def check_scoped_search(fn: Any) -> CheckPassed:
    """``fn(index, tenant, question, caller_filter)`` on random tenants and documents: never
    another tenant's document (hostile filters, another tenant's words), a tenant's own
    phrase finds its document, and the caller's filter narrows."""
    from infralab.engines.rag import tenancy_probes

    name = "scoped_search"
    if not callable(fn):
        raise CheckFailed(f"{name} should be a function.", "Define it with `def`.")
    refuse_kit_function(fn, _kit_tenancy(), name=name, hint=SEARCH_HINT)

    def test(world: dict[str, Any]) -> None:
        owner = {d["doc_id"]: d["tenant"] for d in world["docs"]}
        queries = _queries(world)
        answers = run_student_function(run_beside, fn, tenancy_probes.probe_hits, fn,
                                       world["docs"], [(t, q, f) for t, q, f, _ in queries],
                                       name=name, hint=SEARCH_HINT)  # fmt: skip
        _refuse_kit_calls(answers, name, SEARCH_HINT)
        for (me, question, flt, kind), hits in zip(queries, answers["hits"], strict=True):
            docs = [h.get("doc_id") if isinstance(h, dict) else h for h in hits]
            foreign = [d for d in docs if owner.get(d) != me]
            expect(not foreign, f"for tenant {me!r}, asking {question!r} with filter {flt}, "
                   f"{name} returned {foreign[:2]} of another tenant.", SEARCH_HINT)  # fmt: skip
            if kind == "own":
                want = next(d["doc_id"] for d in world["docs"] if d["phrase"] == question)
                expect(want in docs, f"for tenant {me!r}, {name} did not find its own document "
                       f"{want!r} for its own words {question!r}.", SEARCH_HINT)  # fmt: skip
            if kind == "narrow":
                allowed = flt["must"][0]["match"]["value"]
                expect(set(docs) <= {allowed}, f"with the filter {flt} {name} returned {docs}: "
                       "the caller's filter should narrow the search.", SEARCH_HINT)  # fmt: skip

    tried = _for_random(_world_strategy(), test, 12)
    return CheckPassed(f"{name} stays inside the tenant, finds its own documents and honours "
                       f"the caller's narrowing, on {tried} random sets of tenants.")  # fmt: skip


# ---------------------------------------------------------------- 5. the server


@points(2)
def check_make_app(make_app: Any) -> CheckPassed:
    """``make_app(index, keys)`` -> a FastAPI app that survives the kit's attack suite on
    random tenants and documents, and still answers its own tenant's question."""
    from infralab.engines.rag import tenancy_probes

    name = "make_app"
    refuse_kit_function(make_app, _kit_tenancy(), name=name, hint=SERVER_HINT)

    def test(world: dict[str, Any]) -> None:
        me, victim, own = _roles(world)
        out = run_student_function(run_beside, make_app, tenancy_probes.attack_app, make_app,
                                   world["docs"], world["keys"], me, victim, own,
                                   name=name, hint=SERVER_HINT)  # fmt: skip
        _refuse_kit_calls(out, name, SERVER_HINT)
        expect(out.get("outcome") == "held", f"The kit's attack got past your server: "
               f"{out.get('message')}", SERVER_HINT)  # fmt: skip
        expect(out.get("status") == 200 and own["doc_id"] in out.get("docs", []),
               f"Your server answered its own tenant's question with {out.get('status')} and "
               f"{out.get('docs')}, without the document that holds those words.", SERVER_HINT)  # fmt: skip

    tried = _for_random(_world_strategy(), test, 5)
    return CheckPassed(f"Your server held against the kit's attacks and answered honest "
                       f"questions, on {tried} random sets of tenants and keys.")  # fmt: skip


# ---------------------------------------------------------------- 6. the attack
@points(3)
def check_attack(attack: Any) -> CheckPassed:
    """``attack(client, me, victim)`` passes against the kit's sound server and raises
    AssertionError against each deliberately leaky one (:data:`tenancy.LEAKS`)."""
    from infralab.engines.rag import tenancy, tenancy_probes

    name = "attack"
    refuse_kit_function(attack, _kit_tenancy(), name=name, hint=ATTACK_HINT)
    caught: set[str] = set()

    def test(world: dict[str, Any]) -> None:
        me, victim, _ = _roles(world)
        for leak in [None, *tenancy.LEAKS]:
            try:
                out = run_beside(attack, tenancy_probes.run_attack, attack, world["docs"],
                                 world["keys"], me, victim, leak)  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - the kit helper failed: the kernel's state
                if getattr(exc, "fatal", False):
                    raise
                raise CheckFailed(f"running your attack failed: {exc}"[:300], ATTACK_HINT) from None
            _refuse_kit_calls(out, name, ATTACK_HINT)
            kind, message = out.get("type", ""), out.get("message", "")
            if kind == "NotImplementedError":
                raise CheckFailed(f"{name} is still the placeholder.",
                                  "Replace `raise NotImplementedError` with code.")  # fmt: skip
            if leak is None:
                expect(out.get("outcome") == "held", "Your attack fails against a sound server "
                       f"({kind}: {message}).", "Assert only what a sound server must do: no "
                       "hit of the victim, 401 for a bad key; a refused request (4xx) is not a "
                       "leak.")  # fmt: skip
                continue
            expect(out.get("outcome") == "raised" and kind == "AssertionError",
                   f"Your attack passes against a server that {tenancy.LEAKS[leak]}"
                   + (f" (it raised {kind}: {message})." if kind else "."), ATTACK_HINT)  # fmt: skip
            caught.add(leak)

    tried = _for_random(_world_strategy(), test, 3)
    return CheckPassed(f"Your attack passes against the sound server and catches all "
                       f"{len(caught)} leaky ones, on {tried} random sets of tenants.")  # fmt: skip


@points(2)
def check_recall_at_k(fn: Any) -> CheckPassed:
    """``fn(ranked_doc_ids, gold_doc_ids, k)`` -> share of gold documents in the top k."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="recall_at_k", sample_args=(["a", "b"], ["b"], 1))
    ref = _ref()
    if ref is None:
        return _public_recall(fn)
    ids = st.sampled_from([f"d{i}" for i in range(12)])
    tried = agrees_with_reference(
        fn,
        ref.recall_at_k,
        st.tuples(
            st.lists(ids, max_size=12, unique=True),
            st.lists(ids, min_size=1, max_size=4, unique=True),
            st.integers(1, 15),
        ),
        name="recall_at_k",
        hint=RECALL_HINT,
        edge_cases=[(["a", "b", "c"], ["b"], 1), (["x"], ["a", "b"], 5), ([], ["a"], 3)],
    )
    return CheckPassed(f"recall_at_k matches the definition on {tried} rankings.")


@points(2)
def check_rrf(fn: Any) -> CheckPassed:
    """``fn(rankings, k0=60)`` -> ids by fused score, best first, ties in first-seen order."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="rrf", sample_args=([["a", "b"], ["b", "c"]],))
    ref = _ref()
    if ref is None:
        return _public_rrf(fn)
    ids = st.sampled_from([f"c{i}" for i in range(10)])
    tried = agrees_with_reference(
        fn,
        ref.rrf,
        st.tuples(st.lists(st.lists(ids, max_size=8, unique=True), max_size=4)),
        name="rrf",
        hint=RRF_HINT,
        edge_cases=[([["a", "b"], ["b", "a"]],), ([],), ([["x"], [], ["y", "x"]],)],
        same=lambda got, want: isinstance(got, list) and list(got) == want,
    )
    return CheckPassed(f"rrf fuses rankings as reciprocal rank fusion does, on {tried} cases.")


@points(1)
def check_summary(summary: Any, per_question: pd.DataFrame) -> CheckPassed:
    """The student's per-mode table: recall@5 per mode, over answerable questions only."""
    if not isinstance(summary, pd.DataFrame):
        raise CheckFailed(
            f"summary should be a DataFrame, got {type(summary).__name__}.",
            "Group the answerable questions by mode and average the metric columns.",
        )
    ref = _ref()
    if ref is None:
        modes = set(per_question["mode"]) if "mode" in per_question else set()
        expect(
            "recall@5" in summary.columns and modes <= set(summary.index),
            "summary needs a 'recall@5' column and one row per mode.",
            "Index the table by mode and keep a 'recall@5' column.",
        )
        for mode in modes:
            value = call_number(lambda m=mode: summary.loc[m, "recall@5"], name="recall@5")
            expect(0 <= value <= 1, f"recall@5 ({mode}) = {value:g} is not a share.",
                   "Average over answerable questions only.")  # fmt: skip
        _your_service_recall(summary)
        return public_pass("summary has a recall@5 share for every mode and for your service")
    want = ref.summary(per_question)
    for mode in want.index:
        if mode not in summary.index or "recall@5" not in summary.columns:
            raise CheckFailed(
                f"summary has no recall@5 for mode {mode!r}.",
                "Index the table by mode and keep a 'recall@5' column.",
            )
        check_close(
            summary.loc[mode, "recall@5"],
            float(want.loc[mode, "recall@5"]),
            rel=0.01,
            name=f"recall@5 ({mode})",
            hint="Average over answerable questions only: unanswerable ones have no gold documents.",
        )
    yours = _your_service_recall(summary)
    hybrid = float(want.loc["hybrid", "recall@5"])
    expect(
        abs(yours - hybrid) <= YOURS_TOLERANCE,
        f"recall@5 of your service is {yours:.3f}, {abs(yours - hybrid):.3f} away from the "
        f"kit's hybrid search over the same questions ({YOURS_TOLERANCE} allowed).",
        "Your scoped_search fuses a dense and a lexical search of 20 each inside the tenant: "
        "rank the documents of its hits (first chunk first) and score them with your "
        "recall_at_k, over the answerable questions only.",
    )
    return CheckPassed(
        "recall@5 per mode is right: "
        + ", ".join(f"{m} {want.loc[m, 'recall@5']:.3f}" for m in want.index)
        + f"; your service {yours:.3f}"
    )


@points(2)
def check_choose_placement(fn: Any) -> CheckPassed:
    """``fn(plan, budget_ms)`` -> the cheapest placement within the budget, or None."""
    sample = pd.DataFrame(
        {"latency_ms": [100.0, 900.0], "usd_per_1k_questions": [2.0, 1.0]}, index=["a", "b"]
    )
    refuse_kit_function(fn, _kit(), name="choose_placement", sample_args=(sample, 500.0))
    ref = _ref()
    if ref is None:
        return _public_placement(fn)
    tried = agrees_with_reference(
        fn,
        ref.choose_placement,
        _plans(),
        name="choose_placement",
        hint=PLACEMENT_HINT,
        same=lambda got, want: got == want,
    )
    return CheckPassed(f"choose_placement picks right on {tried} random plans.")


@points(1)
def check_placement(choice: Any, table: pd.DataFrame, latency_budget_ms: float) -> CheckPassed:
    """The cheapest placement whose latency fits the budget (``table`` from ``placements``)."""
    ref = _ref()
    if ref is None:
        fits = table[table["latency_ms"] <= latency_budget_ms]
        if choice is None:
            expect(fits.empty, f"You chose no placement, but some meet {latency_budget_ms:.0f} ms.",
                   "Return None only when every placement is too slow.")  # fmt: skip
            return public_pass("Right: no placement meets this latency budget")
        expect(choice in table.index, f"{choice!r} is not one of the placements.",
               f"Pick one of: {', '.join(table.index)}.")  # fmt: skip
        expect(choice in fits.index, f"{choice!r} does not meet {latency_budget_ms:.0f} ms.",
               "Filter by latency first, then compare prices.")  # fmt: skip
        return public_pass(f"{choice!r} meets the {latency_budget_ms:.0f} ms budget")
    best = ref.choose_placement(table, latency_budget_ms)
    if best is None:
        return check(
            choice is None,
            ok="Right: no placement meets this latency budget.",
            problem=f"No placement meets {latency_budget_ms:.0f} ms, but you chose {choice!r}.",
            hint="Return None when every placement is too slow.",
        )
    if choice not in table.index:
        raise CheckFailed(
            f"{choice!r} is not one of the placements.",
            f"Pick one of: {', '.join(table.index)}.",
        )
    return check(
        choice == best,
        ok=f"Right: {best!r} is the cheapest placement within {latency_budget_ms:.0f} ms.",
        problem=f"{choice!r} is not the cheapest placement that meets {latency_budget_ms:.0f} ms.",
        hint="Filter by latency first, then compare prices.",
    )
