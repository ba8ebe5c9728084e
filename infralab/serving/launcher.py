"""Start a service as its own uvicorn process, time its cold start, and always stop it.

A serverless platform starts a fresh process when no warm one is free; what the user waits
for then is spawn + imports + model load + the first (cold) request. The launcher does the
same on the student's machine and splits that wait into its parts: the child app reports
when each step finished (``GET /healthz`` -> ``startup``), the launcher measures the rest.

Any ``module:factory`` app string works. The factory's keyword arguments travel as JSON in
``INFRALAB_FACTORY_KWARGS`` and the app string in ``INFRALAB_APP``, so plain uvicorn can
start the same thing: ``uvicorn --factory infralab.serving.launcher:app_from_env``.

A server is stopped by ``stop()``, by leaving its ``with`` block, or at interpreter exit
(``atexit``); the whole process group is signalled, so workers die with it.
"""

from __future__ import annotations

import time

_CHILD_T0 = time.time()  # in the child: the moment Python reached this module

import atexit  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import weakref  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

APP_ENV = "INFRALAB_APP"
KWARGS_ENV = "INFRALAB_FACTORY_KWARGS"
LAUNCH_T0_ENV = "INFRALAB_LAUNCH_T0"
EMBEDDINGS_APP = "infralab.serving.app:create_app"

_LIVE: weakref.WeakSet[Server] = weakref.WeakSet()


class LaunchError(RuntimeError):
    """The service did not come up; the message carries the end of its log."""


def app_from_env():
    """Factory for ``uvicorn --factory``: build the app named by ``INFRALAB_APP`` with the
    JSON keyword arguments in ``INFRALAB_FACTORY_KWARGS``."""
    spec = os.environ.get(APP_ENV, EMBEDDINGS_APP)
    kwargs = json.loads(os.environ.get(KWARGS_ENV) or "{}")
    factory = _resolve(spec)
    app = factory(**kwargs)
    startup = getattr(getattr(app, "state", None), "startup", None)
    if isinstance(startup, dict):  # let the app's own report include the spawn time
        startup.setdefault("launcher_imported", _CHILD_T0)
    return app


def _resolve(spec: str):
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"app must look like 'package.module:factory', got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"cannot import {module_name!r} for app {spec!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"{module_name!r} has no {attr!r} (app {spec!r})") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could bind ``port`` now (what a leftover process would prevent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class Server:
    """A running service process. Use as a context manager, or call :meth:`stop`."""

    def __init__(
        self, proc: subprocess.Popen, url: str, port: int, log_path: Path, app: str
    ) -> None:
        self.proc = proc
        self.url = url
        self.port = port
        self.app = app
        self.log_path = log_path
        self.cold_start: dict[str, float | None] = {}
        self.health: dict[str, Any] = {}
        self._stopped = False
        self._lock = threading.Lock()
        _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return not self._stopped and self.proc.poll() is None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Server {self.app} at {self.url} pid={self.pid} {state}>"

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's stdout/stderr, to see why it failed."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def rss_mb(self) -> float:
        """Resident memory of the server and its children, in MiB (0 once stopped)."""
        import psutil

        try:
            proc = psutil.Process(self.pid)
            procs = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return 0.0

    def metrics(self) -> dict[str, Any]:
        """The server's ``GET /metrics`` (empty when it has none)."""
        import httpx

        r = httpx.get(self.url + "/metrics", timeout=10)
        return r.json() if r.status_code == 200 else {}

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the process group: SIGTERM, then SIGKILL. Safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        _signal_group(self.proc, signal.SIGTERM if os.name != "nt" else None)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.proc, getattr(signal, "SIGKILL", None))
            self.proc.wait(timeout=timeout_s)
        # Children that ignored the group signal (or re-grouped) are killed by pid.
        _kill_stragglers(self.proc.pid)
        # The socket closes with the process; give the kernel a moment to release the port.
        deadline = time.monotonic() + 5
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.log_path.unlink()
        except OSError:
            pass


_DESCENDANTS: dict[int, list[int]] = {}


def _signal_group(proc: subprocess.Popen, sig: int | None) -> None:
    if proc.poll() is not None:
        return
    try:
        import psutil

        _DESCENDANTS[proc.pid] = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except Exception:
        pass
    try:
        if os.name != "nt" and sig is not None:
            os.killpg(proc.pid, sig)
        else:
            proc.terminate() if sig != getattr(signal, "SIGKILL", -1) else proc.kill()
    except ProcessLookupError:
        pass


def _kill_stragglers(pid: int) -> None:
    try:
        import psutil
    except ImportError:
        return
    for child_pid in _DESCENDANTS.pop(pid, []):
        try:
            psutil.Process(child_pid).kill()
        except psutil.Error:
            pass


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        try:
            server.stop(timeout_s=3)
        except Exception:
            pass


def stop_all() -> int:
    """Stop every server this Python process launched; returns how many were running."""
    live = [s for s in list(_LIVE) if s.running]
    for server in live:
        server.stop()
    return len(live)


def _default_probe(app: str) -> dict[str, Any] | None:
    if app == EMBEDDINGS_APP:
        return {"method": "POST", "path": "/v1/embeddings", "json": {"input": "a cold start"}}
    return None


