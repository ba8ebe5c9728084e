"""Every lab's function checks: (a) the solution passes, (b) the untouched student copy fails
with a hint, (c) the kit's own implementation, a wrapper around it, or a constant fails.

The student functions are taken from the notebooks themselves (the solution and the
generated student copy), so a change to a lab cannot leave its checks behind. Checks of
measured figures are tested with hand-made server records: invented numbers fail, a low
batching ratio does not.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from infralab.economics.costs import billing
from infralab.economics.costs import model as cost_model
from infralab.engines.rag import tenancy
from infralab.engines.serving import orchestrate as orch
from infralab.tooling import notebooks
from infralab.tooling.checks import (
    CheckFailed,
    graded_checks,
    lab02,
    lab03,
    lab04,
    lab05,
    lab06,
    lab07,
    lab10,
)
from infralab.tooling.checks.references import lab02 as R02
from infralab.tooling.checks.references import lab03 as R03
from infralab.tooling.checks.references import lab04 as R04
from infralab.tooling.checks.references import lab05 as R05
from infralab.tooling.checks.references import lab06 as R06
from infralab.tooling.checks.references import lab07 as R07
from infralab.tooling.checks.references import lab10 as R10

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = {"np": np, "math": math, "pd": pd}


def notebook_function(lab: str, name: str, student: bool = False) -> Any:
    """The function ``name`` as defined in the lab's solution (or student copy), with the
    functions and imports of the cells before it (their other statements are not run)."""
    folder = ROOT / "labs" if student else ROOT / "labs" / "solutions"
    path = next(folder.glob(f"{lab}_*.ipynb"))
    ns: dict[str, Any] = dict(NAMESPACE)
    for cell in notebooks.read(path)["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        keep = [
            n
            for n in tree.body
            if isinstance(n, (ast.Import, ast.ImportFrom))
            or (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and not n.decorator_list)
        ]
        # as a notebook runs it: without this file's `from __future__ import annotations`
        exec(compile(ast.Module(keep, []), path.name, "exec", dont_inherit=True), ns)  # noqa: S102
        defs = (ast.FunctionDef, ast.AsyncFunctionDef)
        if name in ns and any(isinstance(n, defs) and n.name == name for n in keep):
            return ns[name]
    raise LookupError(f"{name} is not defined in {path}")


def _kit_constraints(sc, bill):
    from infralab.economics.decision import rules

    return rules.constraints(sc, bill)


def _rrf_via_kit(rankings, k0=60):
    from infralab.engines.rag.hybrid import reciprocal_rank_fusion

    return [item for item, _ in reciprocal_rank_fusion(rankings, k0)]


async def _run_graph_via_kit(steps, budget):
    return (await orch.run_graph(steps, budget, strict=False)).to_dict()


async def _run_graph_constant(steps, budget):
    return {"outputs": {}, "spent": {"ms": 0.0, "tokens": 0, "usd": 0.0}, "stopped": None}


async def _run_graph_one_by_one(steps, budget):  # sequential: right totals, wrong schedule
    outputs, tokens, usd = {}, 0, 0.0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for step in sorted(steps, key=lambda s: len(s.after)):
        out = await step.run({a: outputs.get(a) for a in step.after})
        outputs[step.name], tokens, usd = out.value, tokens + out.tokens, usd + out.usd
    return {"outputs": outputs, "spent": {"ms": (loop.time() - t0) * 1000, "tokens": tokens,
            "usd": usd}, "stopped": None}  # fmt: skip


# (lab, student function, check, [ways to game it])
CASES = [
    ("02", "validate_request", lab02.check_validate_request,
     [lambda body: ["x"], R02.validate_request]),
    ("02", "load_summary", lab02.check_load_summary,
     [lambda lat, wall: {"p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "throughput_rps": 10.0},
      lambda lat, wall: R02.load_summary(lat, wall)]),
    ("02", "lambda_bill_at_memory", lab02.check_lambda_bill_at_memory,
     [billing.lambda_function,
      lambda r, c, mb: {"vcpu_share": mb / 1769, "billed_ms": 1,
                        "usd": billing.lambda_function(r, c, mb, measured_vcpus=1).monthly_usd},
      lambda r, c, mb: {"vcpu_share": 1.0, "billed_ms": 50, "usd": 1.0}]),
    ("03", "worst_cosine", lab03.check_worst_cosine,
     [lambda a, b: 0.99,
      lambda a, b: float(__import__("infralab.engines.models.encoder", fromlist=["x"]).cosine(a, b).min())]),
    ("03", "predict_crossover", lab03.check_predict_crossover,
     [lambda *a: None,
      lambda h, b, lay, co, go, cg, gg: __import__("infralab.engines.models.throughput", fromlist=["x"])
      .predict_crossover(h, batch=b, layers=lay, cpu_overhead_ms=co, gpu_overhead_ms=go,
                         cpu_gflops=cg, gpu_gflops=gg)]),
    ("03", "int8_matmul", lab03.check_int8_matmul,
     [lambda a, b: a @ b, R03.int8_matmul, lambda a, b: np.zeros((len(a), b.shape[1]))]),
    ("04", "kv_cache_bytes", lab04.check_kv_cache_bytes,
     [lambda *a: 46080, R04.kv_cache_bytes,
      __import__("infralab.engines.models.decoder", fromlist=["x"]).kv_cache_bytes,
      lambda c, t, b, s: 2 * c["layers"] * c["heads"] * c["hidden"] // c["heads"] * s * t * b]),
    ("04", "cost_per_million", lab04.check_cost_per_million,
     [billing.unit_cost,
      lambda p, t, u: billing.unit_cost(p, t, u),
      lambda p, t, u: 0.5]),
    ("05", "gpu_cost_per_1k", lab05.check_cost_per_1k,
     [functools.partial(billing.unit_cost, per=1000.0),
      lambda p, r, u: billing.unit_cost(p, r, u, per=1000.0),
      lambda p, r, u: 0.01]),
    ("05", "break_even_requests_per_day", lab05.check_break_even_function,
     [lambda a, g: 430_400.0, lambda a, g: R05.break_even_requests_per_day(a, g)]),
    ("05", "trap_utilization", lab05.check_trap_function,
     [lambda p, r, a: 0.3, lambda p, r, a: R05.trap_utilization(p, r, a)]),
    ("06", "recall_at_k", lab06.check_recall_at_k,
     [__import__("infralab.engines.rag.evaluate", fromlist=["x"]).recall_at_k,
      lambda r, g, k: __import__("infralab.engines.rag.evaluate", fromlist=["x"]).recall_at_k(r, g, k),
      lambda r, g, k: 1.0]),
    ("06", "rrf", lab06.check_rrf, [_rrf_via_kit, lambda r, k0=60: ["c1", "c2"]]),
    ("06", "tenant_for_key", lab06.check_tenant_for_key,
     [tenancy.tenant_for_key, lambda keys, key: tenancy.tenant_for_key(keys, key),
      lambda keys, key: keys.get(key),  # right answers, but `==` leaks timing
      lambda keys, key: next((t for k, t in keys.items() if key and k.startswith(key)), None),
      lambda keys, key: "saas"]),
    ("06", "scope_filter", lab06.check_scope_filter,
     [tenancy.scope_filter, lambda t, c: tenancy.scope_filter(t, c),
      lambda t, c: {"must": [{"key": "tenant", "match": {"value": t}}], **(c or {})},
      lambda t, c: c or {"must": [{"key": "tenant", "match": {"value": t}}]},
      lambda t, c: {"must": [{"key": "tenant", "match": {"value": t}}]},  # drops the narrowing
      lambda t, c: {}]),
    ("06", "scoped_search", lab06.check_scoped_search,
     [tenancy.scoped_search, lambda i, t, q, f, k=5: [],
      lambda i, t, q, f, k=5: tenancy.scoped_search(i, t, q, f, k),
      lambda i, t, q, f, k=5: tenancy.search_all_tenants(i, q, i.embed_query(q), query_filter=f)]),
    ("06", "make_app", lab06.check_make_app,
     [tenancy.search_app, lambda index, keys: tenancy.search_app(index, keys),
      lambda index, keys: tenancy.search_app(index, keys, leak="body_tenant"),
      lambda index, keys: tenancy.search_app(index, keys, leak="unknown_key")]),
    ("06", "attack", lab06.check_attack,
     [tenancy.standard_attack, lambda client, me, victim: None,
      lambda client, me, victim: tenancy.standard_attack(client, me, victim),
      lambda client, me, victim: client.post("/search", json={"question": "x"})]),
    ("06", "choose_placement", lab06.check_choose_placement,
     [lambda plan, budget: plan.index[0], lambda plan, b: R06.choose_placement(plan, b)]),
    ("07", "cost_per_customer", lab07.check_cost_per_customer,
     [lambda usd, n: 30.0, lambda usd, n: R07.cost_per_customer(usd, n)]),
    ("07", "allowed", lab07.check_constraint_filter,
     [lambda sc, b: True, lambda sc, b: not _kit_constraints(sc, b), R07.allowed,
      lambda sc, b: b.meets_latency and b.monthly_usd < float("inf")]),
    ("07", "cheapest_allowed", lab07.check_cheapest,
     [lambda sc, bills: None, R07.cheapest_allowed,
      lambda sc, bills: min(bills, key=lambda b: b.monthly_usd) if bills else None,
      lambda sc, bills: next((b for b in bills if R07.allowed(sc, b)), None)]),
    ("07", "flip_point", lab07.check_flip_point,
     [lambda c, b, f: None, lambda c, b, f: 2.0, lambda c, b, f: R07.flip_point(c, b, f),
      lambda c, b, f: None if c(b) == c(f) else (b * f) ** 0.5]),
    ("10", "critical_path_ms", lab10.check_critical_path,
     [lambda d, a: 130.0, lambda d, a: sum(d.values()), orch.critical_path_ms,
      lambda d, a: R10.critical_path_ms(d, a)]),
    ("10", "would_exceed", lab10.check_would_exceed,
     [lambda b, c, e, x: None, lambda b, c, e, x: "ms", orch.would_exceed,
      lambda *a: orch.would_exceed(*a)]),
    ("10", "run_graph", lab10.check_run_graph,
     [orch.run_graph, _run_graph_via_kit, _run_graph_constant, _run_graph_one_by_one]),
]  # fmt: skip
IDS = [f"lab{lab}-{name}" for lab, name, _, _ in CASES]


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_the_solution_passes(lab, name, check, gamed):
    assert "✓" in repr(check(notebook_function(lab, name)))


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_the_untouched_student_copy_fails_with_a_hint(lab, name, check, gamed):
    with pytest.raises(CheckFailed) as err:
        check(notebook_function(lab, name, student=True))
    assert "placeholder" in err.value.problem and err.value.hint


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_the_kit_a_wrapper_or_a_constant_fails(lab, name, check, gamed):
    for fn in gamed:
        with pytest.raises(CheckFailed) as err:
            check(fn)
        assert err.value.hint, f"no hint for {fn}"


@pytest.mark.parametrize(("lab", "name", "check", "gamed"), CASES, ids=IDS)
def test_a_plain_value_instead_of_a_function_fails(lab, name, check, gamed):
    with pytest.raises(CheckFailed):
        check(0.5)


def test_lab06_names_the_kit_function_a_wrapper_runs():
    def make_app(index, keys):  # the student's own app, with the kit's key lookup inside
        app = __import__("fastapi").FastAPI()

        def tenant(x_api_key: str | None = __import__("fastapi").Header(default=None)) -> str:
            found = tenancy.tenant_for_key(keys, x_api_key)
            if found is None:
                raise __import__("fastapi").HTTPException(401)
            return found

        @app.post("/search")
        def search(body: dict, who: str = __import__("fastapi").Depends(tenant)) -> dict:
            hits = tenancy.search_all_tenants(
                index, body["question"], index.embed_query(body["question"]), k=5,
                query_filter={"must": [{"key": "tenant", "match": {"value": who}}]},
            )  # fmt: skip
            return {"hits": [tenancy.payload_of(h) for h in hits]}

        return app

    with pytest.raises(CheckFailed, match="kit's own tenant_for_key"):
        lab06.check_make_app(make_app)
    with pytest.raises(CheckFailed, match="kit's own .*scoped_search"):
        lab06.check_scoped_search(lambda i, t, q, f: tenancy.scoped_search(i, t, q, f))


def test_kit_functions_are_named_as_such():
    with pytest.raises(CheckFailed, match="kit's own function"):
        lab05.check_cost_per_1k(functools.partial(billing.unit_cost, per=1000.0))
    with pytest.raises(CheckFailed, match="calls the kit's own"):
        lab05.check_cost_per_1k(lambda p, r, u: billing.unit_cost(p, r, u, per=1000.0))
    with pytest.raises(CheckFailed, match="whatever the input"):
        lab05.check_cost_per_1k(lambda p, r, u: 0.01)


def test_hints_never_print_the_expected_value():
    wrong = lambda p, r, u: None if u == 0 or r == 0 else p / (r * 3600 * u) * 100  # noqa: E731
    with pytest.raises(CheckFailed) as err:
        lab05.check_cost_per_1k(wrong)
    shown = re.findall(r"returned ([0-9.e+-]+)", err.value.problem)
    assert shown, err.value.problem
    # the message names the input and the student's value, never the reference's
    args = re.search(r"\((.*)\) returned", err.value.problem).group(1)
    p, r, u = (float(x) for x in args.split(", "))
    expected = p / (r * 3600 * u) * 1000
    assert f"{expected:.4g}" not in err.value.problem + err.value.hint


def test_every_graded_check_declares_points_and_is_called_by_its_lab():
    from infralab.tooling import grade

    for module in (lab02, lab03, lab04, lab05, lab06, lab07, lab10):
        lab = module.__name__[-2:]
        graded = graded_checks(module)
        assert len(graded) >= 3 and all(fn.points >= 1 for fn in graded.values())
        assert {c.name for c in grade.check_calls(lab)} == set(graded)


def _student_written_functions(source: str) -> list[str]:
    """Functions whose body, or whose whole definition, lies inside a solution block."""
    lines = source.splitlines()
    begins = [i + 1 for i, line in enumerate(lines) if line.strip() == "### BEGIN SOLUTION"]
    ends = [i + 1 for i, line in enumerate(lines) if line.strip() == "### END SOLUTION"]
    blocks = list(zip(begins, ends, strict=True))
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            inside = any(b < first and node.end_lineno < e for b, e in blocks)
            body = any(node.lineno < b and e <= node.end_lineno + 1 for b, e in blocks)
            if inside or body:
                found.append(node.name)
    return found


def test_every_lab_asks_for_at_least_two_functions():
    for path in sorted((ROOT / "labs" / "solutions").glob("*.ipynb")):
        names = []
        for cell in notebooks.read(path)["cells"]:
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            if cell["cell_type"] == "code" and "### BEGIN SOLUTION" in src:
                names += _student_written_functions(src)
        assert len(set(names)) >= 2, (path.name, names)


# ---------------------------------------------------------------- measured figures (lab 02)
class FakeResult:
    """What closed_loop returns, without a server."""

    def __init__(self, ok: int, wall: float) -> None:
        self.summary = {"ok": ok, "requests": ok, "wall_s": wall, "throughput_rps": ok / wall}


@pytest.fixture()
def load_result(monkeypatch):
    from infralab.engines.serving import loadgen

    monkeypatch.setattr(loadgen, "LoadResult", FakeResult)
    return FakeResult(300, 2.0)


def _metrics(requests=302, texts=302, calls=40, mode="batching"):
    return {"requests": requests, "texts": texts, "model_calls": calls, "mode": mode}


def test_batching_never_fails_on_a_low_ratio_and_explains_it(load_result):
    out = lab02.check_batching(load_result, 150.0, _metrics(), naive_rps=300.0)
    assert "0.50x" in out and "not a fault of your code" in out


def test_batching_counts_come_from_the_server(load_result):
    with pytest.raises(CheckFailed, match="not the throughput"):
        lab02.check_batching(load_result, 900.0, _metrics(), 300.0)  # an invented figure
    with pytest.raises(CheckFailed, match="counted"):
        lab02.check_batching(load_result, 150.0, _metrics(requests=40), 300.0)
    with pytest.raises(CheckFailed, match="batching was off"):
        lab02.check_batching(load_result, 150.0, _metrics(mode="naive"), 300.0)
    with pytest.raises(CheckFailed, match="more than one text"):
        lab02.check_batching(load_result, 150.0, _metrics(calls=302), 300.0)


def test_sweep_must_match_the_server_count():
    sweep = pd.DataFrame(
        {"concurrency": [1, 4, 16], "requests": [150] * 3, "ok": [150] * 3,
         "throughput_rps": [100.0, 200, 250], "p50_ms": [5.0, 9, 40], "p99_ms": [9.0, 20, 90],
         "errors": [0, 0, 0]}
    )  # fmt: skip
    assert "counted" in lab02.check_sweep(sweep, {"requests": 450 + 13 + 2})
    with pytest.raises(CheckFailed, match="server counted"):
        lab02.check_sweep(sweep, {"requests": 12})
    with pytest.raises(CheckFailed, match="metrics"):
        lab02.check_sweep(sweep, {"requests": "many"})


def test_cold_start_must_be_the_servers_record():
    class Server:
        cold_start = {"ready_s": 2.0, "first_response_s": 0.3, "warm_response_s": 0.01,
                      "total_s": 2.3}  # fmt: skip

    record = dict(Server.cold_start)
    assert "✓" in repr(lab02.check_cold_start(record, 230.0, Server()))
    with pytest.raises(CheckFailed, match="not what the server recorded"):
        lab02.check_cold_start({**record, "total_s": 9.0}, 900.0, Server())
    with pytest.raises(CheckFailed):
        lab02.check_cold_start(record, 1.0, Server())


# ---------------------------------------------------------------- dashboard (lab 05)
def _lab05_prices():
    work = cost_model.Workload(requests_per_day=200_000, tokens_in=400, tokens_out=150,
                               latency_target_s=10)  # fmt: skip
    options, _ = cost_model.llm_options(work, batch=64, option_set="API vs dedicated GPU")
    api = next(o for o in options if o.name == "API gpt-4o-mini")
    gpu = next(o for o in options if o.name == "H100 on-demand")
    return api, gpu, work


def _draw(api, work, *, unit=True, follow_price=True, break_even=R05.break_even_requests_per_day):
    """A student's draw_chart, written here (with switches that break it one way each)."""
    import altair as alt

    def draw_chart(requests_per_day, gpu_usd_per_hour):
        price = gpu_usd_per_hour if follow_price else 2.0
        per_request = api.bill(work).usd_per_1k_requests / 1000
        grid = [10 ** (3 + i / 5) for i in range(26)]
        rows = [{"r": r, "option": o, "usd": u} for r in grid
                for o, u in (("API", r * per_request), ("GPU", price * 24))]  # fmt: skip
        x = alt.X("r:Q", title="traffic (requests/day)" if unit else "traffic")
        lines = (
            alt.Chart(pd.DataFrame(rows))
            .mark_line()
            .encode(x=x, y=alt.Y("usd:Q", title="cost (USD/day)"), color="option:N")
        )
        marks = pd.DataFrame({"r": [break_even(per_request, price), requests_per_day]})
        return lines + alt.Chart(marks).mark_rule().encode(x=x)

    return draw_chart


