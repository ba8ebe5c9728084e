"""Checks for lab 06 (multi-tenant RAG): isolation, recall@k, fusion, the placement choice.

The student writes the tenant-scoped search, recall@k, reciprocal rank fusion and the
placement choice; the pure ones are compared with references kept here on random inputs,
and the kit's own implementations handed in are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from infralab.checks import (
    CheckFailed,
    CheckPassed,
    agrees_with_reference,
    check,
    check_close,
    points,
    refuse_kit_function,
    run_student_function,
)
from infralab.rag import evaluate as ev

RRF_K0 = 60


def _reference_recall(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    wanted = set(gold)
    return len(wanted & set(ranked[:k])) / len(wanted)


def _reference_rrf(rankings: Sequence[Sequence[str]], k0: int = RRF_K0) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k0 + rank)
    return [item for item, _ in sorted(scores.items(), key=lambda kv: -kv[1])]


def _reference_choice(plan: pd.DataFrame, budget_ms: float) -> Any:
    fits = plan[plan["latency_ms"] <= budget_ms]
    return None if fits.empty else fits["usd_per_1k_questions"].idxmin()


def _kit() -> list[Callable[..., Any]]:
    from infralab.rag import hybrid

    return [
        ev.recall_at_k,
        ev.reciprocal_rank,
        ev.ndcg_at_k,
        hybrid.reciprocal_rank_fusion,
        hybrid.fuse_hits,
        _reference_recall,
        _reference_rrf,
        _reference_choice,
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


@points(2)
def check_recall_at_k(fn: Any) -> CheckPassed:
    """``fn(ranked_doc_ids, gold_doc_ids, k)`` -> share of gold documents in the top k."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="recall_at_k", sample_args=(["a", "b"], ["b"], 1))
    ids = st.sampled_from([f"d{i}" for i in range(12)])
    tried = agrees_with_reference(
        fn,
        _reference_recall,
        st.tuples(
            st.lists(ids, max_size=12, unique=True),
            st.lists(ids, min_size=1, max_size=4, unique=True),
            st.integers(1, 15),
        ),
        name="recall_at_k",
        hint="Which gold documents appear among the first k ranked? Divide by how many gold "
        "documents there are; k may be larger than the ranking.",
        edge_cases=[(["a", "b", "c"], ["b"], 1), (["x"], ["a", "b"], 5), ([], ["a"], 3)],
    )
    return CheckPassed(f"recall_at_k matches the definition on {tried} rankings.")


@points(2)
def check_rrf(fn: Any) -> CheckPassed:
    """``fn(rankings, k0=60)`` -> ids by fused score, best first, ties in first-seen order."""
    from hypothesis import strategies as st

    refuse_kit_function(fn, _kit(), name="rrf", sample_args=([["a", "b"], ["b", "c"]],))
    ids = st.sampled_from([f"c{i}" for i in range(10)])
    tried = agrees_with_reference(
        fn,
        _reference_rrf,
        st.tuples(st.lists(st.lists(ids, max_size=8, unique=True), max_size=4)),
        name="rrf",
        hint="Each list gives an id 1 / (k0 + its rank), ranks starting at 1; add an id's "
        "shares over all lists; sort by the sum, highest first, keeping first-seen order on "
        "ties (Python's sort is stable).",
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
    want = ev.summarize(per_question)
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
    tried = agrees_with_reference(
        fn,
        _reference_choice,
        _plans(),
        name="choose_placement",
        hint="First keep the placements whose latency fits the budget (a tie with the budget "
        "fits), then take the cheapest of those by name; none fits: None.",
        same=lambda got, want: got == want,
    )
    return CheckPassed(f"choose_placement picks right on {tried} random plans.")


@points(1)
def check_placement(choice: Any, table: pd.DataFrame, latency_budget_ms: float) -> CheckPassed:
    """The cheapest placement whose latency fits the budget (``table`` from ``placements``)."""
    best = _reference_choice(table, latency_budget_ms)
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
