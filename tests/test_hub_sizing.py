"""Class sizing: per-user memory from the kit's own notebook report, nodes and cost from the
published VM prices, and the deploy files agree with it."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from infralab.economics.costs import pricing
from infralab.tooling.classroom import sizing

REPO = Path(__file__).resolve().parents[1]


def _report(tmp_path: Path, rows: list[tuple[str, float, str]]) -> Path:
    path = tmp_path / "report.csv"
    pd.DataFrame(rows, columns=["notebook", "peak_rss_mb", "error"]).to_csv(path, index=False)
    return path


def test_peak_is_the_heaviest_notebook_that_ran(tmp_path):
    path = _report(tmp_path, [("a", 500, ""), ("b", 900, ""), ("c", 5000, "Boom: failed")])
    assert sizing.peak_notebook(path) == (900.0, "b")


def test_size_class_packs_users_by_their_guarantees(tmp_path):
    user = sizing.user_size(report=_report(tmp_path, [("a", 1000, "")]), server_mb=100,
                            cpu_guarantee=0.5, margin=0.2)  # fmt: skip
    assert user.guarantee_mb == pytest.approx(1320)
    assert user.limit_mb == 1536
    table = sizing.size_class(100, user, hours=2)
    row = table[table["instance"] == "aws m7i.xlarge"].iloc[0]  # 4 vCPU, 16 GiB
    mem_users = math.floor((16 - 1) * 1024 / 1320)  # 11
    cpu_users = math.floor((4 - 0.25) / 0.5)  # 7
    assert row["users_per_node"] == min(mem_users, cpu_users) == 7
    assert row["bound_by"] == "cpu"
    assert row["nodes"] == math.ceil(100 / 7)
    price = float(pricing.cpu_vm("m7i.xlarge").iloc[0]["usd_per_hour"])
    assert row["usd_per_hour"] == pytest.approx(15 * price, abs=0.01)
    assert row["usd_per_class"] == pytest.approx(15 * price * 2, abs=0.01)
    assert list(table["usd_per_hour"]) == sorted(table["usd_per_hour"])
    # memory-bound when the guarantee is large
    big = sizing.user_size(report=_report(tmp_path, [("a", 3000, "")]), server_mb=100)
    assert set(sizing.size_class(10, big)["bound_by"]) == {"memory"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"students": 0}, "positive"),
        ({"students": 10, "hours": 0}, "hours"),
    ],
)
def test_bad_input_says_what_to_pass(tmp_path, kwargs, match):
    user = sizing.user_size(report=_report(tmp_path, [("a", 500, "")]), server_mb=50)
    with pytest.raises(sizing.SizingError, match=match):
        sizing.size_class(**kwargs, user=user)


def test_missing_report_names_the_command(tmp_path):
    with pytest.raises(sizing.SizingError, match="report-notebooks"):
        sizing.user_size(report=tmp_path / "none.csv", server_mb=50)
    with pytest.raises(sizing.SizingError, match="cpu_guarantee"):
        sizing.user_size(report=_report(tmp_path, [("a", 1, "")]), server_mb=1, cpu_guarantee=3)


def test_values_file_is_sized_from_the_committed_measurements():
    """deploy/jupyterhub/values.yaml's memory comes from the notebook report, not a guess."""
    user = sizing.user_size()  # deploy/measured/notebook_report.csv + server_rss.csv
    assert user.server_origin.startswith("measured")
    values = yaml.safe_load((REPO / "deploy" / "jupyterhub" / "values.yaml").read_text())
    memory, cpu = values["singleuser"]["memory"], values["singleuser"]["cpu"]
    assert memory["guarantee"] == f"{round(user.guarantee_mb)}M"
    assert memory["limit"] == f"{round(user.limit_mb)}M"
    assert (cpu["guarantee"], cpu["limit"]) == (user.cpu_guarantee, user.cpu_limit)
    names = [p["display_name"] for p in values["singleuser"]["profileList"]]
    assert any("CPU" in n for n in names) and any("GPU" in n for n in names)
    assert values["cull"]["enabled"] and values["prePuller"]["continuous"]["enabled"]


def test_readme_tables_are_the_commands_output():
    text = (REPO / "deploy" / "README.md").read_text()
    block = text.split("<!-- sizing:begin", 1)[1].split("-->\n", 1)[1].split("<!-- sizing:end")[0]
    generated = sizing.tables(sizing.user_size(), [30, 100, 300])
    assert block.strip() == generated.strip(), (
        "deploy/README.md is out of step: run `python -m infralab.tooling.classroom.sizing 30 100 300` "
        "and paste its output between the sizing markers"
    )
