"""Checks for lab 06 (multi-tenant RAG): isolation, a retrieval metric, the placement choice."""

from __future__ import annotations

from typing import Any

import pandas as pd

from infralab.checks import CheckFailed, CheckPassed, check, check_close, run_student_function
from infralab.rag import evaluate as ev

HOSTILE_FILTERS: list[dict[str, Any] | None] = [
    None,
    {"should": [{"key": "tenant", "match": {"value": "lawfirm"}}]},
    {"must": [{"key": "tenant", "match": {"any": ["saas", "lawfirm", "web3"]}}]},
    {"must_not": [{"key": "tenant", "match": {"value": "saas"}}]},
    {"should": [{"key": "doc_id", "match": {"value": "lawfirm-001"}}]},
]


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


def check_recall_at_k(fn: Any) -> CheckPassed:
    """``fn(ranked_doc_ids, gold_doc_ids, k)`` -> share of gold documents in the top k."""
    cases = [
        (["a", "b", "c"], ["b"], 1, 0.0),
        (["a", "b", "c"], ["b"], 2, 1.0),
        (["a", "b", "c", "d"], ["d", "a"], 3, 0.5),
        (["x"], ["a", "b"], 5, 0.0),
    ]
    for ranked, gold, k, want in cases:
        got = run_student_function(fn, ranked, gold, k, name="recall_at_k")
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise CheckFailed(
                f"recall_at_k returned {type(got).__name__}, not a number.",
                "Return a float between 0 and 1.",
            )
        if abs(float(got) - want) > 1e-9:
            raise CheckFailed(
                f"recall_at_k({ranked}, {gold}, {k}) = {got}, expected {want}.",
                "Count the gold documents among ranked[:k] and divide by the number of gold "
                "documents (not by k).",
            )
    return CheckPassed("recall_at_k matches the definition.")


def check_summary(summary: Any, per_question: pd.DataFrame) -> CheckPassed:
    """The student's per-mode table: recall@5 per mode, over answerable questions only."""
    if not isinstance(summary, pd.DataFrame):
        raise CheckFailed(
            f"summary should be a DataFrame, got {type(summary).__name__}.",
            "Use rag.evaluate.summarize(per_question) or build one with groupby('mode').",
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


def check_placement(choice: Any, table: pd.DataFrame, latency_budget_ms: float) -> CheckPassed:
    """The cheapest placement whose latency fits the budget (``table`` from ``placements``)."""
    fits = table[table["latency_ms"] <= latency_budget_ms]
    if fits.empty:
        return check(
            choice is None,
            ok="Right: no placement meets this latency budget.",
            problem=f"No placement meets {latency_budget_ms:.0f} ms, but you chose {choice!r}.",
            hint="Return None when every placement is too slow.",
        )
    best = fits["usd_per_1k_questions"].idxmin()
    if choice not in table.index:
        raise CheckFailed(
            f"{choice!r} is not one of the placements.",
            f"Pick one of: {', '.join(table.index)}.",
        )
    return check(
        choice == best,
        ok=f"Right: {best!r} is the cheapest placement within {latency_budget_ms:.0f} ms.",
        problem=f"{choice!r} is not the cheapest placement that meets {latency_budget_ms:.0f} ms.",
        hint="Filter by latency_ms <= budget first, then take the lowest usd_per_1k_questions.",
    )


def check_unauthorized(response: Any) -> CheckPassed:
    """An ``httpx`` response to a request without a valid key: 401 and nothing else."""
    status = getattr(response, "status_code", None)
    if status is None:
        raise CheckFailed("pass the httpx response object.", "resp = httpx.post(...); check(resp)")
    body = response.json() if status == 401 else None
    return check(
        status == 401 and body == {"error": {"message": "unauthorized", "type": "unauthorized"}},
        ok="A request without a valid key gets 401 and learns nothing else.",
        problem=f"expected 401 with the fixed 'unauthorized' body, got {status}.",
        hint="Send the request with no key or a made-up one.",
    )
