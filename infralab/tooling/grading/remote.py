"""The grader's half of remote calls: a kernel it talks to, and proxies for the student's objects.

Why: checks and references must never share a process with the student's code. A check in
the grader receives, for each argument, either plain data copied out of the student's kernel
(numbers, strings, lists, dicts, arrays, tables, the kit's dataclasses) or a :class:`Remote`
proxy. Calling a proxy sends the arguments (plain data) into the kernel and brings back the
result the same way. Nothing from the kernel is ever unpickled or evaluated here: a reply is
JSON decoded by this module into built-in types, so an object that "equals anything" arrives
as an opaque proxy, which equals nothing but itself.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import json
import math
import queue
import time
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError

RPC_MIME = "text/x-infralab-rpc"
KERNEL_SIDE = Path(__file__).with_name("kernel_rpc.py")
MAX_REPLY_CHARS = 64 * 2**20
# The student's exceptions come back by name; these are re-raised as themselves so the
# checks' own handling (a placeholder's NotImplementedError, a ZeroDivisionError) still works.
PASSED_THROUGH = {
    name
    for name in dir(builtins)
    if isinstance(getattr(builtins, name), type)
    and issubclass(getattr(builtins, name), Exception)
    and not issubclass(getattr(builtins, name), (OSError, Warning))
}


class RemoteError(InfralabError, RuntimeError):
    """The student's code raised in its kernel (type and message copied out as text)."""

    hint = "Run the cell that defines it and try it on a small input in a new cell."

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class KernelGone(RemoteError):
    """The kernel stopped answering (it died, exited or ran past its time)."""

    fatal = True


