"""Serving: the embeddings API, micro-batching, a process launcher with cold-start timing, a load generator.

Lessons import from this face (``from infralab.engines.serving import launch``); it re-exports
lazily, so the package itself still imports nothing heavy and a launched child process
starts fast.
"""

from infralab.core.faces import lazy_face

# The face: what lessons and labs may use (tests/test_public_face.py holds notebooks to it).
# _LAZY maps a name to the submodule that defines it and _FACES lists submodules that are
# public as a whole (each with its own __all__); both load on first use, so importing the
# package stays as cheap as before.
_LAZY = {
    "PAYLOADS": "loadgen",
    "Budget": "orchestrate",
    "HashEmbedder": "app",
    "Usage": "orchestrate",
    "api_gateway_event": "app",
    "closed_loop": "loadgen",
    "concurrency_sweep": "loadgen",
    "create_app": "app",
    "free_port": "server_process",
    "invoke_locally": "app",
    "launch": "launcher",
    "make_lambda_handler": "app",
    "serve_in_thread": "in_thread_server",
    "simulate": "orchestration_sim",
}
_FACES = (
    "loadgen",
    "observe",
    "orchestrate",
)
__all__ = sorted([*_LAZY, *_FACES])

__getattr__ = lazy_face(__name__, _LAZY, _FACES)
