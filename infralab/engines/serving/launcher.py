"""Start a service as its own uvicorn process, time its cold start, and always stop it.

A serverless platform starts a fresh process when no warm one is free; what the user waits
for then is spawn + imports + model load + the first (cold) request. The launcher does the
same on the student's machine and splits that wait into its parts: the child app reports
when each step finished (``GET /healthz`` -> ``startup``), the launcher measures the rest.

Any ``module:factory`` app string works. The factory's keyword arguments travel as JSON in
``INFRALAB_FACTORY_KWARGS`` and the app string in ``INFRALAB_APP``, so plain uvicorn can
start the same thing: ``uvicorn --factory infralab.engines.serving.launcher:app_from_env``.

A server is stopped by ``stop()``, by leaving its ``with`` block, or at interpreter exit
(``atexit``); the whole process group is signalled, so workers die with it.

A kernel that dies without running ``atexit`` (SIGKILL from the OOM killer, SIGTERM or SIGHUP
from a restart or Binder's culler) must not leave a server holding its port and memory, so
the server also watches its parent: it holds the read end of a pipe whose only write end
stays in the launching process, and when that reaches end-of-file (the kernel closes every
descriptor of a dead process, whatever killed it) the server shuts down. On Linux the
server also asks for a parent-death signal (``prctl(PR_SET_PDEATHSIG)``); on Windows, where
no descriptor can be passed, it waits on the parent's process handle (via psutil). As a last
line, each launch records its server in a registry under :func:`runtime_dir`;
:func:`sweep_orphans` (run by every ``launch()`` and by the doctor) stops a server whose
launching process is gone, and only one that is provably the kit's: same pid and start
time as recorded, and the random token the launcher put in its environment.

The server's watch on its parent is :mod:`infralab.engines.serving.parent_watch`; the registry of
running servers and the orphan sweep are :mod:`infralab.engines.serving.server_registry` (the names
of both are importable from here too).
"""

from __future__ import annotations

import time

_CHILD_T0 = time.time()  # in the child: the moment Python reached this module

import atexit  # noqa: E402
import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import weakref  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from infralab.core.errors import InfralabError  # noqa: E402
from infralab.engines.serving.parent_watch import PARENT_ENV, _watch_parent  # noqa: E402
from infralab.engines.serving.server_registry import (  # noqa: E402, F401 - re-exported
    RUNTIME_ENV,
    TOKEN_ENV,
    _create_time,
    _register,
    runtime_dir,
    sweep_orphans,
)

APP_ENV = "INFRALAB_APP"
KWARGS_ENV = "INFRALAB_FACTORY_KWARGS"
LAUNCH_T0_ENV = "INFRALAB_LAUNCH_T0"
EMBEDDINGS_APP = "infralab.engines.serving.app:create_app"

_LIVE: weakref.WeakSet[Server] = weakref.WeakSet()


class LaunchError(RuntimeError, InfralabError):
    """The service did not come up; the message carries the end of its log."""

    hint = (
        "The message ends with the server's log; `python -m infralab doctor` checks this machine."
    )


def app_from_env():
    """Factory for ``uvicorn --factory``: build the app named by ``INFRALAB_APP`` with the
    JSON keyword arguments in ``INFRALAB_FACTORY_KWARGS``."""
    _watch_parent()
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
        self,
        proc: subprocess.Popen,
        url: str,
        port: int,
        log_path: Path,
        app: str,
        *,
        watch_fd: int | None = None,
        record: Path | None = None,
    ) -> None:
        self.proc = proc
        self.url = url
        self.port = port
        self.app = app
        self.log_path = log_path
        self._watch_fd = watch_fd  # the write end of the pipe the server watches
        self._record = record  # its entry in the registry of running servers
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
        """The server's ``GET /metrics`` as JSON (empty when it has none).

        Asks for JSON explicitly: the same route answers Prometheus text to a scraper.
        """
        import httpx

        r = httpx.get(self.url + "/metrics", headers={"Accept": "application/json"}, timeout=10)
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
        if self._watch_fd is not None:
            try:
                os.close(self._watch_fd)
            except OSError:
                pass
            self._watch_fd = None
        if self._record is not None:
            self._record.unlink(missing_ok=True)
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
    die_with_parent: bool = True,
) -> Server:
    """Start ``app`` (a ``module:factory`` string) in a new uvicorn process and wait until ready.

    ``env`` adds environment variables for the child; ``factory_kwargs`` (JSON-able) go to the
    factory. ``first_request`` (``{"method", "path", "json"}``) is sent twice once ready, to
    time the first (cold) and a warm response; by default the embeddings app gets an
    embeddings request and other apps a second health check. Returns a :class:`Server`
    with ``url``, ``pid`` and ``cold_start`` (seconds per step).

    The server shuts down when this process dies, even by SIGKILL (see the module
    docstring); ``die_with_parent=False`` turns that watch off, leaving only ``atexit`` and
    the next :func:`sweep_orphans` to stop it, as servers behaved before.
    """
    import httpx  # noqa: F401 - missing, it stops the launch before anything is spawned

    _resolve_check(app)
    kwargs_json, port = _check_launch_args(host, port, factory_kwargs)
    try:
        sweep_orphans()
    except Exception:  # a sweep is housekeeping: it never stops a launch
        pass
    child_env = {**os.environ, **(env or {})}
    child_env[APP_ENV] = app
    child_env[KWARGS_ENV] = kwargs_json
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    token = secrets.token_hex(16)
    child_env[TOKEN_ENV] = token
    child_env.pop(PARENT_ENV, None)
    proc, log_path, write_fd, t0 = _spawn(child_env, host, port, die_with_parent)
    url = f"http://{host}:{port}"
    record = _register(proc.pid, token, app, port, log_path)
    server = Server(proc, url, port, log_path, app, watch_fd=write_fd, record=record)
    probe = first_request if first_request is not None else _default_probe(app)
    probe = probe or {"method": "GET", "path": health_path}
    health, t_ready, first, warm = _wait_and_probe(server, health_path, ready_timeout_s, probe)
    server.health = health
    server.cold_start = _breakdown(t0, t_ready, first, warm, health.get("startup"))
    return server


