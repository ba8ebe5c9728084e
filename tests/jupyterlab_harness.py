"""What the browser tests share: a JupyterLab server on 127.0.0.1 and headless Chromium.

- :class:`JupyterLab`: a server on a free port with a known token over a temporary folder,
  with fresh user settings (no news toast, every cell in the DOM, no autosave) and its own
  Jupyter folders; ``stop()`` ends it and every kernel it started, and checks the port closed.
  ``tests/conftest.py`` holds one for the whole session (``jupyterlab_server``); a test that
  must see the server gone (the grading test) starts its own.
- :class:`Chromium`: Debian's Chromium driven by Playwright; with ``offline=True`` every
  request to a host other than 127.0.0.1 is aborted and recorded in ``blocked``.
- JavaScript probes (:data:`KERNEL_IDLE`, :data:`ALL_RAN`, :data:`RUN_ALL`) and helpers to
  open a notebook, run it all, take a screenshot of the whole notebook and stop the kernels.
"""

from __future__ import annotations

import contextlib
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
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
NO_CHROMIUM = f"{CHROMIUM} missing: apt-get install -y chromium"
# The header cell's launch badges (images on mybinder.org and colab.research.google.com) are
# links for online readers: offline they show their alt text. Any other request is recorded.
BADGES = (
    "https://mybinder.org/badge_logo.svg",
    "https://colab.research.google.com/assets/colab-badge.svg",
)
SETTINGS: dict[str, dict[str, Any]] = {
    # no "get Jupyter news?" toast over the notebook
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
    # every cell in the DOM: the n-th .jp-Cell is the n-th cell, every chart draws unscrolled;
    # no blank window's height below the last cell (a screenshot ends with the notebook)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "scrollPastEnd": False,
    },
    # only an explicit save writes a file (a long Run All would otherwise store its outputs)
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def kit_env() -> dict[str, str]:
    """This checkout's infralab first, for the grader and for every kernel."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


class JupyterLab:
    """JupyterLab over ``root``, its settings and logs in ``tmp``; ``stop()`` ends it and every
    kernel it started."""

    def __init__(self, tmp: Path, root: Path) -> None:
        self.tmp, self.root = tmp, root
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / "jupyterlab.log"

    def start(self) -> None:
        settings = self.tmp / "user-settings"
        for rel, body in SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(body))
        env = kit_env()
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            env[name] = str(self.tmp / name.lower())
        env["INFRALAB_RESULTS"] = str(self.tmp / "results")
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}",
               f"--LabApp.user_settings_dir={settings}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.extension_manager=readonly"]  # fmt: skip
        # extension_manager=readonly: no PyPI look-ups from the tests
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            cmd.append("--allow-root")
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail("JupyterLab did not answer within 90 s")

    def url(self, rel: str) -> str:
        """The page that opens ``rel`` (relative to the root) in a fresh workspace."""
        return f"{self.base}/lab/tree/{rel}?reset&token={self.token}"

    def _api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            f"{self.base}/api/{path}", headers={"Authorization": f"token {self.token}"},
            method=method,
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=120) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every kernel of the server (REST; each returns once its kernel is gone)."""
        for k in self._api("kernels"):
            self._api(f"kernels/{k['id']}", method="DELETE")

    def stop(self) -> None:
        """SIGTERM to the server's process group (it shuts its kernels down); then kill what
        is left of it and of its kernels, which jupyter_client starts in sessions of their
        own, so the server's group does not hold them."""
        import psutil

        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            started = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            started = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        _, alive = psutil.wait_procs(started, timeout=10)
        for p in alive:  # kernels the server did not shut down
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        self.log.close()
        for _ in range(50):
            if not port_open(self.port):
                break
            time.sleep(0.1)
        assert not port_open(self.port), f"port {self.port} still open after JupyterLab stopped"
        assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def copy_into(root: Path, rels: list[str]) -> None:
    """Copy the repository's files ``rels`` to the same relative places under ``root``."""
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / rel, root / rel)