def launch(
    app: str = EMBEDDINGS_APP,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    factory_kwargs: dict[str, Any] | None = None,
    ready_timeout_s: float = 60,
    health_path: str = "/healthz",
    first_request: dict[str, Any] | None = None,
    host: str = "127.0.0.1",
) -> Server:
    """Start ``app`` (a ``module:factory`` string) in a new uvicorn process and wait until ready.

    ``env`` adds environment variables for the child; ``factory_kwargs`` (JSON-able) go to the
    factory. ``first_request`` (``{"method", "path", "json"}``) is sent twice once ready, to
    time the first (cold) and a warm response; by default the embeddings app gets an
    embeddings request and other apps a second health check. Returns a :class:`Server`
    with ``url``, ``pid`` and ``cold_start`` (seconds per step).
    """
    import httpx

    _resolve_check(app)
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the launcher serves on loopback only, not {host!r}")
    try:
        kwargs_json = json.dumps(factory_kwargs or {})
    except TypeError as exc:
        raise TypeError(
            f"factory_kwargs must be JSON-able (they travel in an environment variable): {exc}"
        ) from None
    if port is None:
        port = free_port(host)
    elif not port_is_free(port, host):
        raise LaunchError(f"port {port} is already in use; pass port=None to pick a free one")
    child_env = {**os.environ, **(env or {})}
    child_env[APP_ENV] = app
    child_env[KWARGS_ENV] = kwargs_json
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    log_fd, log_name = tempfile.mkstemp(prefix="infralab-server-", suffix=".log")
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "infralab.serving.launcher:app_from_env",
        "--host",
        host,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "3",
    ]
    t0 = time.time()
    child_env[LAUNCH_T0_ENV] = repr(t0)
    with os.fdopen(log_fd, "w") as log_file:
        proc = subprocess.Popen(
            cmd,
            env=child_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=(os.name != "nt"),
        )
    url = f"http://{host}:{port}"
    server = Server(proc, url, port, Path(log_name), app)
    try:
        health = _wait_ready(server, health_path, ready_timeout_s)
        t_ready = time.time()
        probe = first_request if first_request is not None else _default_probe(app)
        probe = probe or {"method": "GET", "path": health_path}
        with httpx.Client(timeout=ready_timeout_s) as client:
            t1 = time.perf_counter()
            r = client.request(
                probe.get("method", "GET"), url + probe["path"], json=probe.get("json")
            )
            first = time.perf_counter() - t1
            t2 = time.perf_counter()
            client.request(probe.get("method", "GET"), url + probe["path"], json=probe.get("json"))
            warm = time.perf_counter() - t2
        if r.status_code >= 400:
            raise LaunchError(f"{app}: the first request got HTTP {r.status_code}: {r.text[:300]}")
    except LaunchError:
        server.stop()
        raise
    except Exception as exc:
        tail = server.log_tail()
        server.stop()
        raise LaunchError(f"{app} did not start ({exc}).\n--- server log ---\n{tail}") from None
    except BaseException:  # Ctrl-C while waiting: still leave nothing behind
        server.stop()
        raise
    server.health = health
    server.cold_start = _breakdown(t0, t_ready, first, warm, health.get("startup"))
    return server


def _resolve_check(app: str) -> None:
    if not isinstance(app, str) or app.count(":") != 1 or not all(app.split(":")):
        raise ValueError(f"app must look like 'package.module:factory', got {app!r}")
    module_name = app.split(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (ModuleNotFoundError, ValueError):
        found = None
    if found is None:
        raise ValueError(
            f"no module {module_name!r} (app {app!r}): is it written yet, and is the kit installed?"
        )


def _wait_ready(server: Server, health_path: str, timeout_s: float) -> dict[str, Any]:
    import httpx

    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            tail = server.log_tail()
            last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "")
            raise LaunchError(
                f"{server.app} exited with code {server.proc.returncode} while starting: "
                f"{last.strip()}\n--- server log ---\n{tail}"
            )
        try:
            r = httpx.get(server.url + health_path, timeout=2)
            if r.status_code == 200:
                try:
                    return r.json() if isinstance(r.json(), dict) else {}
                except ValueError:
                    return {}
        except httpx.TransportError:
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    raise LaunchError(
        f"{server.app} was not ready within {timeout_s:g} s.\n--- server log ---\n{server.log_tail()}"
    )


def _breakdown(
    t0: float, t_ready: float, first: float, warm: float, startup: dict[str, Any] | None
) -> dict[str, float | None]:
    """Seconds per cold-start step; steps the app did not report are None."""
    out: dict[str, float | None] = {
        "spawn_s": None,
        "imports_s": None,
        "model_load_s": None,
        "ready_s": t_ready - t0,
        "first_response_s": first,
        "warm_response_s": warm,
        "total_s": t_ready - t0 + first,
    }
    if isinstance(startup, dict):

        def at(key: str) -> float | None:
            v = startup.get(key)
            return float(v) if isinstance(v, (int, float)) else None

        spawned = at("launcher_imported") or at("module_imported")
        imported, loaded = at("imports_done"), at("model_loaded")
        if spawned:
            out["spawn_s"] = max(spawned - t0, 0.0)
        if spawned and imported:
            out["imports_s"] = max(imported - spawned, 0.0)
        if imported and loaded:
            out["model_load_s"] = max(loaded - imported, 0.0)
    return out
