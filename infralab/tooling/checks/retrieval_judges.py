"""Lab 06's retrieval and placement judgements: the public (reference-free) property
judgements of a student's recall@k, reciprocal rank fusion and placement choice, the random
placement plans, and how "your service" is read from the summary table. Used by lab 06's
retrieval and placement checks.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from infralab.tooling.checks import (
    CheckPassed,
    call_number,
    expect,
    public_pass,
    public_rng,
    run_student_function,
    same_twice,
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


YOURS = "your service"


YOURS_TOLERANCE = 0.02  # one query embedded alone vs in a batch can swap near-tied chunks


def _your_service_recall(summary: pd.DataFrame) -> float:
    expect(
        YOURS in summary.index and "recall@5" in summary.columns,
        f"summary has no row {YOURS!r}.",
        f"Add your service's mean recall@5 as a row named {YOURS!r} (see the cell above).",
    )
    value = call_number(lambda: summary.loc[YOURS, "recall@5"], name=f"recall@5 ({YOURS})")
    expect(0 <= value <= 1, f"recall@5 ({YOURS}) = {value:g} is not a share.",
           "Average your recall_at_k over the answerable questions.")  # fmt: skip
    return value


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
