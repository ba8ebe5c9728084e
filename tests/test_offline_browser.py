"""The whole course runs in JupyterLab with the network blocked, and saving breaks nothing.

JupyterLab runs on 127.0.0.1 (the session's server, ``tests/conftest.py``) over a scratch copy
of the notebooks; headless Chromium (Playwright, ``tests/jupyterlab_harness.py``) opens it
with every request to any other host aborted (``page.route``) and recorded: any one fails the
test, as would a chart that asks ``cdn.jsdelivr.net`` for Vega.

``test_run_all_offline`` is one test per notebook: every lesson (``course/``), every lab
solution (``labs/solutions/``) and ``docs/class_dashboard.ipynb``, in course order (a lesson's
saved measurements feed the later ones, as for a student). Each is opened, run with Run All
Cells, and once JupyterLab's command has settled and the kernel is idle:

* every code cell has run, and no cell holds an error output, except the cells tagged
  ``raises-exception`` (lessons 00 and 01 show what a failing check looks like);
* no stderr output holds a traceback (warnings and progress bars on stderr are fine);
* no output shows "Error loading script", "Error displaying widget" or "JavaScript Error";
* every cell whose outputs hold a chart (a Vega-Lite bundle, Vega HTML, or a widget whose
  ``text/plain`` names ``JupyterChart``) shows at least that many chart containers
  (``.vega-embed``), and every chart container holds an svg or canvas (also for charts inside
  output widgets, which the cell's own outputs do not name);
* no request left the machine.

The wait is event driven (the Run All command's promise, the kernel's status, then polling
until the charts are drawn). A screenshot of the whole notebook goes to
``artifacts/browser/<folder>__<notebook>.png`` (a long notebook in parts, ``.2.png``...); the wall time and the number of charts of
each notebook are printed. Not covered: the student labs (their unfinished cells stop Run
All; their charts are their solution's cells); Colab (needs Google's servers). Slides:
``tests/test_slides.py`` opens a deck offline.

``test_saving_in_jupyterlab_keeps_notebooks_in_step`` opens every lesson, solution and student
lab in JupyterLab, waits for the kernel (which fills in ``language_info``), saves (File > Save,
the command Ctrl+S runs; the grading test presses the keys), and then runs ``build-labs --check`` and the no-stored-outputs check on the saved files.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from jupyterlab_harness import (
    ARTIFACTS,
    CHROMIUM,
    NO_CHROMIUM,
    REPO_ROOT,
    Chromium,
    JupyterLab,
    copy_into,
    open_notebook,
    run_all,
    screenshot_notebook,
)

from infralab.tooling import labs, notebooks

SHOTS = ARTIFACTS / "browser"
# Every lesson, lab solution and the class dashboard, in course order.
NOTEBOOKS = [
    p.relative_to(REPO_ROOT).as_posix()
    for p in [
        *sorted((REPO_ROOT / "course").glob("*.ipynb")),
        *sorted((REPO_ROOT / "labs" / "solutions").glob("*.ipynb")),
        REPO_ROOT / "docs" / "class_dashboard.ipynb",
    ]
]
RUN_ALL_TIMEOUT_MS = 540_000  # under pytest's 600 s per test; a notebook's run is far shorter
CHARTS_TIMEOUT_MS = 60_000
BAD_TEXT = ("Error loading script", "Error displaying widget", "JavaScript Error")

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)]

# Per code cell of the current notebook: what its outputs hold (model) and what it shows (DOM).
CELLS = """(bad) => window.jupyterapp.shell.currentWidget.content.widgets.flatMap((c, i) => {
  if (c.model.type !== 'code') return [];
  const text = v => Array.isArray(v) ? v.join('') : String(v ?? '');
  const outputs = c.model.outputs.toJSON();
  let charts = 0;
  for (const o of outputs) {
    const d = o.data || {};
    if (Object.keys(d).some(k => k.startsWith('application/vnd.vegalite.'))) charts += 1;
    else if (text(d['text/html']).includes('vegaEmbed')) charts += 1;
    else charts += (text(d['text/plain']).match(/JupyterChart/g) || []).length;
  }
  const embeds = [...c.node.querySelectorAll('.vega-embed')];
  const stderr = [...c.node.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.innerText);
  const shown = [...c.node.querySelectorAll('.jp-OutputArea')].map(e => e.innerText).join('\\n');
  return [{
    index: i,
    tags: c.model.getMetadata('tags') || [],
    ran: c.model.executionCount !== null || c.model.sharedModel.getSource().trim() === '',
    errors: outputs.filter(o => o.output_type === 'error').map(o => `${o.ename}: ${o.evalue}`),
    tracebacks: stderr.filter(t => t.includes('Traceback (most recent call last)')),
    bad: bad.filter(b => shown.includes(b)),
    expected: charts,
    total: embeds.length,
    drawn: embeds.filter(e => e.querySelector('svg, canvas')).length,
  }];
})"""
DRAWN = f"(bad) => ({CELLS})(bad).every(c => c.drawn === c.total && c.total >= c.expected)"


@pytest.fixture(scope="module")
def offline() -> Iterator[Chromium]:
    """One headless Chromium for the module, every request beyond 127.0.0.1 blocked."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = Chromium(pw, offline=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def run_all_copy(jupyterlab_server: JupyterLab) -> str:
    """The notebooks under ``<server root>/run_all``; returns that folder's name."""
    copy_into(jupyterlab_server.root / "run_all", NOTEBOOKS)
    return "run_all"


