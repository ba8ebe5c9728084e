"""The per-notebook time and memory report runs a real kernel and sees its children."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from infralab.tooling import notebooks

# Both tests run real kernels: left out of `make test-quick` with the notebooks.
pytestmark = pytest.mark.notebook


def _write(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "py", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_report_measures_time_and_peak_memory(tmp_path):
    nb = _write(
        tmp_path / "alloc.ipynb",
        "import numpy as np, time\nblock = np.ones(200 * 2**20 // 8)\ntime.sleep(0.5)",
    )
    df = notebooks.report([str(nb)], out=str(tmp_path / "report.csv"))
    row = df.iloc[0]
    assert row["error"] == ""
    assert row["peak_rss_mb"] >= 200  # the kernel's 200 MB block was seen
    assert row["wall_s"] >= 0.5  # the cell slept half a second
    assert bool(row["within_60s"]) == (row["wall_s"] <= notebooks.BUDGET_WALL_S)
    assert bool(row["within_1_5gb"]) == (row["peak_rss_mb"] <= notebooks.BUDGET_RSS_MB)
    assert (tmp_path / "report.csv").read_text().startswith("notebook,")
    # A recorded report carries its machine, date and commit beside it.
    meta = json.loads((tmp_path / "report.meta.json").read_text())
    assert meta["machine"]["cpus"] == os.cpu_count() and meta["machine"]["cpu_model"]
    assert meta["machine"]["memory_mb"] > 0
    assert meta["date"][:4].isdigit() and meta["budget"] == {"wall_s": 60, "peak_rss_mb": 1536}
    assert meta["infralab_commit"] is None or len(meta["infralab_commit"]) == 40


def test_report_records_a_failing_notebook(tmp_path):
    nb = _write(tmp_path / "fails.ipynb", "raise ValueError('boom')")
    df = notebooks.report([str(nb)])
    assert "boom" in df.iloc[0]["error"] or "ValueError" in df.iloc[0]["error"]
