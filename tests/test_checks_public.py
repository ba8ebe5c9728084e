"""The public checks: what each graded check does in the student release, where the folder
``infralab/tooling/checks/references`` is absent.

With the references hidden (``reference_module`` returning None), the solution's functions
pass with the public note, the untouched student copies fail with a hint, a constant fails,
and nothing in a check module repeats the references' code.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from test_checks_labs import _run_graph_constant, _run_graph_one_by_one, notebook_function

from infralab.economics.costs import billing
from infralab.tooling import checks
from infralab.tooling.checks import (
    PUBLIC_NOTE,
    CheckFailed,
    graded_checks,
    lab02,
    lab03,
    lab04,
    lab05,
    lab06,
    lab07,
    lab08,
    lab10,
    lesson01,
)

ROOT = Path(__file__).resolve().parents[1]
CHECK_MODULES = {
    "lab02": lab02,
    "lab03": lab03,
    "lab04": lab04,
    "lab05": lab05,
    "lab06": lab06,
    "lab07": lab07,
    "lab08": lab08,
    "lab10": lab10,
    "lesson01": lesson01,
}


@pytest.fixture()
def release(monkeypatch):
    """The student release: no references."""
    monkeypatch.setattr(checks, "reference_module", lambda name: None)


# (lab, student function, check, [constants and other shortcuts the public check refuses])
CASES = [
    ("02", "validate_request", lab02.check_validate_request,
     [lambda body: ["x"], lambda body: body["input"]]),
    ("02", "load_summary", lab02.check_load_summary,
     [lambda lat, wall: {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "throughput_rps": 10.0},
      lambda lat, wall: None]),
    ("02", "lambda_bill_at_memory", lab02.check_lambda_bill_at_memory,
     [lambda r, c, mb: {"vcpu_share": 1.0, "billed_ms": 50, "usd": 1.0}]),
    ("03", "worst_cosine", lab03.check_worst_cosine, [lambda a, b: 0.99]),
    ("03", "predict_crossover", lab03.check_predict_crossover,
     [lambda *a: None, lambda *a: 64, lambda h, *a: max(h) if h else None]),
    ("03", "int8_matmul", lab03.check_int8_matmul, [lambda a, b: a @ b]),
    ("04", "kv_cache_bytes", lab04.check_kv_cache_bytes, [lambda *a: 46080]),
    ("04", "cost_per_million", lab04.check_cost_per_million, [lambda p, t, u: 0.5]),
    ("05", "gpu_cost_per_1k", lab05.check_cost_per_1k,
     [lambda p, r, u: 0.01, functools.partial(billing.unit_cost, per=1000.0)]),
    ("05", "break_even_requests_per_day", lab05.check_break_even_function,
     [lambda a, g: 430_400.0]),
    ("05", "trap_utilization", lab05.check_trap_function, [lambda p, r, a: 0.3]),
    ("06", "recall_at_k", lab06.check_recall_at_k, [lambda r, g, k: 1.0]),
    ("06", "rrf", lab06.check_rrf, [lambda r, k0=60: ["c1", "c2"]]),
    ("06", "tenant_for_key", lab06.check_tenant_for_key,
     [lambda keys, key: "saas", lambda keys, key: keys.get(key)]),
    ("06", "scope_filter", lab06.check_scope_filter,
     [lambda t, c: c or {}, lambda t, c: {"must": [{"key": "tenant", "match": {"value": t}}]}]),
    ("06", "choose_placement", lab06.check_choose_placement,
     [lambda plan, budget: plan.index[0]]),
    ("07", "cost_per_customer", lab07.check_cost_per_customer, [lambda usd, n: 30.0]),
    ("07", "allowed", lab07.check_constraint_filter,
     [lambda sc, b: True, lambda sc, b: b.monthly_usd < float("inf")]),
    ("07", "cheapest_allowed", lab07.check_cheapest,
     [lambda sc, bills: None, lambda sc, bills: bills[0] if bills else None]),
    ("07", "flip_point", lab07.check_flip_point,
     [lambda c, b, f: None, lambda c, b, f: 2.0]),
    ("08", "checkpoint_interval", lab08.check_checkpoint_interval,
     [lambda c, m: 1.3, lambda c, m: (c * m) ** 0.5 if c > 0 and m > 0 else 1 / 0]),
    ("08", "checkpoint_interval", lab08.check_interval_waste,
     [lambda c, m: 1.3, lambda c, m: (c * m) ** 0.5 / 4]),
    ("08", "simulate_waste", lab08.check_simulate_waste,
     [lambda *a: 12.0, lambda w, i, c, m, r, n, s: (w // i) * c]),
    ("08", "first_fit", lab08.check_first_fit,
     [lambda d, n: [0] * len(d), lambda d, n: [None] * len(d),
      lambda d, n: [i % n for i in range(len(d))]]),
    ("10", "critical_path_ms", lab10.check_critical_path,
     [lambda d, a: 130.0, lambda d, a: sum(d.values()), lambda d, a: max(d.values(), default=0)]),
    ("10", "would_exceed", lab10.check_would_exceed,
     [lambda b, c, e, x: None, lambda b, c, e, x: "ms"]),
    ("10", "run_graph", lab10.check_run_graph, [_run_graph_constant, _run_graph_one_by_one]),
]  # fmt: skip
IDS = [f"lab{lab}-{name}" for lab, name, _, _ in CASES]


def test_every_function_check_of_every_lab_has_a_public_case():
    covered = {check.__name__ for _, _, check, _ in CASES}
    for module in CHECK_MODULES.values():
        for name, fn in graded_checks(module).items():
            first = next(iter(inspect.signature(fn).parameters))
            if first in {"fn", *(n for _, n, _, _ in CASES)} and name != "check_scoped_search":
                assert name in covered, name


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_the_solution_passes_the_public_checks(release, lab, name, check, gamed):
    out = check(notebook_function(lab, name))
    assert "✓" in repr(out) and out.endswith(PUBLIC_NOTE), out


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_the_untouched_student_copy_fails_the_public_checks(release, lab, name, check, gamed):
    with pytest.raises(CheckFailed) as err:
        check(notebook_function(lab, name, student=True))
    assert "placeholder" in err.value.problem and err.value.hint


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_a_constant_fails_the_public_checks(release, lab, name, check, gamed):
    for fn in gamed:
        with pytest.raises(CheckFailed) as err:
            check(fn)
        assert err.value.hint, f"no hint for {fn}"


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_a_plain_value_fails_the_public_checks(release, lab, name, check, gamed):
    with pytest.raises(CheckFailed):
        check(0.5)


def test_the_helper_finds_the_references_and_none_for_a_missing_one():
    assert checks.reference_module("lab05").__name__ == "infralab.tooling.checks.references.lab05"
    assert checks.reference_module("lab99") is None


def test_without_the_folder_the_helper_returns_none(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m.startswith(checks.REFERENCES_PACKAGE)]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, checks.REFERENCES_PACKAGE, None)  # import fails as absent
    assert checks.reference_module("lab05") is None
    out = lab05.check_cost_per_1k(notebook_function("05", "gpu_cost_per_1k"))
    assert out.endswith(PUBLIC_NOTE)


def test_a_wrong_formula_with_the_right_shape_passes_public_but_not_the_grader(monkeypatch):
    """Public checks test properties; the grader, with the references, compares values."""
    tenfold = lambda p, r, u: None if r * u <= 0 else p / (r * 3600 * u) * 10_000  # noqa: E731
    with pytest.raises(CheckFailed, match="not right"):
        lab05.check_cost_per_1k(tenfold)
    monkeypatch.setattr(checks, "reference_module", lambda name: None)
    assert lab05.check_cost_per_1k(tenfold).endswith(PUBLIC_NOTE)


# ---------------------------------------------------------------- value checks, public side
def test_value_checks_in_the_release(release, tmp_path):
    class Server:
        cold_start = {"ready_s": 2.0, "first_response_s": 0.3, "warm_response_s": 0.01,
                      "total_s": 2.3}  # fmt: skip

    record = dict(Server.cold_start)
    assert lab02.check_cold_start(record, 230.0, Server()).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed):
        lab02.check_cold_start(record, 0.5, Server())
    with pytest.raises(CheckFailed, match="not what the server recorded"):
        lab02.check_cold_start({**record, "total_s": 9.0}, 900.0, Server())
    assert lab02.check_break_even(2.5e6, 0.1, 0.02, 1769).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed):
        lab02.check_break_even("lots", 0.1, 0.02, 1769)

    sweep = pd.DataFrame({"batch": [1, 8, 32], "sentences_per_s": [10.0, 50.0, 40.0]})
    assert lab03.check_best_batch(sweep, 8).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed, match="not one of the batch sizes"):
        lab03.check_best_batch(sweep, 16)

    plan = pd.DataFrame({"latency_ms": [100.0, 50.0], "usd_per_1k_questions": [1.0, 2.0]},
                        index=["a", "b"])  # fmt: skip
    assert lab06.check_placement("b", plan, 60).endswith(PUBLIC_NOTE)
    assert lab06.check_placement(None, plan, 10).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed, match="does not meet"):
        lab06.check_placement("a", plan, 60)
    with pytest.raises(CheckFailed):
        lab06.check_placement(None, plan, 120)

    args = (30.0, 0.1, 10.0, 0.25, 20.0, 50.0)
    assert lab08.check_spot_choice(1.0, 900.0, 1600.0, *args).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed, match="not a positive interval"):
        lab08.check_spot_choice(-3.0, 900.0, 1600.0, *args)
    with pytest.raises(CheckFailed, match="less than the work"):
        lab08.check_spot_choice(1.0, 10.0, 1600.0, *args)
    assert lab08.check_fragmentation([0.6, 0.6, 0.6], 2, 0.8, 0.6).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed):
        lab08.check_fragmentation([0.6, 0.6, 0.6], 2, 3.0, 0.6)


def test_lesson01_in_the_release(release):
    out = lesson01.check_answer("cost_driver", "a")  # no key here: the form is all it knows
    assert "noted" in out and "a)" in out
    with pytest.raises(CheckFailed, match="not one of the choices"):
        lesson01.check_answer("cost_driver", "z")
    assert lesson01.check_reliability(["drift", "hallucination", "ttft"]).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed, match="classic cloud"):
        lesson01.check_reliability(["backups", "model drift", "hallucination"])
    with pytest.raises(CheckFailed, match="three"):
        lesson01.check_reliability(["drift", "drift"])
    assert lesson01.check_share_of_peak(0.4, 100.0).endswith(PUBLIC_NOTE)
    with pytest.raises(CheckFailed, match="percentage"):
        lesson01.check_share_of_peak(60, 100.0)
    assert "a)" in lesson01.ask("bottleneck")
    assert all("answer" not in q for q in lesson01.QUESTIONS.values())


# ---------------------------------------------------------------- no answer in the release
def _statements(module) -> set[str]:
    """The normalised source of every statement inside the references' functions."""
    found = set()
    for _, fn in inspect.getmembers(module, inspect.isfunction):
        if fn.__module__ != module.__name__:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Return, ast.Assign, ast.AugAssign, ast.If, ast.For)):
                text = ast.unparse(node).splitlines()[0]
                if len(text) > 24 and not text.startswith(("if ref", "return None", "for _ in")):
                    found.add(" ".join(text.split()))
    return found