def chromium_profile() -> Path:
    return Path(os.environ.get("TMPDIR", "/tmp")) / f"infralab-chromium-{secrets.token_hex(4)}"


class Chromium:
    """A headless Chromium page; with ``offline`` it may only talk to 127.0.0.1 and
    ``blocked`` lists every other URL it asked for (the launch badges aside)."""

    def __init__(self, pw: Any, *, offline: bool, height: int = 1600) -> None:
        self.blocked: list[str] = []
        self.profile = chromium_profile()
        self.context = pw.chromium.launch_persistent_context(
            str(self.profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": height},
        )  # fmt: skip
        if offline:
            self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route: Any) -> None:
        url = route.request.url
        host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        if url.startswith(("data:", "blob:", "file:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            if url not in BADGES:
                self.blocked.append(url)
            route.abort("internetdisconnected")

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


# The current notebook's kernel is idle and no cell is running or queued.
KERNEL_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && !w.content.widgets.some(
    c => c.model.type === 'code' && c.promptNode && c.promptNode.textContent.includes('*'));
}"""

# Run All has finished: every code cell has run, none is queued, the kernel is idle.
ALL_RAN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext.session && w.sessionContext.session.kernel;
  const code = w.content.widgets.filter(c => c.model.type === 'code');
  return !!k && k.status === 'idle' && code.every(
    c => c.model.executionCount !== null && !c.promptNode.textContent.includes('*'));
}"""

# Starts Run All without waiting; window.__runAll is set when JupyterLab's command settles
# (true: every cell ran without an unexpected error).
RUN_ALL = """() => {
  window.__runAll = undefined;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__runAll = {ok: !!ok}; }, e => { window.__runAll = {error: String(e)}; });
}"""


def open_notebook(page: Any, server: JupyterLab, rel: str, timeout_ms: int = 90_000) -> None:
    """Open ``rel`` in a fresh JupyterLab page and wait for its kernel to be idle."""
    page.goto(server.url(rel))
    page.wait_for_function("window.jupyterapp !== undefined", timeout=timeout_ms)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_ms)


def run_all(page: Any, timeout_ms: int) -> dict[str, Any]:
    """Run > Run All Cells; returns once the command has settled and the kernel is idle."""
    page.evaluate(RUN_ALL)
    page.wait_for_function("window.__runAll !== undefined", timeout=timeout_ms, polling=250)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=250)
    return page.evaluate("window.__runAll")


SCROLLER = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
# Scroll the notebook to ``top``; returns [scrollTop, largest scrollTop, visible height].
SCROLL_TO = f"""(top) => {{
  const s = document.querySelector('{SCROLLER}');
  if (!s) return [0, 0, 0];
  s.scrollTop = top;
  return [s.scrollTop, s.scrollHeight - s.clientHeight, s.clientHeight];
}}"""


def screenshot_notebook(page: Any, path: Path, max_height: int = 12_000) -> list[Path]:
    """The whole notebook, top to bottom: the side bar is closed and the window made as tall
    as the notebook; a notebook taller than ``max_height`` px (Chromium draws up to about
    16k) is shot in parts, ``name.png``, ``name.2.png``, ... Returns the files written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.evaluate(FRAMES)
    _, largest, visible = page.evaluate(SCROLL_TO, 0)
    height = max(size["height"], min(size["height"] + largest, max_height))
    shots: list[Path] = []
    try:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.evaluate(FRAMES)  # the new layout has been painted
        top = 0
        while True:
            top, largest, visible = page.evaluate(SCROLL_TO, top)
            page.evaluate(FRAMES)
            n = len(shots) + 1
            shot = path if n == 1 else path.with_name(f"{path.stem}.{n}{path.suffix}")
            page.screenshot(path=str(shot))
            shots.append(shot)
            if top >= largest or visible <= 0:
                return shots
            top += visible
    finally:
        page.set_viewport_size(size)