def _dashboard(price: float, *, step: float = 0.01, observed: bool = True):
    import ipywidgets as w

    traffic = w.FloatLogSlider(value=200_000, base=10, min=3, max=8, description="requests/day")
    price_slider = w.FloatSlider(value=price, min=0.5, max=12, step=step, description="USD/hour")
    if observed:
        for s in (traffic, price_slider):
            s.observe(lambda change: None, names="value")
    return w.VBox([traffic, price_slider, w.Output()])


def test_dashboard_check_passes_a_chart_that_follows_both_sliders():
    api, gpu, work = _lab05_prices()
    out = lab05.check_dashboard(_draw(api, work), _dashboard(gpu.usd_per_hour), api, gpu, work)
    assert "2 sliders" in out and "✓" in repr(out)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"unit": False}, "lacks its unit"),
        ({"follow_price": False}, "Another GPU price gave the same chart"),
        ({"break_even": lambda a, g: g * 12 / a}, "does not mark the break-even"),
    ],
)
def test_dashboard_check_refuses_a_chart_that_is_wrong(broken, message):
    api, gpu, work = _lab05_prices()
    with pytest.raises(CheckFailed, match=message) as err:
        lab05.check_dashboard(_draw(api, work, **broken), _dashboard(gpu.usd_per_hour), api,
                              gpu, work)  # fmt: skip
    assert err.value.hint


