"""The AI-infrastructure map and price-per-unit helpers: sourced data, exact arithmetic, clear errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from infralab.core.paths import REPO_ROOT
from infralab.economics import landscape as L
from infralab.presentation import ui

REPO = REPO_ROOT

SEED_LAYERS = [
    "accelerated compute",
    "model serving",
    "training orchestration",
    "data infrastructure",
    "vector infrastructure",
    "observability",
    "inference gateway",
]


def test_map_has_every_layer_the_article_names_and_every_row_a_source() -> None:
    df = L.load_landscape()
    for layer in SEED_LAYERS:
        assert (df["layer"] == layer).sum() >= 3, layer
    assert (df["source"].str.startswith("http")).all()
    assert set(df["side"]) <= {"AI infrastructure", "traditional cloud", "both", "web3"}
    assert not df.duplicated(["layer", "name"]).any()


def test_filter_by_layer_side_and_text() -> None:
    vec = L.filter_landscape(layer="vector infrastructure")
    assert set(vec["name"]) == {"Pinecone", "Weaviate", "Qdrant", "Milvus"}
    assert len(L.filter_landscape(layer="ALL")) == len(L.load_landscape())
    cloud = L.filter_landscape(side="traditional cloud")
    assert (cloud["side"] == "traditional cloud").all()
    hits = L.filter_landscape(text="batching")
    assert "vLLM" in set(hits["name"])
    assert L.filter_landscape(layer="model serving", text="no-such-word").empty


def test_unknown_layer_suggests_the_closest() -> None:
    with pytest.raises(L.LandscapeError, match="Did you mean 'vector infrastructure'"):
        L.filter_landscape(layer="vectr")
    with pytest.raises(L.LandscapeError, match="should be a string"):
        L.filter_landscape(side=3)  # type: ignore[arg-type]


def test_widget_builds_and_filters() -> None:
    box = ui.landscape_widget()
    layer_dd = box.children[0].children[0]
    count = box.children[1].children[1]
    layer_dd.value = "vector infrastructure"
    assert count.value.startswith("<b>4</b>")


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("H100 p5.4xlarge", "H100 SXM"),
        ("H100 H100 SXM community cloud", "H100 SXM"),
        ("H100 H100 PCIe secure cloud", None),
        ("H100 NVL NC40ads_H100_v5", None),
        ("A100-40GB p4d.24xlarge", "A100"),
        ("L4 g6.xlarge", "L4"),
        ("L40S g6e.xlarge", "L40S"),
        ("T4 g4dn.xlarge", None),
        ("B200 1x B200", None),
    ],
)
def test_match_device_only_where_a_spec_is_sourced(name: str, device: str | None) -> None:
    assert L.match_device(name) == device


def test_gpu_unit_prices_arithmetic() -> None:
    inst = pd.DataFrame(
        [
            {
                "provider": "x",
                "instance": "8x",
                "gpu": "H100",
                "gpu_count": 8,
                "gpu_memory_gb": 80,
                "usd_per_hour": 32.0,
            },
            {
                "provider": "x",
                "instance": "t4",
                "gpu": "T4",
                "gpu_count": 1,
                "gpu_memory_gb": 16,
                "usd_per_hour": 0.5,
            },
        ]
    )
    out = L.gpu_unit_prices(inst, precision="fp16")
    h = out.iloc[0]
    assert h["usd_per_gpu_hour"] == pytest.approx(4.0)
    assert h["memory_gb"] == 640
    assert h["usd_per_gb_hour"] == pytest.approx(32 / 640)
    assert h["peak_tflops"] == pytest.approx(8 * 989)
    assert h["usd_per_tflop_hour"] == pytest.approx(32 / (8 * 989))
    assert math.isnan(out.iloc[1]["usd_per_tflop_hour"])  # no sourced T4 peak: stays empty
    fp32 = L.gpu_unit_prices(inst, precision="fp32").iloc[0]
    assert fp32["usd_per_tflop_hour"] == pytest.approx(32 / (8 * 67))
    with pytest.raises(L.LandscapeError, match="precision"):
        L.gpu_unit_prices(inst, precision="int3")


def test_cpu_side_from_serverless_prices() -> None:
    cpu = L.cpu_unit_prices(vcpus=2)
    run = cpu[cpu["instance"].str.startswith("cloud_run_request_based")].iloc[0]
    assert run["usd_per_hour"] == pytest.approx(0.000024 * 3600 * 2)
    assert run["usd_per_tflop_hour"] == pytest.approx(0.000024 * 3600 * 2 / 0.192)
    lam = cpu[cpu["instance"].str.startswith("lambda")].iloc[0]
    assert lam["usd_per_gb_hour"] == pytest.approx(0.00001667 * 3600)
    assert math.isnan(lam["usd_per_tflop_hour"])
    with pytest.raises(L.LandscapeError, match="vcpus"):
        L.cpu_unit_prices(vcpus=0)


def test_gpu_is_cheaper_per_peak_tflop_than_cpu_on_the_shipped_prices() -> None:
    table = L.unit_price_table()
    best = L.cheapest_per_tflop(table)
    assert best["kind"] == "GPU"
    cpu_best = table[table["kind"] == "CPU"]["usd_per_tflop_hour"].min()
    assert cpu_best / best["usd_per_tflop_hour"] > 10
    assert (table["source"].astype(str).str.len() > 0).all()


def test_peaks_need_a_source(tmp_path) -> None:
    bad = tmp_path / "peaks.csv"
    bad.write_text("device,kind,precision,peak_tflops,source\nX,gpu,fp16,1,\n")
    with pytest.raises(L.LandscapeError, match="source"):
        L.load_peaks(bad)


def test_missing_price_file_says_where(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="No GPU price list"):
        L.load_gpu_instances(tmp_path / "none.csv")


def test_lesson01_checks_confirm_hint_and_reject_bad_input() -> None:
    from infralab.tooling.checks import CheckFailed
    from infralab.tooling.checks import lesson01 as q

    assert "Right" in q.check_answer("cost_driver", " B ")
    with pytest.raises(CheckFailed, match="Not a"):
        q.check_answer("cost_driver", "a")
    with pytest.raises(CheckFailed, match="not one of the choices"):
        q.check_answer("cost_driver", 2)
    assert "a)" in q.ask("bottleneck")
    q.check_reliability(["model drift", "Retrieval quality", "token latency"])
    with pytest.raises(CheckFailed, match="classic cloud"):
        q.check_reliability(["uptime", "model drift", "token latency"])
    table = L.unit_price_table()
    ratio = (
        table[table.kind == "CPU"].usd_per_tflop_hour.min()
        / table[table.kind == "GPU"].usd_per_tflop_hour.min()
    )
    q.check_gpu_advantage(ratio, table)
    with pytest.raises(CheckFailed):
        q.check_gpu_advantage(ratio / 2, table)
    q.check_share_of_peak(0.5, 96.0)
    with pytest.raises(CheckFailed, match="percentage"):
        q.check_share_of_peak(50, 96.0)


def test_charts_have_titled_axes() -> None:
    from infralab.presentation.charts import compute_prices as C

    table = L.unit_price_table()
    for metric in C.METRICS:
        spec = C.unit_price_chart(table, metric).to_dict()
        assert spec["encoding"]["x"]["title"] == C.METRICS[metric]
    spec = C.peak_vs_measured_chart(100.0, L.load_peaks()).to_dict()
    enc = spec.get("encoding") or spec["layer"][0]["encoding"]
    assert "GFLOP/s" in enc["x"]["title"]
    assert C.landscape_chart(L.load_landscape()).to_dict()["encoding"]["x"]["title"]
    with pytest.raises(ValueError, match="metric"):
        C.unit_price_chart(table, "usd_per_banana")
    with pytest.raises(ValueError, match="positive"):
        C.peak_vs_measured_chart(0, L.load_peaks())


def test_cpu_vms_are_priced_and_burstable_or_arm_have_no_peak() -> None:
    cpu = L.cpu_unit_prices()
    c7i = cpu[cpu["instance"].str.startswith("c7i.large")].iloc[0]
    assert c7i["usd_per_hour"] == pytest.approx(0.08925)
    assert c7i["usd_per_tflop_hour"] == pytest.approx(0.08925 / 0.192)
    assert c7i["source"].startswith("https://")
    for name in ("t3.medium", "c7g.large"):
        row = cpu[cpu["instance"].str.startswith(name)].iloc[0]
        assert pd.isna(row["usd_per_tflop_hour"]), name


def test_utilization_break_even_agrees_with_the_table_and_the_sentence() -> None:
    table = L.unit_price_table()
    u, gpu, cpu = L.utilization_break_even(table)
    assert u == pytest.approx(gpu["usd_per_tflop_hour"] / cpu["usd_per_tflop_hour"])
    rows = L.utilization_table(table, utilizations=(u * 0.5, u * 0.99, u * 1.01, u * 2))
    assert list(rows["cheaper"]) == ["CPU", "CPU", "GPU", "GPU"]
    assert f"Below {u:.2%} utilization" in L.break_even_sentence(table)


def test_utilization_break_even_picks_one_row_of_a_shared_instance_name() -> None:
    table = L.unit_price_table()
    gpu_rows = table[(table["kind"] == "GPU") & (table["instance"] == "HGX H100 8-GPU")]
    assert set(gpu_rows["pricing"]) >= {"on_demand", "spot"}
    _, on_demand, _ = L.utilization_break_even(table, "HGX H100 8-GPU", pricing="on_demand")
    u_spot, spot, cpu = L.utilization_break_even(table, "HGX H100 8-GPU", pricing="spot")
    assert (on_demand["pricing"], spot["pricing"]) == ("on_demand", "spot")
    assert spot["usd_per_hour"] < on_demand["usd_per_hour"]
    assert u_spot == pytest.approx(spot["usd_per_tflop_hour"] / cpu["usd_per_tflop_hour"])
    with pytest.raises(L.LandscapeError, match="coreweave spot"):
        L.utilization_break_even(table, "HGX H100 8-GPU", pricing="reserved")


def test_lesson01_prose_states_no_break_even_figure_and_prints_the_computed_one() -> None:
    """The lesson's claim comes from the table: its prose names no utilization figure, and a
    cell prints the sentence computed from the same numbers as the table."""
    import json
    import re

    nb = json.loads((REPO / "course" / "01_two_infrastructures.ipynb").read_text())
    prose = "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "markdown")
    code = "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "code")
    claims = re.findall(r"\d+(?:\.\d+)?\s?%\s+utili[sz]ation|utili[sz]ation of \d", prose)
    assert claims == [], f"lesson 01 prose states a utilization figure: {claims}"
    assert "break_even_sentence(prices)" in code and "utilization_table(prices)" in code