def _check_launch_args(
    host: str, port: int | None, factory_kwargs: dict[str, Any] | None
) -> tuple[str, int]:
    """Refuse a host off loopback, unencodable kwargs or a busy port; the kwargs as JSON and
    the port (a free one when ``port`` is None)."""
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
    return kwargs_json, port


def _watch_parent_env(child_env: dict[str, str]) -> tuple[int | None, int | None]:
    """Tell the child how to watch this process (``PARENT_ENV``); the pipe's (read, write) fds.

    The read end goes to the child; the write end stays here, so the child sees end-of-file
    when this process dies. No pipe on Windows (the child watches the process handle).
    """
    read_fd = write_fd = None
    parent: dict[str, Any] = {"pid": os.getpid(), "create_time": _create_time(os.getpid())}
    if os.name != "nt":
        read_fd, write_fd = os.pipe()  # both ends close-on-exec; the child gets read_fd
        parent["fd"] = read_fd
    # The parent-death signal follows the thread that forks: only the main thread lives
    # as long as the process, so from any other thread the pipe alone watches.
    parent["pdeathsig"] = threading.current_thread() is threading.main_thread()
    child_env[PARENT_ENV] = json.dumps(parent)
    return read_fd, write_fd


def _uvicorn_cmd(host: str, port: int) -> list[str]:
    """The child's command line: uvicorn building the app through :func:`app_from_env`."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "infralab.engines.serving.launcher:app_from_env",
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


def _spawn(
    child_env: dict[str, str], host: str, port: int, die_with_parent: bool
) -> tuple[subprocess.Popen, Path, int | None, float]:
    """Start the uvicorn child in its own session, its output in a temporary log file.

    Returns the process, the log's path, the write end of the parent-watch pipe (None
    without one) and the time just before the spawn (the start of the cold start).
    """
    read_fd = write_fd = None
    pass_fds: tuple[int, ...] = ()
    if die_with_parent:
        read_fd, write_fd = _watch_parent_env(child_env)
        pass_fds = () if read_fd is None else (read_fd,)
    log_fd, log_name = tempfile.mkstemp(prefix="infralab-server-", suffix=".log")
    cmd = _uvicorn_cmd(host, port)
    t0 = time.time()
    child_env[LAUNCH_T0_ENV] = repr(t0)
    try:
        with os.fdopen(log_fd, "w") as log_file:
            proc = subprocess.Popen(
                cmd,
                env=child_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=(os.name != "nt"),
                pass_fds=pass_fds,
            )
    except BaseException:
        if write_fd is not None:
            os.close(write_fd)
        raise
    finally:
        if read_fd is not None:  # the child has its copy; ours would hide the parent's death
            try:
                os.close(read_fd)
            except OSError:
                pass
    return proc, Path(log_name), write_fd, t0


def _wait_and_probe(
    server: Server, health_path: str, ready_timeout_s: float, probe: dict[str, Any]
) -> tuple[dict[str, Any], float, float, float]:
    """Wait for the health check, then time ``probe`` twice (cold, then warm).

    Returns (health, when ready, first seconds, warm seconds). Any failure stops the
    server and raises :class:`LaunchError` with the end of its log.
    """
    import httpx

    app, url = server.app, server.url
    try:
        health = _wait_ready(server, health_path, ready_timeout_s)
        t_ready = time.time()
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
    return health, t_ready, first, warm


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


class InThreadServer:
    """An ASGI app served by uvicorn on a thread of this process: ``url``, then ``stop()``.

    For an app built in a notebook (say, around the student's own batcher), which a fresh
    process (:func:`launch`) could not import. Loopback only; the server has its own event
    loop on its thread, so objects it uses must not be tied to the notebook's loop.
    """

    def __init__(self, server: Any, thread: threading.Thread, url: str) -> None:
        self._server, self._thread, self.url = server, thread, url

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> InThreadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<InThreadServer at {self.url} {'running' if self.running else 'stopped'}>"


def serve_in_thread(
    app: Any, *, port: int | None = None, host: str = "127.0.0.1", ready_timeout_s: float = 15
) -> InThreadServer:
    """Serve ``app`` (an ASGI app object) on a thread of this process; wait until it listens.

    Use it as a context manager: the block's end stops the server, whatever happens inside.
    """
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the launcher serves on loopback only, not {host!r}")
    port = free_port(host) if port is None else port
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="infralab-in-thread-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise LaunchError(
                f"the in-thread server on port {port} stopped while starting (see the log above)"
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise LaunchError(f"the in-thread server on port {port} was not ready in "
                              f"{ready_timeout_s:g} s")  # fmt: skip
        time.sleep(0.01)
    return InThreadServer(server, thread, f"http://{host}:{port}")
