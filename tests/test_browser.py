"""A real browser runs the cost lesson in JupyterLab: widgets render, a slider redraws the charts.

The commonest failure of widget courses is a dashboard that prints ``IntSlider(value=0)``
instead of drawing, because the front end lacks the widget manager. Only a browser sees that.
This test starts JupyterLab on a free 127.0.0.1 port with a known token in a temporary
folder, opens a copy of course/05 in headless Chromium (Debian's package, driven by
Playwright), runs every cell, drags the requests-per-day slider, and checks that the chart
changed. It saves a screenshot to artifacts/ and prints the slider-to-redraw time (reported,
not asserted), then stops JupyterLab and everything it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "course" / "05_cost_sliders.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
    ),
]

# What an un-rendered widget looks like when the front end has no widget manager.
UNRENDERED = ("IntSlider(value", "FloatLogSlider(value", "FloatSlider(value", "VBox(children")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture()
def jupyterlab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A JupyterLab server in a temp folder; yields (base url, token) and stops it after."""
    pytest.importorskip("jupyterlab")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    # fresh user settings; no "get Jupyter news?" toast over the dashboard
    settings = tmp_path / "user-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    env["INFRALAB_RESULTS"] = str(tmp_path / "results")
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        f"--LabApp.user_settings_dir={settings}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups from the test
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    log = (tmp_path / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}"
                )
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield base, token
    finally:
        # Stop the server and its kernels: its own process group, started above.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
        for _ in range(50):
            if not _port_open(port):
                break
            time.sleep(0.1)
        assert not _port_open(port), f"port {port} still open after JupyterLab stopped"


DASH = ".infralab-cost-dashboard"
FIRST_CHART = f"{DASH} .widget-gridbox > :first-child svg"

KERNEL_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && !w.content.widgets.some(
    c => c.model.type === 'code' && c.promptNode && c.promptNode.textContent.includes('*'));
}"""

WATCH_JS = """() => {
  const root = document.querySelector('DASH .widget-gridbox');
  window.__last = 0; window.__count = 0;
  new MutationObserver(() => { window.__last = performance.now(); window.__count++; })
    .observe(root, {childList: true, subtree: true, characterData: true});
}""".replace("DASH", DASH)


def test_dashboard_renders_and_redraws(jupyterlab: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"infralab-chromium-{secrets.token_hex(4)}"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1800},
            )
            try:
                page = browser.new_page()
                page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?reset&token={token}")
                page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
                # wait for the kernel, then run every cell the way a student would
                page.wait_for_function(KERNEL_IDLE, timeout=60_000)
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
                # quiet for 700 ms: every chart has redrawn
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
        shutil.rmtree(profile, ignore_errors=True)
