"""The cost dashboard and its charts, without a browser: sliders change bills and charts."""

from __future__ import annotations

import json

import altair as alt
import pytest

from infralab.economics.costs import model as m
from infralab.presentation.charts import costs as charts
from infralab.presentation.widgets import CostDashboard


def _titles(spec: dict) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("x", "y"):
                enc = (
                    node.get("encoding", {}).get(key)
                    if isinstance(node.get("encoding"), dict)
                    else None
                )
                if isinstance(enc, dict) and "title" in enc:
                    found.append(enc["title"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(spec)
    return found


@pytest.fixture
def dash() -> CostDashboard:
    """A fresh dashboard per test: the tests move its sliders, so none may see another's state."""
    return CostDashboard(interactive=False, debounce_s=0)


def test_every_chart_axis_has_a_unit(dash: CostDashboard) -> None:
    for slot in dash.slots:
        titles = _titles(slot.chart.to_dict())
        assert titles, "a chart without axis titles"
        assert all("(" in t for t in titles if t != "option"), titles


@pytest.mark.slow  # about 10 s on the shared 2-core machine
def test_slider_move_changes_bills_and_charts(dash: CostDashboard) -> None:
    before = [json.dumps(s.chart.to_dict(), sort_keys=True) for s in dash.slots]
    status = dash.status.value
    count = dash.redraws
    dash.controls["requests_per_day"].value = 5_000_000
    assert dash.redraws == count + 1
    after = [json.dumps(s.chart.to_dict(), sort_keys=True) for s in dash.slots]
    assert before[0] != after[0] and before[1] != after[1]
    assert dash.status.value != status
    assert "redraw" in dash.timing.value


def test_gpu_price_slider_moves_the_gpu_bill(dash: CostDashboard) -> None:
    dash.controls["option_set"].value = "API vs dedicated GPU"
    dash.controls["gpu_usd_per_hour"].value = 2.0
    cheap = next(b for b in dash.bills if b.option == "H100 on-demand").monthly_usd
    dash.controls["gpu_usd_per_hour"].value = 8.0
    dear = next(b for b in dash.bills if b.option == "H100 on-demand").monthly_usd
    assert dear == pytest.approx(cheap * 4)


@pytest.mark.slow
def test_zero_utilization_and_zero_traffic_say_so(dash: CostDashboard) -> None:
    dash.controls["utilization"].value = 0.0
    assert m.NO_REQUESTS in dash.status.value
    dash.controls["utilization"].value = 0.7
    dash.controls["requests_per_day"].value = 10  # the slider's minimum
    assert "Cheapest" in dash.status.value


def test_dashboard_shows_where_numbers_come_from(dash: CostDashboard) -> None:
    assert "as_of" not in dash.sources.value  # the dates themselves, not the column name
    assert "2026-" in dash.sources.value
    assert "tokens/s" in dash.sources.value


@pytest.mark.slow
def test_debounce_waits_for_the_last_event() -> None:
    import asyncio

    d = CostDashboard(interactive=False, debounce_s=0.05)
    start = d.redraws

    async def drag() -> None:
        for v in (1e3, 1e4, 1e5, 1e6):
            d.controls["requests_per_day"].value = v
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)

    asyncio.run(drag())
    assert d.redraws == start + 1
    assert d.workload().requests_per_day == pytest.approx(1e6)


def test_charts_leave_out_what_cannot_be_served() -> None:
    w = m.Workload(1000)
    bills = [
        m.ManagedAPI("api", 1, 1).bill(w),
        m.DedicatedGPU("g", 1, 1, 1, max_utilization=0).bill(w),
    ]
    chart = charts.cost_per_1k_chart(bills)
    spec = chart.to_dict()
    assert "not shown: g" in json.dumps(spec)
    util = charts.utilization_chart(2.0, 10.0, 0.0)
    assert "no requests served" in json.dumps(util.to_dict())
    assert isinstance(charts.customer_chart(bills, 100, 10), alt.LayerChart)


@pytest.mark.slow  # about 24 s on the shared 2-core machine
def test_interactive_dashboard_uses_offline_jupyter_charts() -> None:
    pytest.importorskip("anywidget")
    pytest.importorskip("vl_convert")
    d = CostDashboard(debounce_s=0)
    assert all(isinstance(s.widget, alt.JupyterChart) for s in d.slots)
    spec = d.slots[0].widget.spec
    d.controls["requests_per_day"].value = 2e6
    assert d.slots[0].widget.spec != spec


@pytest.mark.slow  # about 14 s on the shared 2-core machine
def test_every_option_set_draws(dash: CostDashboard) -> None:
    for name in m.OPTION_SETS:
        dash.controls["option_set"].value = name
        assert len(dash.slots) == 4
        assert all(slot.chart.to_dict() for slot in dash.slots)
        assert "Cheapest" in dash.status.value or "No option" in dash.status.value
    dash.controls["option_set"].value = "all"


def test_workload_dashboard_covers_four_workloads_with_origins_and_people_cost(
    tmp_path, monkeypatch
) -> None:
    from infralab.core import results
    from infralab.presentation.widgets import WorkloadDashboard

    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "none"))
    dash = WorkloadDashboard(interactive=False)
    assert "0 USD/month (the default" in dash.note_lines[0]
    for workload in ("requests", "embeddings", "tokens", "rag questions"):
        dash.controls["workload"].value = workload
        assert dash.rows, workload
        for row in dash.rows:
            origins = str(row["inputs (origin: file)"])
            assert "default: https://" in origins, (workload, origins)  # a sourced price
            if not str(row["option"]).startswith("API"):  # an API's bill needs no measurement
                assert "recorded: datasets/benchmarks/" in origins, (workload, origins)
        assert "<table" in dash.table.value and "recorded" in dash.table.value
    dash.controls["workload"].value = "tokens"
    assert any(n.startswith("Not the same product") for n in dash.note_lines)
    dash.controls["workload"].value = "requests"
    before = [n for n in dash.note_lines if "break-even at" in n]
    dash.controls["people_hours"].value = 20
    dash.controls["people_rate"].value = 100
    after = [n for n in dash.note_lines if "break-even at" in n]
    assert "2,000 USD/month (your input)" in dash.note_lines[0]
    assert before and after and before != after  # break-evens move with the people cost