def _problems(rel: str, cells: list[dict[str, Any]]) -> list[str]:
    """Everything wrong with a notebook after Run All, one line each."""
    out: list[str] = []
    for c in cells:
        where = f"{rel} cell {c['index']}"
        expected_error = "raises-exception" in c["tags"]
        if c["errors"] and not expected_error:
            out.append(f"{where}: error output {c['errors']}")
        if c["tracebacks"] and not expected_error:
            out.append(f"{where}: traceback on stderr: {c['tracebacks'][0][-800:]}")
        if not c["ran"]:
            out.append(f"{where}: did not run (Run All stopped before it)")
        if c["bad"]:
            out.append(f"{where}: shows {c['bad']}")
        if c["drawn"] != c["total"] or c["total"] < c["expected"]:
            out.append(
                f"{where}: {c['drawn']} of {c['total']} chart containers drawn "
                f"(its outputs hold {c['expected']} charts)"
            )
    return out


@pytest.mark.parametrize("rel", NOTEBOOKS)
def test_run_all_offline(rel: str, jupyterlab_server: JupyterLab, run_all_copy: str,
                         offline: Chromium) -> None:  # fmt: skip
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    server, page = jupyterlab_server, offline.page
    offline.blocked.clear()
    shot = SHOTS / f"{rel.replace('/', '__').removesuffix('.ipynb')}.png"
    for old in [shot, *SHOTS.glob(f"{shot.stem}.*.png")]:
        old.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        open_notebook(page, server, f"{run_all_copy}/{rel}")
        result = run_all(page, timeout_ms=RUN_ALL_TIMEOUT_MS)
        ran_s = time.perf_counter() - started
        with contextlib.suppress(PlaywrightTimeout):  # the checks below say what is missing
            page.wait_for_function(DRAWN, arg=list(BAD_TEXT), timeout=CHARTS_TIMEOUT_MS, polling=250)  # fmt: skip
        cells = page.evaluate(CELLS, list(BAD_TEXT))
    finally:
        with contextlib.suppress(Exception):  # an earlier failure says more than a lost shot
            screenshot_notebook(page, shot)
        server.shutdown_kernels()
    drawn, named = sum(c["drawn"] for c in cells), sum(c["expected"] for c in cells)
    print(f"\n{rel}: Run All {ran_s:.0f} s; {drawn} charts drawn ({named} named by the cells' "
          f"outputs); screenshot {shot.relative_to(REPO_ROOT)}")  # fmt: skip
    problems = _problems(rel, cells)
    if "error" in result:
        problems.insert(0, f"{rel}: Run All failed in JupyterLab: {result['error']}")
    if offline.blocked:
        problems.append(f"{rel}: requests outside 127.0.0.1: {sorted(set(offline.blocked))[:10]}")
    assert not problems, "\n".join(problems)
    assert shot.is_file(), f"no screenshot at {shot}"


SAVE = """async (path) => {
  const app = window.jupyterapp;
  const w = app.shell.currentWidget;
  return [w.context.path, w.context.model.dirty,
          (w.context.model.getMetadata('language_info') || {}).version || null];
}"""


def test_saving_in_jupyterlab_keeps_notebooks_in_step(
    jupyterlab_server: JupyterLab, offline: Chromium
) -> None:
    server, page = jupyterlab_server, offline.page
    offline.blocked.clear()
    work = server.root / "save"
    saved = [p.relative_to(REPO_ROOT).as_posix() for p in notebooks.course_notebooks(REPO_ROOT)]
    copy_into(work, [*saved, "docs/class_dashboard.ipynb"])
    before = {rel: (work / rel).read_text(encoding="utf-8") for rel in saved}
    for rel in saved:
        try:
            open_notebook(page, server, f"save/{rel}")
            page.wait_for_function(f"({SAVE})()[2] !== null", timeout=30_000)
            # File > Save (what Ctrl+S runs), awaited: its promise settles once the server
            # has written the file (a key press can land while the focus is elsewhere)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            assert (work / rel).read_text(encoding="utf-8") != before[rel], f"{rel}: not saved"
        finally:
            server.shutdown_kernels()
    rewritten = [rel for rel in saved if (work / rel).read_text(encoding="utf-8") != before[rel]]
    assert len(rewritten) == len(saved), f"not saved: {sorted(set(saved) - set(rewritten))}"
    meta = json.loads((work / saved[0]).read_text())["metadata"]
    assert meta["language_info"].get("version"), "the kernel's language_info was not saved"
    assert labs.build_all(check=True, root=work) == [], "saved notebooks out of step"
    dirty = {rel: notebooks.stored_outputs(notebooks.read(work / rel)) for rel in saved}
    assert not any(dirty.values()), f"outputs stored by a save: {dirty}"
    assert not offline.blocked, f"requests outside 127.0.0.1: {sorted(set(offline.blocked))[:10]}"
