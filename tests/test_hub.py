"""A real JupyterHub on 127.0.0.1: three students, lesson 00 in each through the hub.

It starts JupyterHub (simple local-process spawner, dummy authenticator, a temporary
database and working folder, free ports) with configurable-http-proxy from ``make hub-deps``
and the class collector as a hub-managed service. Through the hub's REST API it creates
the users, starts their servers and runs ``course/00_start_here.ipynb`` in a kernel per user
over the single-user server's REST and websocket API at ``/user/NAME/``. It proves:

* the kit works behind the hub's base URL (lab page, kernels, every lesson cell);
* the widgets' comms travel both ways through the proxy's websocket;
* a server the kit starts from a notebook (the launcher) runs and stops in each user's kernel;
* each user's results and cache live in their own home; no one can reach another's server;
* each user can ``share`` to the collector service behind the hub, and nothing is left
  running afterwards (checked with psutil).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHP = REPO / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"
LESSON = REPO / "course" / "00_start_here.ipynb"
USERS = ("ada", "grace", "linus")
ADMIN_TOKEN = uuid.uuid4().hex
COLLECTOR_TOKEN = uuid.uuid4().hex
# Each user's saved figure: unique to this run, so a stray copy anywhere can be found even
# while other jobs write to the shared cache.
MARKS = [round(100 + i + random.random(), 9) for i in range(len(USERS))]


def _need() -> None:
    for module in ("jupyterhub", "websocket"):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"{module} is not installed (pip install -e '.[hub]' or '.[dev]')")
    if not CHP.exists():
        pytest.skip(f"configurable-http-proxy not found at {CHP}: run `make hub-deps` (needs npm)")


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _shared_assets(tmp: Path) -> Path:
    """The fetched model files, linked read-only into one folder (``INFRALAB_ASSETS_DIR``)
    so students fetch nothing; the shared cache itself is never written."""
    from infralab.core import assets

    folder = tmp / "shared-assets"
    folder.mkdir()
    for asset in assets.ASSETS.values():
        for f in asset.files:
            path = assets.asset_dir(asset) / f.name
            if not path.is_file():
                pytest.skip(f"{path} is missing: run `python -m infralab fetch` first")
            (folder / f.name).symlink_to(path)
    return folder


def _config(tmp: Path, ports: list[int], shared: Path) -> Path:
    proxy, hub, api, collector = ports
    cfg = tmp / "jupyterhub_config.py"
    env = {"PYTHONPATH": str(REPO), "INFRALAB_ASSETS_DIR": str(shared)}
    cfg.write_text(
        f"""
