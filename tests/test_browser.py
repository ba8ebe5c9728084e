"""A real browser runs the cost lesson in JupyterLab: widgets render, a slider redraws the charts.

The commonest failure of widget courses is a dashboard that prints ``IntSlider(value=0)``
instead of drawing, because the front end lacks the widget manager. Only a browser sees that.
This test opens a copy of course/05 in the session's JupyterLab (127.0.0.1, a known token, a
temporary folder: ``tests/conftest.py``) in headless Chromium (Debian's package, driven by
Playwright, ``tests/jupyterlab_harness.py``), runs every cell, drags the requests-per-day
slider, and checks that the chart changed. It saves a screenshot to artifacts/ and prints the
slider-to-redraw time (reported, not asserted), then stops its kernel; the session stops
JupyterLab and everything it started.
"""

from __future__ import annotations

import contextlib

import pytest
from jupyterlab_harness import (
    ARTIFACTS,
    CHROMIUM,
    KERNEL_IDLE,
    NO_CHROMIUM,
    Chromium,
    JupyterLab,
    copy_into,
    open_notebook,
)

NOTEBOOK = "course/05_cost_sliders.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)]

# What an un-rendered widget looks like when the front end has no widget manager.
UNRENDERED = ("IntSlider(value", "FloatLogSlider(value", "FloatSlider(value", "VBox(children")


DASH = ".infralab-cost-dashboard"
FIRST_CHART = f"{DASH} .widget-gridbox > :first-child svg"

WATCH_JS = """() => {
  const root = document.querySelector('DASH .widget-gridbox');
  window.__last = 0; window.__count = 0;
  new MutationObserver(() => { window.__last = performance.now(); window.__count++; })
    .observe(root, {childList: true, subtree: true, characterData: true});
}""".replace("DASH", DASH)


def test_dashboard_renders_and_redraws(jupyterlab_server: JupyterLab) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    server = jupyterlab_server
    copy_into(server.root / "dashboard", [NOTEBOOK])
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = Chromium(pw, offline=False, height=1800)
            try:
                page = browser.page
                # wait for the kernel, then run every cell the way a student would
                open_notebook(page, server, f"dashboard/{NOTEBOOK}", timeout_ms=60_000)
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                dash = page.locator(DASH)
                dash.wait_for(state="attached", timeout=120_000)
                page.wait_for_function(KERNEL_IDLE, timeout=120_000)  # run-all has finished
                dash.scroll_into_view_if_needed()
                page.wait_for_selector(FIRST_CHART, state="visible", timeout=60_000)
                page.wait_for_timeout(1500)  # let the other charts draw
                dash.scroll_into_view_if_needed()

                text = page.locator(".jp-Notebook").inner_text()
                for bad in UNRENDERED:
                    assert bad not in text, (
                        f"a widget printed as text ({bad}...): no widget manager"
                    )
                assert page.locator(f"{DASH} .widget-slider").count() >= 5
                assert page.locator(f"{DASH} svg").count() >= 4, "the four charts did not draw"
                assert "Traceback" not in text, "a cell failed in the browser"

                before_svg = page.locator(FIRST_CHART).first.inner_html()
                before_head = page.locator(f"{DASH} .infralab-headline").inner_text()

                readout = page.locator(f"{DASH} .widget-readout").first
                before_value = readout.inner_text()
                page.evaluate(WATCH_JS)
                handle = page.locator(f"{DASH} .widget-slider .noUi-handle").first
                handle.scroll_into_view_if_needed()
                page.wait_for_timeout(300)
                box = handle.bounding_box()
                assert box is not None, "slider handle not visible"
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + 120, y, steps=8)
                page.mouse.up()
                released = page.evaluate("performance.now()")
                dash.screenshot(path=str(ARTIFACTS / "test_browser_after_drag.png"))
                assert readout.inner_text() != before_value, "the slider did not move"
                page.wait_for_function("window.__count > 0", timeout=30_000)
                # the first chart redrawn (on a busy machine the kernel's redraw of the drag's
                # last value can come well after an earlier value's), then quiet for 700 ms
                with contextlib.suppress(PlaywrightTimeout):  # the assert below says it
                    page.wait_for_function(
                        "([sel, old]) => document.querySelector(sel).innerHTML !== old",
                        arg=[FIRST_CHART, before_svg], timeout=30_000, polling=100,
                    )  # fmt: skip
                page.wait_for_function(
                    "performance.now() - window.__last > 700", timeout=30_000, polling=100
                )
                redraw_ms = page.evaluate("window.__last") - released

                after_svg = page.locator(FIRST_CHART).first.inner_html()
                after_head = page.locator(f"{DASH} .infralab-headline").inner_text()
                assert after_svg != before_svg, "the chart did not change after the slider moved"
                assert after_head != before_head
                kernel_ms = page.locator(f"{DASH} .infralab-redraw").inner_text()
                dash.screenshot(path=str(ARTIFACTS / "test_browser_dashboard.png"))
                print(
                    f"\nslider release -> last chart mutation: {redraw_ms:.0f} ms "
                    f"(includes the 150 ms debounce); kernel: {kernel_ms}"
                )
            finally:
                browser.close()
    finally:
        server.shutdown_kernels()
