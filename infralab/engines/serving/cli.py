"""``python -m infralab serve embeddings|chat|rag``: run a service in the foreground (Ctrl-C stops it).

Serves on 127.0.0.1 unless ``--host`` says otherwise. The apps are imported only when asked
for, so a service that is not written yet (or lacks its model) cannot stop the others.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

APPS = {
    "embeddings": "infralab.engines.serving.app:create_app",
    "chat": "infralab.engines.serving.chat:create_chat_app",
    "rag": "infralab.engines.rag.cloud_app:create_app",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infralab serve", description=__doc__.split("\n")[0])
    p.add_argument("app", choices=sorted(APPS), help="which service")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--no-batching", action="store_true", help="embeddings: one model call per request"
    )
    p.add_argument("--variant", default=None, help="embeddings: int8 (default) or fp32")
    p.add_argument("--max-batch-size", type=int, default=None, help="embeddings: texts per batch")
    p.add_argument(
        "--max-wait-ms", type=float, default=None, help="embeddings: longest wait to fill a batch"
    )
    p.add_argument(
        "--kwargs",
        default=None,
        help="extra factory keyword arguments as JSON, e.g. '{\"threads\": 1}'",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"error: --port must be between 1 and 65535, got {args.port}", file=sys.stderr)
        return 2
    spec = APPS[args.app]
    module_name, factory_name = spec.split(":")
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as exc:
        print(
            f"error: the {args.app} service ({spec}) is not available: {exc}.\n"
            "Is that part of the kit installed and its model fetched (python -m infralab fetch)?",
            file=sys.stderr,
        )
        return 2
    kwargs: dict = {}
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except json.JSONDecodeError as exc:
            print(f"error: --kwargs is not valid JSON: {exc}", file=sys.stderr)
            return 2
        if not isinstance(kwargs, dict):
            print("error: --kwargs must be a JSON object", file=sys.stderr)
            return 2
    if args.app == "embeddings":
        if args.no_batching:
            kwargs["batching"] = False
        for key in ("variant", "max_batch_size", "max_wait_ms"):
            if getattr(args, key) is not None:
                kwargs[key] = getattr(args, key)
    try:
        app = factory(**kwargs)
    except (TypeError, ValueError, RuntimeError) as exc:
        print(f"error: could not build the {args.app} service: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    print(f"serving {args.app} on http://{args.host}:{args.port} (Ctrl-C stops it)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