def test_dashboard_check_refuses_the_old_interactive_and_loose_wiring():
    import ipywidgets as w

    api, gpu, work = _lab05_prices()
    draw = _draw(api, work)
    # the old lab: interactive(..., auto_display=False) of a function that draws and returns None
    old = w.interactive(lambda r, p: None, r=w.FloatLogSlider(200_000, base=10, min=3, max=8),
                        p=w.FloatSlider(gpu.usd_per_hour, min=0.5, max=12, step=0.1))  # fmt: skip
    with pytest.raises(CheckFailed, match="not an Altair chart"):
        lab05.check_dashboard(old.f, old, api, gpu, work)
    with pytest.raises(CheckFailed, match="steps of 0.1"):
        lab05.check_dashboard(draw, _dashboard(gpu.usd_per_hour, step=0.1), api, gpu, work)
    with pytest.raises(CheckFailed, match="No slider starts at the GPU's price"):
        lab05.check_dashboard(draw, _dashboard(2.70), api, gpu, work)
    with pytest.raises(CheckFailed, match="Nothing observes"):
        lab05.check_dashboard(draw, _dashboard(gpu.usd_per_hour, observed=False), api, gpu, work)
    with pytest.raises(CheckFailed, match="VBox"):
        lab05.check_dashboard(draw, w.IntSlider(), api, gpu, work)


