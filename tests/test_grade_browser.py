"""Acceptance test for issue #25: a correct lab saved by a real editor gets full points.

JupyterLab, Colab and VS Code store each cell's source as a list of lines, with their own
metadata; the grader must score such a file like the solution it is. Two tests:

- ``test_lab_typed_in_jupyterlab_gets_full_points``: the way a student does it. JupyterLab on
  a temporary folder laid out like the repository's ``labs/``, the student copy of lab 05 open
  in headless Chromium (Debian's package, driven by Playwright); every exercise cell is
  replaced through its CodeMirror editor by the solution's cell, Run > Run All Cells, the
  in-notebook checks show their green lines, Ctrl+S, JupyterLab stopped, then
  ``python -m infralab grade`` on the saved file must give every point. Prints the grading
  wall time; saves ``artifacts/grade_browser_lab05.png``.
- ``test_editor_formats_get_full_points``: no browser. The solution notebook as nbformat
  writes it (its writer splits sources into lines too), as JupyterLab 4 writes a new notebook
  (sources as lists of lines, cell ids, nbformat 4.5), as Colab writes it (``metadata.colab``,
  ``accelerator``, widget state, ``id``/``outputId`` cell metadata) and with the outputs of an
  executed run; one test per variant, each graded by the CLI.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyterlab_harness import (
    ALL_RAN,
    ARTIFACTS,
    CHROMIUM,
    KERNEL_IDLE,
    NO_CHROMIUM,
    REPO_ROOT,
    Chromium,
    JupyterLab,
    kit_env,
)

LAB = "05_break_even_dashboard.ipynb"
STUDENT = REPO_ROOT / "labs" / LAB
SOLUTION = REPO_ROOT / "labs" / "solutions" / LAB
BEGIN = "### BEGIN SOLUTION"
SCREENSHOT = ARTIFACTS / "grade_browser_lab05.png"
GREEN = "rgb(21, 127, 59)"  # infralab.tooling.checks.CheckPassed renders in #157f3b


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def grade_cli(notebook: Path, out: Path) -> tuple[dict[str, str], str, float]:
    """``python -m infralab grade`` on one notebook: (gradebook row, CLI output, wall seconds)."""
    import csv

    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "infralab", "grade", str(notebook), "--out", str(out)],
        cwd=REPO_ROOT,
        env=kit_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    seconds = time.monotonic() - t0
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"grade CLI failed ({done.returncode}):\n{output}"
    with (out / "gradebook.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, rows
    return rows[0], output, seconds


def assert_full_points(row: dict[str, str], out: Path, output: str) -> None:
    total, possible = int(row["total"]), int(row["possible"])
    feedback = "\n".join(p.read_text() for p in sorted((out / "feedback").glob("*.md")))
    assert possible > 0, f"no graded checks:\n{output}"
    assert total == possible, (
        f"graded {total}/{possible} (status: {row['status']}), expected full points\n"
        f"--- CLI ---\n{output}\n--- feedback ---\n{feedback}"
    )
    assert row["status"] == "ok", row


# ------------------------------------------------------------- companion: no browser


def _as_lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def _nbformat_roundtrip(solution: Path, dest: Path) -> None:
    import nbformat

    nbformat.write(nbformat.read(solution, as_version=4), dest)
    # nbformat's writer splits sources into lines too (split_lines=True by default)
    assert isinstance(_read(dest)["cells"][-1]["source"], list)


def _jupyterlab_format(solution: Path, dest: Path) -> None:
    """What JupyterLab 4 writes: nbformat 4.5, a cell id each, sources as lists of lines."""
    nb = _read(solution)
    nb["nbformat_minor"] = 5
    for cell in nb["cells"]:
        cell["id"] = str(uuid.uuid4())
        cell["source"] = _as_lines(_source(cell))
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _colab_format(solution: Path, dest: Path) -> None:
    """What Colab writes: nbformat 4.0, cell ids and output ids in cell metadata, Colab's own
    notebook metadata (provenance, accelerator) and the saved state of a widget."""
    nb = _read(solution)
    slider = uuid.uuid4().hex
    nb["nbformat_minor"] = 0
    nb["metadata"] = {
        "colab": {"provenance": [], "name": LAB, "toc_visible": True, "gpuType": "T4"},
        "accelerator": "GPU",
        "kernelspec": {"name": "python3", "display_name": "Python 3"},
        "language_info": {"name": "python"},
        "widgets": {
            "application/vnd.jupyter.widget-state+json": {
                slider: {
                    "model_module": "@jupyter-widgets/controls",
                    "model_name": "IntSliderModel",
                    "model_module_version": "1.5.0",
                    "state": {"value": 200000, "min": 1000, "max": 2000000, "step": 1000},
                }
            }
        },
    }
    for cell in nb["cells"]:
        cell.pop("id", None)
        meta = {"id": secrets.token_urlsafe(9)}
        if cell["cell_type"] == "code":
            meta["colab"] = {"base_uri": "https://localhost:8080/"}
            meta["outputId"] = str(uuid.uuid4())
        cell["metadata"] = {**meta, **cell.get("metadata", {})}
        cell["source"] = _as_lines(_source(cell))
    dest.write_text(json.dumps(nb, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _executed(solution: Path, dest: Path) -> None:
    """The solution with the outputs of a run top to bottom (nbclient, the kit's client)."""
    import nbformat

    from infralab.tooling import notebooks

    node = nbformat.read(solution, as_version=4)
    client = notebooks.client_class()(
        node,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(STUDENT.parent)}},
    )
    client.execute()
    nbformat.write(node, dest)
    saved = _read(dest)
    assert any(c.get("outputs") for c in saved["cells"]), "the run left no outputs"
    assert not [
        o for c in saved["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]


VARIANTS: dict[str, Callable[[Path, Path], None]] = {
    "nbformat-roundtrip": _nbformat_roundtrip,
    "jupyterlab-list-sources": _jupyterlab_format,
    "colab": _colab_format,
    "executed-with-outputs": _executed,
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_editor_formats_get_full_points(variant: str, tmp_path: Path) -> None:
    pytest.importorskip("nbclient")
    folder = tmp_path / variant / "labs"
    folder.mkdir(parents=True)
    dest = folder / LAB
    VARIANTS[variant](SOLUTION, dest)
    row, output, seconds = grade_cli(dest, tmp_path / "grades")
    print(
        f"\n{variant}: graded {row['total']}/{row['possible']} ({row['status']}) in {seconds:.1f} s"
    )
    assert_full_points(row, tmp_path / "grades", output)


# ------------------------------------------------------------- the student, in a browser


@pytest.fixture()
def lab_server(tmp_path: Path) -> Iterator[tuple[JupyterLab, Path]]:
    """JupyterLab on ``<tmp>/work`` with the student lab in ``work/labs/``; yields the server
    and the lab's path. Lab 05 reads its data through ``infralab.core.paths`` (the kit's own
    folders), so the lab is the only file the folder needs."""
    pytest.importorskip("jupyterlab")
    pytest.importorskip("playwright", reason="playwright missing: pip install playwright")
    work = tmp_path / "work"
    (work / "labs").mkdir(parents=True)
    lab = work / "labs" / LAB
    shutil.copy(STUDENT, lab)
    server = JupyterLab(tmp_path, work)
    try:
        server.start()
        yield server, lab
    finally:
        server.stop()


CELL_SOURCE = (
    "i => window.jupyterapp.shell.currentWidget.content.widgets[i].model.sharedModel.getSource()"
)

ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets.flatMap((c, i) =>
  c.model.type !== 'code' ? [] : c.model.outputs.toJSON()
    .filter(o => o.output_type === 'error').map(o => `cell ${i}: ${o.ename}: ${o.evalue}`))"""

# Per cell: the text of every output element drawn in the checks' green.
GREEN_LINES = """(green) => window.jupyterapp.shell.currentWidget.content.widgets.map(c =>
  Array.from(c.node.querySelectorAll('.jp-OutputArea-output *'))
    .filter(e => getComputedStyle(e).color === green && e.textContent.trim().startsWith('✓'))
    .map(e => e.textContent.trim()))"""


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)
def test_lab_typed_in_jupyterlab_gets_full_points(
    lab_server: tuple[JupyterLab, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    server, lab = lab_server
    solution, student = _read(SOLUTION), _read(STUDENT)
    assert len(solution["cells"]) == len(student["cells"])
    # labs.student_version keeps every cell in place: the student's cell i is the solution's i
    exercises = [
        i
        for i, c in enumerate(solution["cells"])
        if c["cell_type"] == "code" and BEGIN in _source(c)
    ]
    checks = [
        i for i, c in enumerate(solution["cells"])
        if c["cell_type"] == "code" and "lab05.check_" in _source(c)
    ]  # fmt: skip
    assert exercises and checks
    for i in exercises:
        assert student["cells"][i]["cell_type"] == "code"
        assert "NotImplementedError" in _source(student["cells"][i])

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = Chromium(pw, offline=False)
        try:
            page = browser.page
            page.goto(f"{server.base}/lab/tree/labs/{LAB}?reset&token={server.token}")
            page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.wait_for_function(KERNEL_IDLE, timeout=90_000)
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            assert cells.count() == len(student["cells"])

            # the student types each exercise in: click into the editor, select all, type
            for i in exercises:
                cell = cells.nth(i)
                cell.scroll_into_view_if_needed()
                cell.locator(".cm-content").click()
                page.keyboard.press("Control+a")
                page.keyboard.insert_text(_source(solution["cells"][i]))
                typed = page.evaluate(CELL_SOURCE, i)
                assert typed == _source(solution["cells"][i]), f"cell {i} holds {typed!r}"

            # Run > Run All Cells, from the menu bar
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
            page.wait_for_function(ALL_RAN, timeout=240_000, polling=500)

            errors = page.evaluate(ERRORS)
            assert not errors, f"cells failed in the browser: {errors}"
            text = page.locator(".jp-Notebook").inner_text()
            assert "Traceback" not in text and "NotImplementedError" not in text
            green = page.evaluate(GREEN_LINES, GREEN)
            for i in checks:
                assert green[i], (
                    f"check cell {i} shows no green pass line: {_source(student['cells'][i])}"
                )
            print("\nin-notebook checks:", *(g for i in checks for g in green[i]), sep="\n  ")

            cells.nth(checks[-1]).scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOT))

            # Ctrl+S, a real key press, with the focus in the notebook
            before = lab.stat().st_mtime_ns
            cells.nth(checks[-1]).locator(".jp-InputPrompt").click()
            page.keyboard.press("Control+s")
            page.wait_for_function(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=60_000
            )
            deadline = time.monotonic() + 30
            while lab.stat().st_mtime_ns == before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert lab.stat().st_mtime_ns != before, "Ctrl+S did not write the notebook"
        finally:
            browser.close()
    server.stop()  # before grading: no JupyterLab, no kernel of its left running

    saved = _read(lab)
    sources = [c["source"] for c in saved["cells"]]
    assert all(isinstance(s, list) for s in sources if s), "JupyterLab wrote string sources"
    for i in exercises:
        assert "".join(saved["cells"][i]["source"]) == _source(solution["cells"][i])
    code = [c for c in saved["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), "a code cell was saved without running"
    assert all(c["outputs"] for i, c in enumerate(saved["cells"]) if i in checks)
    print(f"saved: nbformat {saved['nbformat']}.{saved['nbformat_minor']}, list sources, "
          f"{sum(len(c['outputs']) for c in code)} outputs")  # fmt: skip

    row, output, seconds = grade_cli(lab, tmp_path / "grades")
    print(f"grade: {row['total']}/{row['possible']} ({row['status']}) in {seconds:.1f} s wall")
    print(output)
    assert_full_points(row, tmp_path / "grades", output)