import sys
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(tmp / "home")!r} + "/{{username}}"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.environment = {env!r}
c.Spawner.args = {["--allow-root"] if os.geteuid() == 0 else []!r}  # CI containers run as root
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.JupyterHub.db_url = "sqlite:///{tmp / "hub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(tmp / "hub.pid")!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [
    {{"name": "test-admin", "api_token": {ADMIN_TOKEN!r}}},
    {{
        "name": "class-collector",
        "url": "http://127.0.0.1:{collector}",
        "command": [sys.executable, "-m", "infralab", "collector",
                    "--db", "sqlite:///{tmp / "class.db"}", "--port", "{collector}"],
        "environment": {{"PYTHONPATH": {str(REPO)!r},
                         "INFRALAB_COLLECTOR_TOKEN": {COLLECTOR_TOKEN!r}}},
    }},
]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["test-admin"]}}]
"""
    )
    return cfg


class Kernel:
    """One kernel of one user, driven over the single-user server's websocket."""

    def __init__(self, base: str, token: str) -> None:
        import websocket

        self.http = httpx.Client(base_url=base, headers={"Authorization": f"token {token}"})
        r = self.http.post("api/kernels", json={"name": "python3"}, timeout=120)
        r.raise_for_status()
        self.id = r.json()["id"]
        self.session = uuid.uuid4().hex
        ws_url = base.replace("http://", "ws://") + f"api/kernels/{self.id}/channels"
        self.ws = websocket.create_connection(
            ws_url + f"?session_id={self.session}",
            header=[f"Authorization: token {token}"],
            timeout=300,
        )

    def _send(self, msg_type: str, content: dict, channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": self.session,
            "username": "test",
            "version": "5.3",
            "date": "2026-01-01T00:00:00Z",
        }
        msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        self.ws.send(json.dumps({**msg, "channel": channel, "buffers": []}))
        return msg_id

    def run(self, code: str) -> dict:
        """Execute ``code``; returns its text output, error name and comms opened."""
        msg_id = self._send(
            "execute_request",
            {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
        )
        out = {"text": "", "error": None, "comm_open": [], "display": 0}
        idle = replied = False
        while not (idle and replied):
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out["text"] += content["text"]
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "comm_open":
                out["comm_open"].append(content["comm_id"])
            elif kind in ("display_data", "execute_result"):
                out["display"] += 1
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
        return out

    def comm_update(self, comm_id: str, state: dict) -> None:
        data = {"method": "update", "state": state, "buffer_paths": []}
        self._send("comm_msg", {"comm_id": comm_id, "data": data})

    def close(self) -> None:
        self.ws.close()
        self.http.delete(f"api/kernels/{self.id}", timeout=60)
        self.http.close()


def _cells() -> list[tuple[str, bool]]:
    nb = json.loads(LESSON.read_text())
    return [
        ("".join(c["source"]), "raises-exception" in c["metadata"].get("tags", []))
        for c in nb["cells"]
        if c["cell_type"] == "code"
    ]


def test_three_students_run_lesson_00_through_a_local_hub(tmp_path):
    _need()
    from infralab.core import assets

    started = time.monotonic()
    ports = _free_ports(4)
    cfg = _config(tmp_path, ports, _shared_assets(tmp_path))
    hub_url = f"http://127.0.0.1:{ports[0]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFRALAB_", "XDG_"))}
    log = open(tmp_path / "hub.log", "w")
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(cfg)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = httpx.Client(
        base_url=f"{hub_url}/hub/api/", headers={"Authorization": f"token {ADMIN_TOKEN}"}
    )
    tree: set[int] = {hub.pid}
    try:
        for _ in range(600):
            assert hub.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
            try:
                if api.get("", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("hub did not answer:\n" + (tmp_path / "hub.log").read_text())

        tokens = {}
        for name in USERS:
            assert api.post(f"users/{name}").status_code == 201
            r = api.post(f"users/{name}/tokens", json={"expires_in": 3600, "note": "test"})
            tokens[name] = r.json()["token"]
            assert api.post(f"users/{name}/server", timeout=60).status_code in (201, 202)
        for name in USERS:
            for _ in range(1200):
                user = api.get(f"users/{name}").json()
                server = user["servers"].get("", {})
                if server.get("ready"):
                    break
                time.sleep(0.25)
            else:
                raise AssertionError(f"{name}'s server did not start")
        for p in psutil.Process(hub.pid).children(recursive=True):
            tree.add(p.pid)

        # the collector runs as a hub service behind the proxy
        service = f"{hub_url}/services/class-collector"
        r = httpx.post(
            f"{service}/api/classes",
            json={"name": "hub test"},
            headers={"Authorization": f"Bearer {COLLECTOR_TOKEN}"},
        )
        assert r.status_code == 200, r.text
        class_token = r.json()["token"]

        cells = _cells()
        seen_homes = {}
        for i, name in enumerate(USERS):
            base = f"{hub_url}/user/{name}/"
            user_http = httpx.Client(headers={"Authorization": f"token {tokens[name]}"})
            lab = user_http.get(base + "lab", timeout=60)
            assert lab.status_code == 200 and f"/user/{name}/" in lab.text
            other = USERS[(i + 1) % len(USERS)]
            denied = user_http.get(f"{hub_url}/user/{other}/api/kernels", timeout=60)
            assert denied.status_code in (403, 404), denied.status_code
            user_http.close()

            kernel = Kernel(base, tokens[name])
            try:
                for code, may_fail in cells:
                    out = kernel.run(code)
                    if may_fail:
                        assert out["error"], f"{name}: a cell tagged raises-exception did not raise"
                    else:
                        assert out["error"] is None, f"{name}: {out['error']}\n{code}"
                # base URL, own cache and results
                probe = kernel.run(
                    "import json, os\n"
                    "from infralab.core import assets, results\n"
                    f"p = results.save(results.ServingResult(throughput_rps={MARKS[i]!r}, "
                    "mean_duration_s=0.01))\n"
                    "print(json.dumps({'prefix': os.environ.get('JUPYTERHUB_SERVICE_PREFIX'),"
                    " 'home': os.path.expanduser('~'), 'cache': str(assets.cache_dir()),"
                    " 'results': str(p)}))"
                )
                assert probe["error"] is None, probe["error"]
                where = json.loads(probe["text"].strip().splitlines()[-1])
                home = str(tmp_path / "home" / name)
                assert where["prefix"] == f"/user/{name}/"
                assert where["home"] == home
                assert where["cache"].startswith(home) and where["results"].startswith(home)
                seen_homes[name] = where
                # widgets: comm_open from the kernel, an update back from the "browser"
                w = kernel.run("import ipywidgets as w\ns = w.IntSlider(value=1)\ndisplay(s)")
                assert w["error"] is None and w["comm_open"], w
                model = kernel.run("print(s.model_id)")["text"].strip()
                assert model in w["comm_open"]
                kernel.comm_update(model, {"value": 7})
                assert kernel.run("print(s.value)")["text"].strip() == "7"
                # a server the kit starts from a notebook, inside this user's kernel
                served = kernel.run(
                    "import httpx\nfrom infralab.engines.serving.launcher import launch\n"
                    "with launch(factory_kwargs={'embedder': 'hash', 'max_wait_ms': 1}) as srv:\n"
                    "    r = httpx.post(srv.url + '/v1/embeddings', json={'input': 'hi'})\n"
                    "print(r.status_code)"
                )
                assert served["error"] is None and served["text"].strip() == "200", served
                # share through the hub to the collector service
                shared = kernel.run(
                    "import subprocess, sys\n"
                    "p = subprocess.run([sys.executable, '-m', 'infralab', 'share', '--url', "
                    f"{service!r}, '--token', {class_token!r}, '--nickname', {name!r}], "
                    "capture_output=True, text=True)\nprint(p.returncode, p.stdout, p.stderr)"
                )
                assert shared["text"].startswith("0 "), shared
            finally:
                kernel.close()

        # no user sees another's results; the shared cache was not written
        for name in USERS:
            saved = json.loads(Path(seen_homes[name]["results"]).read_text())
            assert saved["throughput_rps"] == MARKS[USERS.index(name)]
        assert len({h["results"] for h in seen_homes.values()}) == len(USERS)
        shared_results = assets.cache_dir() / "results"
        written = [p for p in shared_results.rglob("*.json") if any(
            str(m) in p.read_text(errors="replace") for m in MARKS)]  # fmt: skip
        assert written == [], "a user's result reached the shared cache"
        rows = httpx.get(
            f"{service}/api/records", headers={"Authorization": f"Bearer {class_token}"}
        ).json()["records"]
        assert sorted(r["nickname"] for r in rows) == sorted(USERS)

        for p in psutil.Process(hub.pid).children(recursive=True):
            tree.add(p.pid)
        for name in USERS:
            assert api.delete(f"users/{name}/server", timeout=120).status_code in (202, 204)
    finally:
        api.close()
        if hub.poll() is None:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
        log.close()
    deadline = time.monotonic() + 30
    alive = [p for p in tree if psutil.pid_exists(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = [
            p
            for p in tree
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
    assert alive == [], [psutil.Process(p).cmdline() for p in alive]
    print(f"local hub test: {time.monotonic() - started:.1f} s for {len(USERS)} users")
