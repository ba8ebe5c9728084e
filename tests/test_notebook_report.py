"""The per-notebook time and memory report runs a real kernel and sees its children."""

from __future__ import annotations

import nbformat
import pytest

from infralab import notebooks

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
    assert 0.5 <= row["wall_s"] < 90 and bool(row["within_90s"])
    assert (tmp_path / "report.csv").read_text().startswith("notebook,")


def test_report_records_a_failing_notebook(tmp_path):
    nb = _write(tmp_path / "fails.ipynb", "raise ValueError('boom')")
    df = notebooks.report([str(nb)])
    assert "boom" in df.iloc[0]["error"] or "ValueError" in df.iloc[0]["error"]
