"""Lab 05's own dashboard in a real browser: moving its price slider redraws its chart.

The session's JupyterLab and headless Chromium with every request outside 127.0.0.1 aborted
and recorded (``tests/conftest.py``, ``tests/jupyterlab_harness.py``). The test opens the solution
of lab 05, runs it, checks that the price slider reads the GPU's exact price (the old slider
snapped 2.69 to 2.70), presses the arrow key on the slider's handle, and waits until the chart
in the dashboard's output (an SVG or a canvas) differs from the one drawn before; the readout
must have moved by the slider's steps. Screenshots: ``artifacts/lab05_dashboard_{before,after}.png``.
"""

from __future__ import annotations

import nbformat
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
)

from infralab.economics.costs import model as cost_model

REL = "labs/solutions/05_break_even_dashboard.ipynb"
DRAWING = """(cell) => {
  const charts = [...cell.querySelectorAll('.jp-OutputArea .vega-embed')];
  const e = charts[charts.length - 1];
  if (!e) return null;
  const svg = e.querySelector('svg');
  if (svg && svg.querySelector('path, text')) return svg.outerHTML;
  const canvas = e.querySelector('canvas');
  return canvas && canvas.width > 0 ? canvas.toDataURL() : null;
}"""

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)]


def _gpu_price() -> float:
    work = cost_model.Workload(requests_per_day=200_000, tokens_in=400, tokens_out=150,
                               latency_target_s=10)  # fmt: skip
    options, _ = cost_model.llm_options(work, batch=64, option_set="API vs dedicated GPU")
    return next(o for o in options if o.name == "H100 on-demand").usd_per_hour


def _dashboard_cell() -> int:
    cells = nbformat.read(str(REPO_ROOT / REL), as_version=4).cells
    return next(i for i, c in enumerate(cells) if "my_dashboard = widgets.VBox" in c.source)


def test_moving_the_price_slider_redraws_the_chart(jupyterlab_server: JupyterLab) -> None:
    from playwright.sync_api import sync_playwright

    server = jupyterlab_server
    copy_into(server.root / "lab05", [REL])
    index, price = _dashboard_cell(), _gpu_price()
    try:
        with sync_playwright() as pw:
            browser = Chromium(pw, offline=True)
            page = browser.page
            try:
                open_notebook(page, server, f"lab05/{REL}")
                run_all(page, timeout_ms=300_000)
                cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
                cell.scroll_into_view_if_needed()
                page.wait_for_function(f"({DRAWING})(document.querySelectorAll("
                                       f"'.jp-Notebook .jp-Cell')[{index}]) !== null",
                                       timeout=60_000, polling=250)  # fmt: skip
                page.wait_for_timeout(500)  # the first chart finishes drawing
                before = cell.evaluate(DRAWING)
                sliders = cell.locator(".widget-slider")
                assert sliders.count() >= 2, "the dashboard shows fewer than two sliders"
                price_slider = next(
                    sliders.nth(i)
                    for i in range(sliders.count())
                    if "USD" in sliders.nth(i).locator(".widget-label").inner_text()
                )
                readout = price_slider.locator(".widget-readout")
                assert readout.inner_text().strip() == f"{price:.2f}", readout.inner_text()
                ARTIFACTS.mkdir(exist_ok=True)
                cell.screenshot(path=str(ARTIFACTS / "lab05_dashboard_before.png"))

                handle = price_slider.locator(".noUi-handle")
                handle.focus()
                for _ in range(25):  # 25 steps of a cent: 0.25 USD/hour dearer
                    handle.press("ArrowRight")
                page.wait_for_function(
                    f"(b) => {{ const d = ({DRAWING})(document.querySelectorAll("
                    f"'.jp-Notebook .jp-Cell')[{index}]); return d !== null && d !== b; }}",
                    arg=before, timeout=60_000, polling=250,
                )  # fmt: skip
                page.wait_for_timeout(500)
                after = cell.evaluate(DRAWING)
                cell.screenshot(path=str(ARTIFACTS / "lab05_dashboard_after.png"))
                moved = float(readout.inner_text().strip())
            finally:
                browser.close()
    finally:
        server.shutdown_kernels()
    assert after and after != before
    assert moved == pytest.approx(price + 0.25, abs=1e-9), moved
    assert not browser.blocked, f"requests outside 127.0.0.1: {sorted(set(browser.blocked))[:10]}"