def _decode(value: Any, kernel: KernelSession, depth: int = 0) -> Any:
    if depth > 60:
        raise RemoteError("ValueError", "reply nested too deeply")
    if isinstance(value, list):
        return [_decode(v, kernel, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("__t__")
    items = value.get("v")
    if tag == "handle":
        return Remote(kernel, int(value["id"]), str(value.get("type", "?")))
    if tag == "tuple":
        return tuple(_decode(v, kernel, depth + 1) for v in items)
    if tag == "set":
        out = [_decode(v, kernel, depth + 1) for v in items]
        try:
            return set(out)
        except TypeError:
            return out
    if tag == "dict":
        pairs = [(_decode(k, kernel, depth + 1), _decode(v, kernel, depth + 1)) for k, v in items]
        try:
            return dict(pairs)
        except TypeError:  # an unhashable key (a proxy): keep the pairs
            return pairs
    if tag == "float":
        return float(items) if items in ("nan", "inf", "-inf") else math.nan
    if tag == "bigint":
        return Remote(kernel, 0, "int (too large to copy)")
    if tag == "path":
        return Path(str(items))
    if tag == "ndarray":
        import numpy as np

        return np.asarray(_decode(items, kernel, depth + 1), dtype=value["dtype"]).reshape(
            value["shape"]
        )
    if tag in ("DataFrame", "Series"):
        import pandas as pd

        data = _decode(items, kernel, depth + 1)
        index = _decode(value.get("index"), kernel, depth + 1)
        frame = pd.DataFrame(data, index=index if index else None)
        if tag == "Series":
            return frame.iloc[:, 0].rename(_decode(value.get("name"), kernel, depth + 1))
        return frame
    if tag == "dataclass":
        return _kit_dataclass(str(value.get("cls", "")), items, kernel, depth)
    raise RemoteError("ValueError", f"reply with an unknown tag {str(tag)[:40]!r}")


def _kit_dataclass(path: str, items: dict, kernel: KernelSession, depth: int) -> Any:
    """A kit dataclass rebuilt from its fields (only classes of the grader's own kit)."""
    module, _, name = path.partition(":")
    if not module.startswith("infralab.") or not isinstance(items, dict):
        raise RemoteError("TypeError", f"{path[:80]} is not one of the kit's records")
    cls: Any = importlib.import_module(module)
    for part in name.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and is_dataclass(cls)):
        raise RemoteError("TypeError", f"{path[:80]} is not one of the kit's records")
    values = {k: _decode(v, kernel, depth + 1) for k, v in items.items()}
    obj = object.__new__(cls)
    for f in fields(cls):
        object.__setattr__(obj, f.name, values.get(f.name))
    return obj


def _encode(value: Any, depth: int = 0) -> Any:
    """The grader's arguments as the kernel's decoder reads them."""
    if depth > 60:
        # builtin on purpose: a check's own bug (what it passed cannot travel), not the student's
        raise ValueError("argument nested too deeply")
    if isinstance(value, Remote):
        return {"__t__": "ref", "id": value._id}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"__t__": "float", "v": repr(value)}
    if isinstance(value, list):
        return [_encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"__t__": "tuple", "v": [_encode(v, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__t__": "set", "v": [_encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__t__": "dict", "v": [[_encode(k, depth + 1), _encode(v, depth + 1)]
                                       for k, v in value.items()]}  # fmt: skip
    if isinstance(value, Path):
        return {"__t__": "path", "v": str(value)}
    if isinstance(value, functools.partial) and not value.keywords:
        fn = value.func
        where, name = getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "<")
        if where.startswith("infralab.") and "<" not in name:
            return {"__t__": "partial", "fn": f"{where}:{name}",
                    "v": [_encode(a, depth + 1) for a in value.args]}  # fmt: skip
    module = type(value).__module__
    if module.startswith("numpy"):
        import numpy as np

        if isinstance(value, np.generic):
            return _encode(value.item(), depth)
        if isinstance(value, np.ndarray):
            return {"__t__": "ndarray", "dtype": str(value.dtype), "shape": list(value.shape),
                    "v": _encode(value.tolist(), depth + 1)}  # fmt: skip
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return {"__t__": "DataFrame", "index": _encode(value.index.tolist(), depth + 1),
                    "v": _encode(value.to_dict(orient="list"), depth + 1)}  # fmt: skip
    if is_dataclass(value) and not isinstance(value, type) and module.startswith("infralab."):
        return {"__t__": "dataclass", "cls": f"{module}:{type(value).__qualname__}",
                "v": {f.name: _encode(getattr(value, f.name), depth + 1) for f in fields(value)}}  # fmt: skip
    # builtin on purpose: a check's own bug (what it passed cannot travel), not the student's
    raise TypeError(f"cannot send a {type(value).__name__} into the student's kernel")


class KernelSession:
    """A blocking client for one submission's kernel: run cells, answer remote requests."""

    def __init__(self, client: Any, alive: Any, interrupt: Any) -> None:
        self.client = client  # jupyter_client.BlockingKernelClient, channels started
        self.alive = alive  # () -> bool
        self.interrupt = interrupt  # () -> None: stops a call that ran past its time
        self.deadline = math.inf  # monotonic time after which nothing more runs
        self.call_timeout = 60.0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def execute(self, code: str, timeout: float) -> tuple[str, list[dict[str, Any]]]:
        """Run ``code``; ("ok" | "error" | "timeout" | "dead", display data published)."""
        timeout = min(timeout, self.remaining())
        if timeout <= 0:
            return "timeout", []
        if not self.alive():
            return "dead", []
        msg_id = self.client.execute(code, store_history=False, allow_stdin=False)
        end = time.monotonic() + timeout
        published: list[dict[str, Any]] = []
        status, idle = "ok", False
        while not idle:
            left = end - time.monotonic()
            if left <= 0:
                return "timeout", published
            try:
                msg = self.client.get_iopub_msg(timeout=min(left, 0.5))
            except queue.Empty:
                if not self.alive():
                    return "dead", published
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "error":
                status = "error"
            elif kind in ("display_data", "execute_result"):
                published.append(content.get("data", {}))
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return status, published

    def install(self) -> bool:
        """(Re)load the kernel half of the protocol into a fresh module of its own."""
        source = KERNEL_SIDE.read_text(encoding="utf-8")
        code = (
            "import sys as _s, types as _t\n"
            "_m = _t.ModuleType('__infralab_rpc__')\n"
            f"exec(compile({source!r}, '<infralab grader>', 'exec'), _m.__dict__)\n"
            "_m._user_ns = get_ipython().user_ns\n"
            "_s.modules['__infralab_rpc__'] = _m\n"
            "del _s, _t, _m\n"
        )
        status, _ = self.execute(code, timeout=30)
        return status == "ok"

    def request(self, **request: Any) -> Any:
        """One operation in the kernel; its result decoded, or the student's error raised."""
        text = json.dumps(request)
        code = f"__import__('sys').modules['__infralab_rpc__'].answer({text!r})"
        status, published = self.execute(code, timeout=self.call_timeout)
        if status == "timeout":
            self.interrupt()
            raise KernelGone(
                "TimeoutError", f"no answer within {self.call_timeout:g} s (the code still ran)"
            )
        if status == "dead":
            raise KernelGone("KernelDied", "the kernel stopped (an exit, a crash or a limit)")
        replies = [d[RPC_MIME] for d in published if isinstance(d.get(RPC_MIME), str)]
        if not replies:
            raise RemoteError("RuntimeError", "the kernel sent no answer (the notebook changed "
                              "how its kernel displays results)")  # fmt: skip
        raw = replies[-1]
        if len(raw) > MAX_REPLY_CHARS:
            raise RemoteError("MemoryError", "the answer was too large to copy out")
        try:
            reply = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise RemoteError("ValueError", f"unreadable answer ({type(exc).__name__})") from None
        if not isinstance(reply, dict):
            raise RemoteError("ValueError", "malformed answer")
        if "error" in reply:
            err = reply["error"] if isinstance(reply["error"], dict) else {}
            kind, message = str(err.get("type", "Exception")), str(err.get("message", ""))
            if err.get("module") == "builtins" and kind in PASSED_THROUGH:
                raise getattr(builtins, kind)(message)
            raise RemoteError(kind, message)
        return _decode(reply.get("ok"), self)

    def evaluate(self, expr: str) -> Any:
        """A Python expression evaluated in the student's namespace, copied out."""
        return self.request(op="eval", expr=expr)


class Remote:
    """An object that lives in the student's kernel. Calls, attributes and items go there and
    come back as plain data (or as another proxy). It never compares equal to anything else."""

    __slots__ = ("_kernel", "_id", "_type")

    def __init__(self, kernel: KernelSession, key: int, type_name: str) -> None:
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_id", key)
        object.__setattr__(self, "_type", type_name)

    @property
    def remote_type(self) -> str:
        """The object's class as the kernel names it (module.qualname)."""
        return self._type

    def _ask(self, op: str, *args: Any, **extra: Any) -> Any:
        if self._id == 0:
            raise RemoteError("ValueError", f"{self._type}: not available")
        return self._kernel.request(op=op, id=self._id, args=_encode(list(args)), **extra)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", *args, kwargs=_encode(kwargs))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", value, name=name)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key)

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int:
            # builtin on purpose: Python's len() protocol raises TypeError for this
            raise TypeError("len() of the student's object is not an int")
        return n

    def __iter__(self) -> Any:
        out = self._ask("list")
        return iter(out if isinstance(out, list) else [])

    def attribute(self, name: str) -> Any:
        """Any attribute, dunders too (``__module__`` of the object itself, not of the proxy)."""
        return self._ask("getattr", name=name)

    def apply(self, fn: Any, *args: Any) -> Any:
        """Run the kit's helper ``fn`` (a module-level function) in the kernel, on ``args``."""
        path = f"{fn.__module__}:{fn.__qualname__}"
        return self._kernel.request(op="apply", fn=path, args=_encode(list(args)))

    def is_a(self, cls: str) -> bool:
        """isinstance in the kernel, for a class named "module:Qualname"."""
        return self._ask("isinstance", cls=cls) is True

    def calls_into(self, names: list[str], *args: Any, **kwargs: Any) -> bool:
        """Whether calling it runs any of the kit functions named "module:qualname"."""
        return self._ask("calls_into", *args, kwargs=_encode(kwargs), names=names) is True

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return hash((id(self._kernel), self._id))

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<{self._type} in the student's kernel>"


def apply_in_kernel(kernel: KernelSession, fn: str, *args: Any, **kwargs: Any) -> Any:
    """Run the kit helper ``fn`` ("infralab.module:function") inside the kernel on ``args``."""
    return kernel.request(op="apply", fn=fn, args=_encode(list(args)), kwargs=_encode(kwargs))
