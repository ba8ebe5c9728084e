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
of both are importable from here too). The handle of a running server (:class:`Server`, its
stop and the port checks) is :mod:`infralab.engines.serving.server_process`; an app object served on
a thread of this process is :mod:`infralab.engines.serving.in_thread_server`.
"""

from __future__ import annotations

import time

_CHILD_T0 = time.time()  # in the child: the moment Python reached this module

import importlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from infralab.core.errors import InfralabError  # noqa: E402
from infralab.engines.serving.parent_watch import PARENT_ENV, _watch_parent  # noqa: E402
from infralab.engines.serving.server_process import Server, free_port, port_is_free  # noqa: E402
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
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
APP_FORM_HINT = (
    "Name the app as 'package.module:factory', e.g. 'infralab.engines.serving.app:create_app' or "
    "'infralab.engines.serving.chat:create_chat_app'."
)


class LaunchError(RuntimeError, InfralabError):
    """The service did not come up; the message carries the end of its log."""

    hint = (
        "The message ends with the server's log; `python -m infralab doctor` checks this machine."
    )


class LaunchArgumentError(ValueError, InfralabError):
    """``launch`` or ``serve_in_thread`` was asked for something it cannot serve (checked
    before any process or thread starts)."""

    hint = APP_FORM_HINT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class FactoryKwargsError(TypeError, InfralabError):
    """``factory_kwargs`` cannot travel to the child as JSON."""

    hint = (
        "Pass plain values (str, int, float, bool, None, lists and dicts of them); build "
        "objects inside the factory from those."
    )


def refuse_off_loopback(host: str) -> None:
    """The launcher serves on this machine only: refuse any other host before binding."""
    if host not in LOOPBACK_HOSTS:
        raise LaunchArgumentError(
            f"the launcher serves on loopback only, not {host!r}",
            hint="Leave host at '127.0.0.1' (or use 'localhost', '::1'): a launched server is "
            "for this machine only; `python -m infralab serve --host` serves on a network.",
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
        raise LaunchArgumentError(f"app must look like 'package.module:factory', got {spec!r}")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise LaunchArgumentError(
            f"cannot import {module_name!r} for app {spec!r}: {exc}",
            hint="Install the kit in this environment (`pip install -e .`) or fix the module "
            "name in the app string.",
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise LaunchArgumentError(
            f"{module_name!r} has no {attr!r} (app {spec!r})",
            hint=f"Check the factory's name after the colon: {module_name!r} must define it.",
        ) from None


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
    refuse_off_loopback(host)
    try:
        kwargs_json = json.dumps(factory_kwargs or {})
    except TypeError as exc:
        raise FactoryKwargsError(
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
        raise LaunchArgumentError(f"app must look like 'package.module:factory', got {app!r}")
    module_name = app.split(":")[0]
    try:
        found = importlib.util.find_spec(module_name)
    except (ModuleNotFoundError, ValueError):
        found = None
    if found is None:
        raise LaunchArgumentError(
            f"no module {module_name!r} (app {app!r}): is it written yet, and is the kit "
            "installed?",
            hint="Save the module where Python finds it (the kit's own apps live in "
            "infralab/engines/serving/), or install the kit in this environment with `pip install -e .`.",
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
