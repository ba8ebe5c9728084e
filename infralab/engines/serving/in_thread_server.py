"""Serve an ASGI app object on a thread of this process (``serve_in_thread``).

Why beside the launcher rather than in it: :func:`~infralab.engines.serving.launcher.launch` starts
a fresh process from an importable ``module:factory`` string, which an app built in a
notebook (say, around the student's own batcher) is not. This serves such an object on
uvicorn in a thread: loopback only, stopped by the ``with`` block or :meth:`stop`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from infralab.engines.serving.launcher import LaunchError, refuse_off_loopback
from infralab.engines.serving.server_process import free_port


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

    refuse_off_loopback(host)
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