@pytest.mark.parametrize("name", sorted(CHECK_MODULES))
def test_no_check_module_repeats_the_references_code(name):
    reference = checks.reference_module(name)
    assert reference is not None
    source = Path(inspect.getsourcefile(CHECK_MODULES[name])).read_text()
    mine = {" ".join(ast.unparse(n).splitlines()[0].split()) for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.stmt)}  # fmt: skip
    shared = _statements(reference) & mine
    assert not shared, shared
    assert "_reference_" not in source


def test_no_answer_data_left_in_lesson01():
    source = Path(inspect.getsourcefile(lesson01)).read_text()
    key = checks.reference_module("lesson01")
    assert '"answer"' not in source
    for words in key.RELIABILITY_EXTRAS.values():
        assert not any(f'"{w}"' in source for w in words)


def test_references_are_only_reached_through_the_helper():
    """Only the grader's helper imports them: the kit works without the folder."""
    imports = re.compile(r"^\s*(from|import)\s+infralab\.checks\.references", re.M)
    for path in (ROOT / "infralab").rglob("*.py"):
        if "references" not in path.parts:
            assert not imports.search(path.read_text()), path


def test_kit_functions_are_still_refused_in_the_release(release):
    with pytest.raises(CheckFailed, match="kit's own function"):
        lab05.check_cost_per_1k(functools.partial(billing.unit_cost, per=1000.0))
    with pytest.raises(CheckFailed, match="calls the kit's own"):
        lab05.check_cost_per_1k(lambda p, r, u: billing.unit_cost(p, r, u, per=1000.0))
