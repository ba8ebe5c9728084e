"""The kernel's half of the grader's remote calls: sent as source into a submission's kernel.

Why it exists: the grader's checks and references never run in the student's kernel (a cell
could patch them). They run in the grader's process and reach the student's objects through
this small server, which answers one request at a time with plain data: JSON values, tagged
tuples, arrays and tables, kit dataclasses by field, and an opaque handle for anything else.
Everything it returns is treated by the grader as untrusted output of the student's code, so
a cell that tampers with this module can only change what *its own* code appears to return.

The file imports nothing from ``infralab`` and is executed with ``exec`` into a fresh
namespace (the grader reads it as text), so it works against any copy of the kit.
"""

import dataclasses
import importlib
import json
import math
import sys

MAX_ITEMS = 2_000_000  # elements per reply; more comes back as a handle
MAX_DEPTH = 40
_handles: dict = {}
_user_ns: dict = {}


def _qualified(obj) -> str:
    kind = type(obj)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', kind.__name__)}"


def _handle(obj) -> dict:
    key = len(_handles) + 1
    _handles[key] = obj
    return {"__t__": "handle", "id": key, "type": _qualified(obj)}


def encode(value, depth: int = 0, budget: list | None = None):
    """Plain data for exact built-in, numpy and pandas types; a handle for everything else."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        return _handle(value)
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return value if abs(value) < 2**63 else {"__t__": "bigint", "v": str(value)[:4000]}
    if kind is float:
        if math.isfinite(value):
            return value
        return {"__t__": "float", "v": repr(value)}
    if kind in (list, tuple, set, frozenset):
        items = [encode(v, depth + 1, budget) for v in value]
        if kind is list:
            return items
        return {"__t__": kind.__name__ if kind is tuple else "set", "v": items}
    if kind is dict:
        return {
            "__t__": "dict",
            "v": [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in value.items()],
        }  # fmt: skip
    module = getattr(kind, "__module__", "") or ""
    if module == "numpy" or module.startswith("numpy."):
        import numpy as np

        if isinstance(value, np.generic) and kind.__module__ == "numpy":
            return encode(value.item(), depth, budget)
        if kind is np.ndarray and value.dtype.kind in "biuf" and value.size <= budget[0]:
            budget[0] -= value.size
            return {"__t__": "ndarray", "dtype": str(value.dtype), "shape": list(value.shape),
                    "v": encode(value.tolist(), depth + 1, [MAX_ITEMS])}  # fmt: skip
    if module == "pandas" or module.startswith("pandas."):
        import pandas as pd

        if kind in (pd.DataFrame, pd.Series) and value.size <= budget[0]:
            budget[0] -= value.size
            frame = value if kind is pd.DataFrame else value.to_frame(name=value.name or 0)
            return {"__t__": "DataFrame" if kind is pd.DataFrame else "Series",
                    "columns": encode([str(c) for c in frame.columns]),
                    "index": encode(frame.index.tolist(), depth + 1, budget),
                    "v": encode(frame.to_dict(orient="list"), depth + 1, budget),
                    "name": encode(getattr(value, "name", None)) if kind is pd.Series else None}  # fmt: skip
    if kind.__name__ in ("PosixPath", "WindowsPath", "PurePosixPath") and module.startswith(
        "pathlib"
    ):
        return {"__t__": "path", "v": str(value)}
    if dataclasses.is_dataclass(value) and module.startswith("infralab."):
        fields = {f.name: encode(getattr(value, f.name), depth + 1, budget)
                  for f in dataclasses.fields(value)}  # fmt: skip
        return {"__t__": "dataclass", "cls": f"{module}:{kind.__qualname__}", "v": fields}
    return _handle(value)


def decode(value):
    """The grader's arguments: plain data, references to handles, kit dataclasses."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("__t__")
    if tag == "ref":
        return _handles[value["id"]]
    if tag == "tuple":
        return tuple(decode(v) for v in value["v"])
    if tag == "set":
        return set(decode(v) for v in value["v"])
    if tag == "dict":
        return {decode(k): decode(v) for k, v in value["v"]}
    if tag == "float":
        return float(value["v"])
    if tag == "path":
        import pathlib

        return pathlib.Path(value["v"])
    if tag == "ndarray":
        import numpy as np

        return np.asarray(decode(value["v"]), dtype=value["dtype"]).reshape(value["shape"])
    if tag in ("DataFrame", "Series"):
        import pandas as pd

        frame = pd.DataFrame(decode(value["v"]), index=decode(value["index"]))
        return frame if tag == "DataFrame" else frame.iloc[:, 0].rename(decode(value["name"]))
    if tag == "partial":  # a kit function with some arguments bound (e.g. a bill shape)
        import functools

        return functools.partial(_resolve(value["fn"]), *decode(value["v"]))
    if tag == "dataclass":
        return _resolve(value["cls"])(**{k: decode(v) for k, v in value["v"].items()})
    # builtin on purpose: this file imports nothing from infralab (it runs in the kernel)
    raise ValueError(f"unknown tag {tag!r}")


def _resolve(path: str):
    module, _, name = path.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _calls_into(fn, args, kwargs, names) -> bool:
    targets = set()
    for path in names:
        try:
            target = _resolve(path)
        except Exception:
            continue
        code = getattr(target, "__code__", None)
        if code is not None:
            targets.add(code)
    hit = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in targets:
            hit.append(True)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        fn(*args, **kwargs)
    except Exception:
        pass
    finally:
        sys.setprofile(previous)
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return bool(hit) or code in targets


def _op(request: dict):
    op = request["op"]
    if op == "eval":
        return eval(request["expr"], _user_ns)  # the grader's own argument expressions
    if op == "names":
        return sorted(k for k in _user_ns if isinstance(k, str) and not k.startswith("_"))
    target = _handles[request["id"]] if "id" in request else None
    args = decode(request.get("args", []))
    kwargs = decode(request.get("kwargs", {"__t__": "dict", "v": []}))
    if op == "call":
        return target(*args, **kwargs)
    if op == "getattr":
        return getattr(target, request["name"])
    if op == "setattr":
        setattr(target, request["name"], args[0])
        return None
    if op == "getitem":
        return target[args[0]]
    if op == "len":
        return len(target)
    if op == "list":
        return list(target)
    if op == "isinstance":
        return isinstance(target, _resolve(request["cls"]))
    if op == "apply":
        return _resolve(request["fn"])(*args, **kwargs)
    if op == "calls_into":
        return _calls_into(target, args, kwargs, request["names"])
    if op == "repr":
        return repr(target)[:2000]
    # builtin on purpose: this file imports nothing from infralab (it runs in the kernel)
    raise ValueError(f"unknown operation {op!r}")


def answer(request_text: str) -> None:
    """Run one request and publish its reply as display data of a private MIME type."""
    from IPython.display import publish_display_data

    try:
        reply = {"ok": encode(_op(json.loads(request_text)))}
    except BaseException as exc:  # the student's code raised: report it as data
        reply = {"error": {"type": type(exc).__name__, "module": type(exc).__module__,
                           "message": str(exc)[:2000]}}  # fmt: skip
    try:
        text = json.dumps(reply, allow_nan=False)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"error": {"type": "TypeError", "module": "builtins",
                                     "message": f"unserializable reply: {exc}"[:2000]}})  # fmt: skip
    publish_display_data({"text/x-infralab-rpc": text})