AGREE_CELL = """
import json as _json
import ipywidgets as _w
_parts = list(my_dashboard.children)
_price = next(s for s in _parts if type(s) is _w.FloatSlider)
_traffic = next(s for s in _parts if type(s) is _w.FloatLogSlider)
_spec = draw_chart(_traffic.value, _price.value).to_dict()
print(_json.dumps({"slider": _price.value, "gpu": gpu.usd_per_hour, "printed": break_even_rpd,
                   "title": _spec.get("title"), "spec": _spec}))
"""


@pytest.mark.slow
def test_lab05_dashboard_starts_at_the_break_even_printed_above(tmp_path):
    """The price slider starts at the GPU's exact price, so the dashboard's first chart marks
    the break-even exercise 2 printed (a slider with step 0.1 made it 2.70 and another number)."""
    import json

    import nbformat

    from infralab.tooling.notebooks import client_class

    nb = nbformat.read(str(ROOT / "labs" / "solutions" / "05_break_even_dashboard.ipynb"), 4)
    nb.cells.append(nbformat.v4.new_code_cell(AGREE_CELL))
    client_class()(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    got = json.loads(text.strip().splitlines()[-1])
    printed = "".join(
        o.get("text", "") for c in nb.cells if "break_even_rpd =" in c.source for o in c.outputs
    )
    assert got["slider"] == got["gpu"]
    assert f"{got['printed']:,.0f}" in printed and f"{got['printed']:,.0f}" in got["title"]
    numbers = [x for x in re.findall(r"-?\d+\.?\d*(?:e[+-]?\d+)?", json.dumps(got["spec"]))]
    assert any(math.isclose(float(n), got["printed"], rel_tol=1e-12) for n in numbers)


# ---------------------------------------------------------------- int8 (lab 03)
@pytest.mark.slow
def test_int8_check_refuses_one_array_twice():
    from infralab.engines.models.encoder import Embedder

    sentences = ["a cold start", "an idle GPU costs money", "batching amortises overhead"]
    fp32 = Embedder("fp32").embed(sentences)
    int8 = Embedder("int8").embed(sentences)
    worst = R03.worst_cosine(fp32, int8)
    assert "✓" in repr(lab03.check_int8_quality(worst, fp32, int8, worst >= 0.98, sentences))
    with pytest.raises(CheckFailed, match="int8_vectors are not"):
        lab03.check_int8_quality(1.0, fp32, fp32, True, sentences)


# ---------------------------------------------------------------- memo (lab 07)
@pytest.fixture(scope="module")
def memo_case(tmp_path_factory):
    """A scenario, its inputs, and the figures its memo must quote (from the references)."""
    from dataclasses import replace

    from infralab.economics import decision

    sc = replace(decision.scenario("legal").with_traffic(25_000), title="Contract review",
                 story="Clause extraction for law firms.", demand="stable", ml_engineers=1)  # fmt: skip
    inputs = decision.gather_inputs()
    return sc, inputs, 60, R07.memo_figures(sc, inputs, 60)


OWN_REASONS = (
    "The contracts are confidential, so no managed API is allowed; the cheapest option left is "
    "a per-second GPU, and traffic would have to fall by a quarter before my rules pick another."
)


def _shown(value, fmt):
    return "none" if value is None else format(value, fmt)


def _memo(figures, recommendation="hybrid", reasons=OWN_REASONS, **override):
    f = {**figures, **override}
    return (
        f"# Decision memo: Contract review\n\n## Recommendation\n\n{recommendation}\n\n"
        f"## Numbers\n\n"
        f"- requests per day: {f['requests per day']:,.0f}\n"
        f"- options priced: {f['options priced']}\n"
        f"- options allowed: {f['options allowed']}\n"
        f"- chosen option: {f['chosen option'] or 'none'}\n"
        f"- monthly bill (USD): {_shown(f['monthly bill (USD)'], ',.0f')}\n"
        f"- cost per customer (USD/month): {_shown(f['cost per customer (USD/month)'], ',.2f')}\n"
        f"- choice changes below (requests/day): "
        f"{_shown(f['choice changes below (requests/day)'], ',.0f')}\n"
        f"- choice changes above (requests/day): "
        f"{_shown(f['choice changes above (requests/day)'], ',.0f')}\n\n"
        f"## Reasoning\n\n{reasons}\n"
    )


def test_memo_passes_when_every_figure_matches_the_results(memo_case, tmp_path):
    sc, inputs, customers, figures = memo_case
    memo = tmp_path / "memo.md"
    memo.write_text(_memo(figures))
    out = lab07.check_memo(memo, "hybrid", OWN_REASONS, sc, inputs, customers)
    assert "all 8 figures match" in out and "rubric" in out


@pytest.mark.slow
def test_memo_refuses_nonsense_words_and_a_made_up_number(memo_case, tmp_path):
    """The old check passed 60 nonsense words with a "42"; now the figures must be the results."""
    sc, inputs, customers, figures = memo_case
    memo = tmp_path / "memo.md"
    nonsense = " ".join(["blah"] * 60) + " 42"
    memo.write_text(_memo(figures, reasons=nonsense, **{"monthly bill (USD)": 42.0}))
    with pytest.raises(CheckFailed, match="monthly bill.*does not match") as err:
        lab07.check_memo(memo, "hybrid", nonsense, sc, inputs, customers)
    assert err.value.hint
    for label, wrong in (("cost per customer (USD/month)", 1.0),
                         ("choice changes below (requests/day)", 5_000.0),
                         ("options allowed", 7), ("chosen option", "API gpt-4o-mini")):  # fmt: skip
        memo.write_text(_memo(figures, **{label: wrong}))
        with pytest.raises(CheckFailed, match="does not match|not the option"):
            lab07.check_memo(memo, "hybrid", OWN_REASONS, sc, inputs, customers)


@pytest.mark.parametrize("label", ["both", "Hybrid", "hybrid cloud", "AI infra", "", 42])
def test_memo_wants_one_of_the_three_labels_exactly(memo_case, tmp_path, label):
    sc, inputs, customers, figures = memo_case
    memo = tmp_path / "memo.md"
    memo.write_text(_memo(figures, recommendation=label))
    with pytest.raises(CheckFailed, match="not one of"):
        lab07.check_memo(memo, label, OWN_REASONS, sc, inputs, customers)


def test_memo_needs_its_sections_and_the_reasons_in_it(memo_case, tmp_path):
    sc, inputs, customers, figures = memo_case
    memo = tmp_path / "memo.md"
    memo.write_text(_memo(figures, recommendation="traditional cloud"))
    with pytest.raises(CheckFailed, match="recommendation section"):
        lab07.check_memo(memo, "hybrid", OWN_REASONS, sc, inputs, customers)
    memo.write_text(_memo(figures, reasons="Something else."))
    with pytest.raises(CheckFailed, match="reasoning section"):
        lab07.check_memo(memo, "hybrid", OWN_REASONS, sc, inputs, customers)
    with pytest.raises(CheckFailed, match="empty"):
        lab07.check_memo(memo, "hybrid", "  ", sc, inputs, customers)
    memo.write_text(_memo(figures).replace("- options priced", "- options"))
    with pytest.raises(CheckFailed, match="lacks"):
        lab07.check_memo(memo, "hybrid", OWN_REASONS, sc, inputs, customers)
    with pytest.raises(CheckFailed, match="no memo file"):
        lab07.check_memo(tmp_path / "nope.md", "hybrid", OWN_REASONS, sc, inputs, customers)


def test_memo_says_none_where_nothing_is_allowed(memo_case, tmp_path):
    from dataclasses import replace

    sc, inputs, customers, _ = memo_case
    # confidential data, no small model, a latency no GPU option meets: nothing is allowed
    tight = replace(sc, workload=replace(sc.workload, latency_target_s=0.01))
    figures = R07.memo_figures(tight, inputs, customers)
    assert figures["chosen option"] is None and figures["monthly bill (USD)"] is None
    memo = tmp_path / "memo.md"
    memo.write_text(_memo(figures))
    assert "✓" in repr(lab07.check_memo(memo, "hybrid", OWN_REASONS, tight, inputs, customers))
    memo.write_text(_memo(figures).replace("- monthly bill (USD): none", "- monthly bill (USD): 0"))
    with pytest.raises(CheckFailed, match="none"):
        lab07.check_memo(memo, "hybrid", OWN_REASONS, tight, inputs, customers)


# ---------------------------------------------------------------- lab 07 uses the student's rules
WRONG_CHEAPEST = """
def cheapest_allowed(scenario, bills):  # ignores the constraints: the cheapest finite bill
    finite = [b for b in bills if math.isfinite(b.monthly_usd)]
    return min(finite, key=lambda b: b.monthly_usd) if finite else None
"""
REPORT = """
import json as _json
print(_json.dumps({"choice": my_choice.option, "memo": memo_text, "below": flip_below}))
"""


def _run_lab07(tmp_path, wrong: bool) -> dict:
    import json
    import os

    import nbformat

    from infralab.tooling.notebooks import client_class

    nb = nbformat.read(str(ROOT / "labs" / "solutions" / "07_capstone.ipynb"), 4)
    if wrong:  # right after the check of cheapest_allowed: the rest of the lab uses this one
        at = next(i for i, c in enumerate(nb.cells) if "check_cheapest(" in c.source)
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(WRONG_CHEAPEST))
    nb.cells.append(nbformat.v4.new_code_cell(REPORT))
    os.environ["INFRALAB_RESULTS"] = str(tmp_path / ("wrong" if wrong else "right"))
    client_class()(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    return {**json.loads(text.strip().splitlines()[-1]), "errors": errors}


@pytest.mark.slow
def test_lab07_makes_its_choice_and_memo_with_the_students_functions(tmp_path, monkeypatch):
    """Swap the student's cheapest_allowed for one that ignores the constraints: the choice,
    the flip points and the memo change, and the memo check says so."""
    monkeypatch.setenv("INFRALAB_RESULTS", str(tmp_path / "results"))
    right, wrong = _run_lab07(tmp_path, wrong=False), _run_lab07(tmp_path, wrong=True)
    assert not right["errors"]
    assert right["choice"] != wrong["choice"]
    assert wrong["choice"] in wrong["memo"] and right["choice"] in right["memo"]
    assert right["memo"] != wrong["memo"]
    failed = [e["evalue"] for e in wrong["errors"]]
    assert any("does not match" in e or "not the option" in e for e in failed), failed


# ---------------------------------------------------------------- lab 10: the live runs
def _chat_metrics(tokens: float, calls: float) -> dict:
    return {"prometheus": {"infralab_chat_prompt_tokens_total": tokens * 0.75,
                           "infralab_chat_completion_tokens_total": tokens * 0.25,
                           "infralab_chat_completions_total": calls}}  # fmt: skip


def test_lab10_live_checks_trust_the_servers_counters_not_the_report():
    report = {"outputs": {"retrieve": 1, "model_0": 2, "model_1": 3, "tool": 4},
              "spent": {"ms": 900.0, "tokens": 240, "usd": 1e-4}, "stopped": None}  # fmt: skip
    before, after = _chat_metrics(1000, 10), _chat_metrics(1240, 12)
    assert "2 model calls and 240 tokens" in lab10.check_live_run(report, before, after)
    with pytest.raises(CheckFailed, match="server counted a different"):
        lab10.check_live_run({**report, "spent": {**report["spent"], "tokens": 100}}, before, after)
    with pytest.raises(CheckFailed, match="model calls"):
        lab10.check_live_run(report, before, _chat_metrics(1240, 13))
    with pytest.raises(CheckFailed, match="stopped is None"):
        lab10.check_budget_stop(report, before, after)
    stopped = {**report, "stopped": {"step": "model_2", "limit": "tokens"}}
    assert "model_2" in lab10.check_budget_stop(stopped, before, after)
    with pytest.raises(CheckFailed, match="yet lists its output"):
        lab10.check_budget_stop({**report, "stopped": {"step": "model_1", "limit": "usd"}},
                                before, after)  # fmt: skip


def test_lab10_the_live_part_runs_the_students_own_runner():
    """The cells that talk to the live server call the run_graph the student wrote."""
    cells = notebooks.read(ROOT / "labs" / "solutions" / "10_orchestrate_agent.ipynb")["cells"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
               for c in cells if c["cell_type"] == "code"]  # fmt: skip
    defined = next(i for i, s in enumerate(sources) if s.startswith("async def run_graph("))
    live = [s for s in sources[defined + 1 :] if "llm.metrics()" in s]
    assert len(live) == 2
    for source in live:
        calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)]
        names = {getattr(c.func, "id", getattr(c.func, "attr", "")) for c in calls}
        assert "run_graph" in names and not any(
            isinstance(c.func, ast.Attribute) and c.func.attr == "run_graph" for c in calls
        )  # the student's function, not orchestrate.run_graph or agent.run_request
        assert "run_request" not in names


