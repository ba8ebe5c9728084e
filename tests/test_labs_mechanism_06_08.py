"""Labs 06 and 08 use the mechanism the student writes: break the student's function in an
executed copy of the solution and the lab's downstream results change.

Each copy keeps the cells up to the result it shows (checks left out: they are tested in
test_checks_labs.py), swaps one solution for a broken one, runs, and reads the figures a last
cell prints as JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "labs" / "solutions"
MARK = "MECHANISM-RESULT "

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def _solution_body(source: str, replacement: str) -> str:
    """``source`` with its solution block replaced by ``replacement`` (same indentation)."""
    pattern = re.compile(r"^( *)### BEGIN SOLUTION\n.*?^ *### END SOLUTION\n?", re.S | re.M)
    match = pattern.search(source)
    assert match, "no solution block"
    indent = match.group(1)
    body = "".join(f"{indent}{line}\n" for line in replacement.strip("\n").splitlines())
    return source[: match.start()] + body + source[match.end() :]


def _run(name: str, upto: str, probe: str, swap: tuple[str, str] | None) -> dict:
    """Execute the solution ``name`` up to the first cell containing ``upto``, without check
    calls, with the function ``swap[0]`` given the body ``swap[1]``; the JSON ``probe`` prints."""
    nb = nbformat.read(SOLUTIONS / name, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "infralab-setup" not in cell.metadata.get("tags", []):
            lines = [ln for ln in cell.source.splitlines() if not ln.startswith("lab0")]
            cell.source = "\n".join(lines)
            if swap and cell.source.startswith(f"def {swap[0]}("):
                cell.source = _solution_body(cell.source, swap[1])
            cells.append(cell)
        if cell.cell_type == "code" and upto in cell.source:
            break
    else:
        raise AssertionError(f"{upto!r} is not in {name}")
    cells.append(nbformat.v4.new_code_cell(f"import json\nprint({MARK!r} + json.dumps({probe}))"))
    nb.cells = cells
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(SOLUTIONS)}}).execute()  # fmt: skip
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("name") == "stdout")
    found = [ln for ln in text.splitlines() if ln.startswith(MARK)]
    assert found, f"the probe printed nothing: {nb.cells[-1].outputs}"
    out = json.loads(found[-1][len(MARK) :])
    out["errors"] = [
        (o["ename"], o["evalue"]) for c in nb.cells for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]  # fmt: skip
    return out


LAB06_PROBE = (
    '{"saas_sees": sorted({h.tenant for h in scoped_search(index, "saas", question, widen)}), '
    '"your_service": float(summary.loc["your service", "recall@5"])}'
)


def test_lab06_scope_filter_is_what_the_search_the_server_and_the_evaluation_use():
    upto, name = 'summary.loc["your service", "recall@5"]', "06_multi_tenant_rag.ipynb"
    good = _run(name, upto, LAB06_PROBE, None)
    broken = _run(name, upto, LAB06_PROBE, ("scope_filter", "return caller_filter or {}"))
    assert good["errors"] == [] and good["saas_sees"] in ([], ["saas"])
    assert "lawfirm" in broken["saas_sees"]  # the search obeys the broken filter
    # the student's own attack, run on the student's own server, now catches a leak
    assert any(kind == "AssertionError" and "leaked" in msg for kind, msg in broken["errors"])
    assert broken["your_service"] != good["your_service"]  # the evaluation runs through it


def test_lab08_interval_is_what_the_curve_and_the_bill_use():
    upto, name = "on_demand_cost = bill.expected_spot_hours", "08_fine_tune_and_schedule.ipynb"
    probe = (
        '{"my_interval": my_interval, "best_interval": best_interval, "spot_cost": spot_cost, '
        '"mine_waste": mine, "young": math.sqrt(2 * ckpt_h * mtbf_h)}'
    )
    body = """for name, value in (("checkpoint_h", checkpoint_h), ("mtbf_h", mtbf_h)):
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive, finite number of hours")
return 3 * math.sqrt(2 * checkpoint_h * mtbf_h)"""
    good = _run(name, upto, probe, None)
    broken = _run(name, upto, probe, ("checkpoint_interval", body))
    assert good["errors"] == [] and broken["errors"] == []
    assert good["best_interval"] == pytest.approx(good["young"])
    assert broken["best_interval"] == pytest.approx(3 * good["best_interval"])  # the bill's
    assert broken["my_interval"] == pytest.approx(3 * good["my_interval"])  # the curve's mark
    assert broken["spot_cost"] > good["spot_cost"]  # a worse interval costs more
    assert broken["mine_waste"] > good["mine_waste"]
