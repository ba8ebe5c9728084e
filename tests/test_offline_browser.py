"""Every chart draws with the network blocked, and saving a notebook in JupyterLab breaks nothing.

JupyterLab runs on 127.0.0.1 over a scratch copy of ``course/``, ``labs/`` and
``docs/class_dashboard.ipynb``; headless Chromium (Playwright) opens it with every request to
any other host aborted (``page.route``), and the aborted URLs are recorded: any one fails the
test, as would a chart that asks ``cdn.jsdelivr.net`` for Vega.

``test_charts_draw_offline`` covers every notebook that draws a chart, in two ways, to keep
its wall time near 3 minutes on 2 cores (nbval already runs every notebook once):

* **Run All in the browser** (:data:`RUN_ALL`): the lessons and labs whose run is short,
  course/01, 02, 05, 07, labs/solutions/05 and docs/class_dashboard. After Run All: no error
  output, no "Error loading script" / "Error displaying widget", at least
  :data:`MIN_CHARTS` charts, every chart container (``.vega-embed``) holds an svg or canvas.
* **An executed copy** (:data:`EXECUTED`): the long notebooks that draw charts, course/03,
  04, 06, 08, 09 and labs/solutions/02, 06, are executed once with nbclient (the kit's
  client, widget state saved, as the site does) and the copy is opened in JupyterLab without
  running it: the charts (``JupyterChart`` widgets) must draw from the saved widget state,
  with the same checks. Executing them is the bulk of the time; copies are cached in
  ``artifacts/offline_executed/`` keyed by the notebook's hash, so a rerun reuses them.

Not covered here: the student labs (their unfinished cells stop Run All; their charts are
their solution's cells); Colab (needs Google's servers). Slides: ``tests/test_slides.py``
opens a deck offline. Screenshots: ``artifacts/offline/<notebook>.png``.

``test_saving_in_jupyterlab_keeps_notebooks_in_step`` opens every lesson, solution and student
lab in JupyterLab, waits for the kernel (which fills in ``language_info``), saves with Ctrl+S,
and then runs ``build-labs --check`` and the no-stored-outputs check on the saved files.
"""

from __future__ import annotations

import hashlib
import json
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

from infralab import labs, notebooks

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts"
SHOTS = ARTIFACTS / "offline"
CACHE = ARTIFACTS / "offline_executed"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
RUN_ALL = ["course/01_two_infrastructures.ipynb", "course/02_serverless_api.ipynb",
           "course/05_cost_sliders.ipynb", "course/07_decision_framework.ipynb",
           "labs/solutions/05_break_even_dashboard.ipynb", "docs/class_dashboard.ipynb"]  # fmt: skip
EXECUTED = ["course/03_onnx_gpu_vs_cpu.ipynb", "course/04_llm_tokens.ipynb",
            "course/06_hybrid_rag.ipynb", "course/08_training_and_fleet.ipynb",
            "course/09_ai_reliability.ipynb", "labs/solutions/02_load_test_endpoint.ipynb",
            "labs/solutions/06_multi_tenant_rag.ipynb"]  # fmt: skip
MIN_CHARTS = 1
# The header cell's launch badges (images on mybinder.org and colab.research.google.com) are
# links for online readers: offline they show their alt text. Any other request fails.
BADGES = (
    "https://mybinder.org/badge_logo.svg",
    "https://colab.research.google.com/assets/colab-badge.svg",
)
BAD_TEXT = ("Error loading script", "Error displaying widget", "Traceback", "Javascript Error")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} missing: apt-get install -y chromium"
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch(work: Path) -> None:
    for path in notebooks.course_notebooks(REPO_ROOT):
        (work / path.relative_to(REPO_ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, work / path.relative_to(REPO_ROOT))
    (work / "docs").mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "docs" / "class_dashboard.ipynb", work / "docs")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """JupyterLab over a scratch copy of the notebooks; yields (base url, token, folder)."""
    pytest.importorskip("jupyterlab")
    tmp = tmp_path_factory.mktemp("offline")
    work = tmp / "work"
    work.mkdir()
    _scratch(work)
    port, token = _free_port(), secrets.token_hex(16)
    settings = tmp / "user-settings"
    for rel, body in {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
        # every cell in the DOM, so every chart draws without scrolling to it
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(body))
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp / name.lower())
    env["INFRALAB_RESULTS"] = str(tmp / "results")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           f"--LabApp.workspaces_dir={tmp / 'workspaces'}", f"--LabApp.user_settings_dir={settings}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 60 s")
                time.sleep(0.5)
        yield base, token, work
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _shutdown_kernels(base: str, token: str) -> None:
    """Stop every kernel of the server (REST): one notebook's kernel at a time."""
    head = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/kernels", headers=head)) as r:
        kernels = json.load(r)
    for k in kernels:
        req = urllib.request.Request(f"{base}/api/kernels/{k['id']}", headers=head, method="DELETE")
        urllib.request.urlopen(req).close()