WRONG_BREAK_EVEN = """
def break_even_requests_per_day(api_usd_per_request, gpu_usd_per_hour):  # twice the truth
    return 2 * gpu_usd_per_hour * 24 / api_usd_per_request
"""


@pytest.mark.slow
def test_lab05_dashboard_draws_with_the_students_break_even(tmp_path):
    """Swap the student's break-even for one twice too high right after its check: the figure
    printed in exercise 2 and the break-even the dashboard's chart marks both double, so the
    dashboard is built on the student's own function, not the kit's."""
    import json

    import nbformat

    from infralab.tooling.notebooks import client_class

    def run(wrong: bool) -> dict:
        nb = nbformat.read(str(ROOT / "labs" / "solutions" / "05_break_even_dashboard.ipynb"), 4)
        if wrong:
            at = next(i for i, c in enumerate(nb.cells) if "check_break_even_function(" in c.source)
            nb.cells.insert(at + 1, nbformat.v4.new_code_cell(WRONG_BREAK_EVEN))
        nb.cells.append(nbformat.v4.new_code_cell(AGREE_CELL))
        client_class()(nb, timeout=300, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
        return json.loads(text.strip().splitlines()[-1])

    right, wrong = run(False), run(True)
    assert math.isclose(wrong["printed"], 2 * right["printed"], rel_tol=1e-9)
    marked = [
        float(n)
        for n in re.findall(r"-?\d+\.?\d*(?:e[+-]?\d+)?", json.dumps(wrong["spec"]))
        if math.isclose(float(n), wrong["printed"], rel_tol=1e-9)
    ]
    assert marked, "the dashboard's chart does not mark the student's (doubled) break-even"
