"""Checks for lab 06 (multi-tenant RAG): isolation, recall@k, fusion, the placement choice.

The student writes the tenant-scoped search, recall@k, reciprocal rank fusion and the
placement choice; the pure ones are compared on random inputs with references kept in
``infralab.checks.references.lab06`` (public checks where the references are absent), and the
kit's own implementations handed in are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from infralab import checks
from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    call_number,
    check,
    check_close,
    expect,
    points,
    public_pass,
    public_rng,
    refuse_kit_function,
    run_student_function,
    same_twice,
)
from infralab.rag import evaluate as ev

RRF_K0 = 60  # the lab's constant


def _ref() -> Any:
    return checks.reference_module("lab06")


def _kit() -> list[Callable[..., Any]]:
    from infralab.rag import hybrid

    return [
        ev.recall_at_k,
        ev.reciprocal_rank,
        ev.ndcg_at_k,
        hybrid.reciprocal_rank_fusion,
        hybrid.fuse_hits,
        *([ref.recall_at_k, ref.rrf, ref.choose_placement] if (ref := _ref()) else []),
    ]


HOSTILE_FILTERS: list[dict[str, Any] | None] = [
    None,
    {"should": [{"key": "tenant", "match": {"value": "lawfirm"}}]},
    {"must": [{"key": "tenant", "match": {"any": ["saas", "lawfirm", "web3"]}}]},
    {"must_not": [{"key": "tenant", "match": {"value": "saas"}}]},
    {"should": [{"key": "doc_id", "match": {"value": "lawfirm-001"}}]},
]


@points(2)
def check_scoped_search(fn: Any, index: Any, chunk_owner: dict[str, str]) -> CheckPassed:
    """``fn(index, tenant, question, caller_filter)`` -> hits: never another tenant's chunk,
    and still useful (normal questions find something)."""
    if not callable(fn):
        raise CheckFailed("scoped_search should be a function.", "Define it with `def`.")
    found_any = False
    for tenant in sorted(index.tenants):
        for flt in HOSTILE_FILTERS:
            hits = run_student_function(fn, index, tenant, "policy", flt, name="scoped_search")
            if not isinstance(hits, list):
                raise CheckFailed(
                    f"scoped_search returned {type(hits).__name__}, not a list of hits.",
                    "Return what index.search(...) returns.",
                )
            leaked = [h.chunk_id for h in hits if chunk_owner.get(h.chunk_id) != tenant]
            if leaked:
                raise CheckFailed(
                    f"for tenant {tenant!r} with filter {flt} you returned {leaked[:3]}, "
                    "which belong to another tenant.",
                    "Pass the authenticated tenant to index.search as its own argument; the "
                    "store ANDs it with the caller's filter. Never build the tenant condition "
                    "from the caller's filter.",
                )
            found_any = found_any or bool(hits)
    return check(
        found_any,
        ok="scoped_search keeps every tenant inside its own documents, whatever the filter.",
        problem="scoped_search never returns anything.",
        hint="Isolation is not the same as returning nothing: call index.search(...).",
    )


RECALL_HINT = (
    "Which gold documents appear among the first k ranked? Divide by how many gold documents "
    "there are; k may be larger than the ranking."
)
RRF_HINT = (
    "Each list gives an id 1 / (k0 + its rank), ranks starting at 1; add an id's shares over "
    "all lists; sort by the sum, highest first, keeping first-seen order on ties (Python's sort "
    "is stable)."
)
PLACEMENT_HINT = (
    "First keep the placements whose latency fits the budget (a tie with the budget fits), then "
    "take the cheapest of those by name; none fits: None."
)
IDS = [f"d{i}" for i in range(12)]


def _public_recall(fn: Any) -> CheckPassed:
    """A share in [0, 1]; 0 when no gold document is ranked, 1 when all are in the top k;
    never lower for a larger k; blind to the order of the gold list."""
    name = "recall_at_k"
    rng = public_rng(61)
    for _ in range(40):
        ranked = rng.sample(IDS, rng.randint(0, 12))
        gold = rng.sample(IDS, rng.randint(1, 4))
        k = rng.randint(1, 15)
        got = call_number(fn, ranked, gold, k, name=name)
        expect(0 <= got <= 1, f"{name}({ranked}, {gold}, {k}) returned {got:g}, not a share.",
               RECALL_HINT)  # fmt: skip
        more = call_number(fn, ranked, gold, k + 1, name=name)
        expect(more >= got - 1e-12, "Looking at more ranked documents lowered the recall.",
               RECALL_HINT)  # fmt: skip
        expect(
            math.isclose(call_number(fn, ranked, gold[::-1], k, name=name), got),
            "The order of the gold documents changed the recall.",
            RECALL_HINT,
        )
        others = [i for i in IDS if i not in gold]
        expect(call_number(fn, others, gold, 12, name=name) == 0,
               "With no gold document in the ranking the recall should be 0.", RECALL_HINT)  # fmt: skip
        found = gold + [i for i in ranked if i not in gold]
        expect(math.isclose(call_number(fn, found, gold, len(gold), name=name), 1.0),
               "With every gold document in the top k the recall should be 1.", RECALL_HINT)  # fmt: skip
        same_twice(fn, (ranked, gold, k), got, name=name)
    return public_pass(f"{name} is a share that is 0 with no hit, 1 with all, and grows with k")


def _public_rrf(fn: Any) -> CheckPassed:
    """A list holding every id of the rankings exactly once; empty in, empty out; an id first
    in every ranking comes first; a ranking on its own keeps its order."""
    name = "rrf"
    rng = public_rng(62)
    pool = [f"c{i}" for i in range(10)]

    def fuse(rankings: list[list[str]]) -> list[str]:
        got = run_student_function(fn, rankings, name=name)
        expect(isinstance(got, list), f"{name} returned {type(got).__name__}, not a list.",
               RRF_HINT)  # fmt: skip
        return got

    expect(fuse([]) == [], "Fusing no rankings should give an empty list.", RRF_HINT)
    for _ in range(40):
        rankings = [rng.sample(pool, rng.randint(0, 8)) for _ in range(rng.randint(1, 4))]
        got = fuse(rankings)
        union = {i for r in rankings for i in r}
        expect(
            len(got) == len(set(got)) and set(got) == union,
            f"{name}({rankings}) returned {got}: it should hold every id of the rankings once.",
            RRF_HINT,
        )
        expect(fuse([rankings[0]]) == rankings[0], "One ranking alone should keep its order.",
               RRF_HINT)  # fmt: skip
        top = rng.choice(pool)
        led = [[top, *[i for i in r if i != top]] for r in rankings]
        expect(fuse(led)[0] == top, "An id ranked first everywhere should come first.", RRF_HINT)
        same_twice(fn, (rankings,), got, name=name)
    return public_pass(f"{name} keeps every id once, puts a unanimous first first, and keeps a "
                       "lone ranking's order")  # fmt: skip


def _public_placement(fn: Any) -> CheckPassed:
    """A placement of the plan within the budget, or None when none fits; a larger budget
    never ends on a dearer placement."""
    name = "choose_placement"
    rng = public_rng(63)
    names = ["all serverless", "GPU generate", "all GPU", "CPU VM", "edge"]
    for _ in range(40):
        n = rng.randint(1, 5)
        plan = pd.DataFrame(
            {"latency_ms": [rng.uniform(1, 5000) for _ in range(n)],
             "usd_per_1k_questions": rng.sample([round(0.01 * i, 2) for i in range(1, 500)], n)},
            index=names[:n],
        )  # fmt: skip
        budget = rng.uniform(1, 6000)
        got = run_student_function(fn, plan, budget, name=name)
        fits = plan[plan["latency_ms"] <= budget]
        if fits.empty:
            expect(got is None, f"No placement meets {budget:.0f} ms, but you chose {got!r}.",
                   PLACEMENT_HINT)  # fmt: skip
            continue
        expect(got in fits.index,
               f"{got!r} is not a placement of the plan that meets {budget:.0f} ms.",
               PLACEMENT_HINT)  # fmt: skip
        wide = run_student_function(fn, plan, 1e9, name=name)
        expect(
            wide in plan.index
            and plan.loc[wide, "usd_per_1k_questions"] <= plan.loc[got, "usd_per_1k_questions"],
            "A larger budget ended on a dearer placement.",
            PLACEMENT_HINT,
        )
        same_twice(fn, (plan, budget), got, name=name)
    return public_pass(f"{name} stays within the budget and never gets dearer with more room")


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
        return public_pass("summary has a recall@5 share for every mode")
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
    return CheckPassed(
        "recall@5 per mode is right: "
        + ", ".join(f"{m} {want.loc[m, 'recall@5']:.3f}" for m in want.index)
    )


def _plans():
    from hypothesis import strategies as st

    names = ["all serverless", "GPU generate", "all GPU", "CPU VM", "edge"]

    def build(args: tuple[list[tuple[float, float]], float]) -> tuple[pd.DataFrame, float]:
        rows, budget = args
        plan = pd.DataFrame(
            rows, columns=["latency_ms", "usd_per_1k_questions"], index=names[: len(rows)]
        )
        return plan, budget

    row = st.tuples(st.floats(1, 5000), st.floats(0.001, 50))
    return st.tuples(
        st.lists(row, min_size=1, max_size=5, unique_by=lambda r: r[1]), st.floats(1, 6000)
    ).map(build)


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


@points(1)
def check_unauthorized(response: Any) -> CheckPassed:
    """An ``httpx`` response to a request without a valid key: 401 and nothing else."""
    status = getattr(response, "status_code", None)
    if status is None:
        raise CheckFailed("pass the httpx response object.", "resp = httpx.post(...); check(resp)")
    from infralab.rag.cloud_app import UNAUTHORIZED  # the app's one fixed body

    body = response.json() if status == 401 else None
    return check(
        status == 401 and body == UNAUTHORIZED,
        ok="A request without a valid key gets 401 and learns nothing else.",
        problem=f"expected 401 with the fixed 'unauthorized' body, got {status}.",
        hint="Send the request with no key or a made-up one.",
    )
