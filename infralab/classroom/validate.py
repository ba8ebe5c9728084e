"""What the class collector accepts: typed result records, checked harder than a local file.

Why a layer on top of :func:`infralab.results.from_dict`: a saved file on a student's own
disk is trusted to hold the right types once its numbers check out, but an endpoint that a
whole room posts to must also refuse wrong types in text fields, non-finite numbers (they
would break every JSON reader later), oversized values, and anything in ``machine`` beyond
the kit's own description of a machine (the collector keeps no personal data).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from typing import Any

from infralab import results
from infralab.errors import InfralabError

NICKNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}$")
MAX_RECORDS = 20
MAX_TEXT = 300
MAX_LEVELS = 64

# The keys results.machine() (and the recorded files' converters) write; nothing else is kept.
MACHINE_KEYS = (
    "platform",
    "processor",
    "cpu_model",
    "cpus",
    "usable_cpus",
    "gpus",
    "python",
    "threads",
    "load_average_1m",
    "logical_cpus",
    "cpus_visible",
    "cpu",
)


class RecordRejected(ValueError, InfralabError):
    """A record or nickname the collector refuses; the message says which and why."""


def check_nickname(nickname: Any) -> str:
    """A chosen nickname: 1-32 letters, digits, spaces, '_', '.', '-' (never an e-mail)."""
    if not isinstance(nickname, str) or not NICKNAME.fullmatch(nickname):
        raise RecordRejected(
            "nickname must be 1-32 characters of letters, digits, space, '_', '.' or '-', "
            "starting with a letter or digit (choose one; do not use your real name or e-mail)"
        )
    return nickname.strip()


def _finite(value: Any, where: str, depth: int = 0) -> None:
    if depth > 4:
        raise RecordRejected(f"{where} is nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordRejected(f"{where} is {value!r}; numbers must be finite")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise RecordRejected(f"{where} is longer than {MAX_TEXT} characters")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{k}", depth + 1)
    if isinstance(value, list):
        if len(value) > MAX_LEVELS:
            raise RecordRejected(f"{where} has more than {MAX_LEVELS} items")
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]", depth + 1)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a dataclass field's type hint (the types results.py uses)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    if hint is str:
        return isinstance(value, str)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint) and all(
            _fits(getattr(value, f.name), t) for f, t in _hints(hint)
        )
    return False


def _name(hint: Any) -> str:
    return (
        getattr(hint, "__name__", None)
        if isinstance(hint, type)
        else str(hint).replace("infralab.results.", "")
    )


def _hints(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls, vars(results))
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def check_record(data: Any, index: int = 0) -> results.Record:
    """The typed record behind one uploaded object, or RecordRejected saying what is wrong."""
    where = f"record {index}"
    if not isinstance(data, dict):
        raise RecordRejected(f"{where} is not a JSON object")
    _finite(data, where)
    try:
        record = results.from_dict(data)
    except results.ResultError as exc:
        raise RecordRejected(f"{where}: {exc}") from None
    except (ValueError, TypeError) as exc:  # a field's own __post_init__ refusing a value
        kind = data.get("kind")
        raise RecordRejected(f"{where}: its fields do not fit a {kind} record: {exc}") from None
    for f, hint in _hints(type(record)):
        if f.name in ("origin", "source", "note"):
            continue
        if not _fits(getattr(record, f.name), hint):
            value = getattr(record, f.name)
            raise RecordRejected(f"{where}: {f.name} = {value!r} is not of type {_name(hint)}")
    if not record.date:
        raise RecordRejected(f"{where}: it has no date")
    record.machine = {k: v for k, v in record.machine.items() if k in MACHINE_KEYS}
    return record


def canonical(record: results.Record) -> str:
    """The record as canonical JSON (sorted keys): what is stored and hashed."""
    return json.dumps(record.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)


def content_hash(record: results.Record) -> str:
    """sha256 of the canonical record: the same measurement shared twice has one hash."""
    return hashlib.sha256(canonical(record).encode()).hexdigest()