class Offline:
    """A Chromium page that may only talk to 127.0.0.1; ``blocked`` lists what it asked for."""

    def __init__(self, pw, profile: Path) -> None:  # type: ignore[no-untyped-def]
        self.blocked: list[str] = []
        self.context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1600},
        )  # fmt: skip
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if url.startswith(("data:", "blob:", "file:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            if url not in BADGES:
                self.blocked.append(url)
            route.abort("internetdisconnected")


KERNEL_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && !w.content.widgets.some(
    c => c.model.type === 'code' && c.promptNode && c.promptNode.textContent.includes('*'));
}"""
CHARTS = """() => {
  const all = [...document.querySelectorAll('.jp-Notebook .vega-embed')];
  return [all.length, all.filter(e => e.querySelector('svg, canvas')).length];
}"""


def _open(page, base: str, token: str, rel: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/lab/tree/{rel}?reset&token={token}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)


def _check_charts(page, rel: str) -> int:  # type: ignore[no-untyped-def]
    """Wait until every chart container holds a drawing; fail on error text; screenshot."""
    try:
        page.wait_for_function(
            f"(() => {{ const [n, d] = ({CHARTS})(); return n >= {MIN_CHARTS} && n === d; }})()",
            timeout=60_000, polling=250,
        )  # fmt: skip
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        first = page.locator(".jp-Notebook .vega-embed").first
        if first.count():
            first.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"{rel.replace('/', '__')}.png"))
    page.wait_for_timeout(500)  # charts of the same run still drawing
    total, drawn = page.evaluate(CHARTS)
    text = page.locator(".jp-Notebook").inner_text()
    for bad in BAD_TEXT:
        assert bad not in text, f"{rel}: {bad!r} in the notebook"
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    tracebacks = [t for t in errors.all_inner_texts() if "Error" in t and "Traceback" in t]
    assert not tracebacks, f"{rel}: error output {tracebacks[:1]}"
    assert total == drawn and total >= MIN_CHARTS, f"{rel}: {drawn} of {total} charts drawn"
    return total


def _executed_copy(rel: str, work: Path) -> Path:
    """``rel`` executed once with nbclient (widget state saved), cached by content hash."""
    import nbformat
    from nbformat.sign import NotebookNotary

    from infralab.notebooks import client_class

    src = REPO_ROOT / rel
    digest = hashlib.sha256(src.read_bytes() + (REPO_ROOT / "infralab" / "offline_charts.py").read_bytes()).hexdigest()[:16]  # fmt: skip
    cached = CACHE / f"{src.stem}-{digest}.ipynb"
    if not cached.is_file():
        nb = nbformat.read(str(src), as_version=4)
        client = client_class()(
            nb, timeout=600, kernel_name="python3", store_widget_state=True,
            resources={"metadata": {"path": str((work / rel).parent)}},
        )  # fmt: skip
        client.execute()
        CACHE.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(cached))
    target = work / Path(rel).with_name(f"{src.stem}.executed.ipynb")
    shutil.copy(cached, target)
    NotebookNotary().sign(nbformat.read(str(target), as_version=4))  # trusted, as if run here
    return target


def _profile() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"infralab-chromium-{secrets.token_hex(4)}"


def test_charts_draw_offline(lab: tuple[str, str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    base, token, work = lab
    only = [n for n in os.environ.get("INFRALAB_OFFLINE_ONLY", "").split(",") if n]
    profile, drawn, started = _profile(), {}, time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = Offline(pw, profile)
            page = browser.page
            try:
                for rel in RUN_ALL:
                    if only and rel not in only:
                        continue
                    _open(page, base, token, rel)
                    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                    page.wait_for_timeout(1000)
                    page.wait_for_function(KERNEL_IDLE, timeout=300_000, polling=500)
                    drawn[rel] = _check_charts(page, rel)
                    _shutdown_kernels(base, token)
                for rel in EXECUTED:
                    if only and rel not in only:
                        continue
                    executed = _executed_copy(rel, work)
                    _open(page, base, token, executed.relative_to(work).as_posix())
                    drawn[rel] = _check_charts(page, rel)
                    _shutdown_kernels(base, token)
                    executed.unlink()  # the folder stays the repository's notebooks alone
            finally:
                browser.context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print(f"\ncharts drawn offline: {drawn} in {time.perf_counter() - started:.0f} s")
    assert not browser.blocked, f"requests outside 127.0.0.1: {sorted(set(browser.blocked))[:10]}"


SAVE = """async (path) => {
  const app = window.jupyterapp;
  const w = app.shell.currentWidget;
  return [w.context.path, w.context.model.dirty,
          (w.context.model.getMetadata('language_info') || {}).version || null];
}"""


def test_saving_in_jupyterlab_keeps_notebooks_in_step(lab: tuple[str, str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    base, token, work = lab
    saved = [p.relative_to(REPO_ROOT).as_posix() for p in notebooks.course_notebooks(REPO_ROOT)]
    before = {rel: (work / rel).read_text(encoding="utf-8") for rel in saved}
    profile = _profile()
    try:
        with sync_playwright() as pw:
            browser = Offline(pw, profile)
            page = browser.page
            try:
                for rel in saved:
                    _open(page, base, token, rel)
                    page.wait_for_function(f"({SAVE})()[2] !== null", timeout=30_000)
                    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
                    page.keyboard.press("Control+s")
                    page.wait_for_function(f"!({SAVE})()[1]", timeout=30_000)
                    page.wait_for_timeout(300)
                    _shutdown_kernels(base, token)
            finally:
                browser.context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    rewritten = [rel for rel in saved if (work / rel).read_text(encoding="utf-8") != before[rel]]
    assert len(rewritten) == len(saved), f"not saved: {sorted(set(saved) - set(rewritten))}"
    meta = json.loads((work / saved[0]).read_text())["metadata"]
    assert meta["language_info"].get("version"), "the kernel's language_info was not saved"
    assert labs.build_all(check=True, root=work) == [], "saved notebooks out of step"
    dirty = {rel: notebooks.stored_outputs(notebooks.read(work / rel)) for rel in saved}
    assert not any(dirty.values()), f"outputs stored by a save: {dirty}"
    assert not browser.blocked, f"requests outside 127.0.0.1: {sorted(set(browser.blocked))[:10]}"
