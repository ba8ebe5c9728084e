"""What the class collector accepts: typed result records, checked harder than a local file.

Why a layer on top of :func:`infralab.core.results.from_dict`: a saved file on a student's own
disk is trusted to hold the right types once its numbers check out, but an endpoint that a
whole room posts to must also refuse wrong types in text fields, non-finite numbers (they
would break every JSON reader later), oversized values, and anything in ``machine`` beyond
the kit's own description of a machine (the collector keeps no personal data).

Before any of that, :func:`parse_json` reads the body itself defensively: a number with more
digits than any measurement has, ``NaN``/``Infinity``, nesting deeper than a record needs
and text that is not valid Unicode (a lone surrogate such as ``"\\ud800"``, which JSON can
escape but UTF-8 cannot carry) are each refused with a message, never a 500. And
:func:`readable` is the way out: whatever an older collector stored, what is served is JSON
that encodes.
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

from infralab.core import results
from infralab.core.errors import InfralabError

NICKNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}$")
MAX_RECORDS = 20
MAX_TEXT = 300
MAX_LEVELS = 64
MAX_DEPTH = 8  # a body's nesting: {"records": [{"machine": {"gpus": [...]}}]} is 4
MAX_DIGITS = 20  # an integer longer than this is no measurement (2**64 has 20 digits)
MAX_INT = 2**53  # beyond it a JSON reader's double no longer holds the integer exactly
MAX_NUMBER_TEXT = 64  # characters of one number literal in the body

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


class BodyRejected(ValueError, InfralabError):
    """A request body that is not acceptable JSON; the message says why (a 400)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BodyRejected(f"a number has {len(text.lstrip('-'))} digits (at most {MAX_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_TEXT:
        raise BodyRejected(f"a number is written with {len(text)} characters")
    value = float(text)
    if not math.isfinite(value):
        raise BodyRejected("a number is too large to be finite; numbers must be finite")
    return value


def _parse_constant(name: str) -> Any:
    raise BodyRejected(f"{name} is not a number JSON allows; numbers must be finite")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_tree(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse nesting past ``max_depth``, text (keys too) that is not valid Unicode, and
    integers a measurement never has. Iterative, so any depth is refused, not crashed on."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise BodyRejected(f"the JSON is nested more than {max_depth} levels deep")
        if isinstance(item, str):
            if _has_surrogate(item):
                raise BodyRejected(
                    "a text value holds a lone surrogate (an escape such as \\ud800 that "
                    "is not a character); send valid Unicode"
                )
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                raise BodyRejected(f"an integer is larger than {MAX_INT} (2**53)")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BodyRejected("numbers must be finite")
        elif isinstance(item, dict):
            for k, v in item.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        else:
            raise BodyRejected(f"a value of type {type(item).__name__} is not JSON")


def parse_json(body: bytes) -> Any:
    """The body as JSON, checked by :func:`check_tree`; BodyRejected saying why not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyRejected(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except BodyRejected:
        raise
    except RecursionError:  # the parser's own guard (its recursion limit): no crash
        raise BodyRejected(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, and int()'s own digit limit
        raise BodyRejected(f"the body is not JSON ({_printable(str(exc))})") from None
    check_tree(value)
    return value


def _printable(text: str, limit: int = 200) -> str:
    """Text safe to send back: valid UTF-8, bounded."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit] + "..."


def readable(value: Any, depth: int = 0) -> Any:
    """A stored value made safe to serve as JSON, whatever an older collector let in: text
    re-encoded (a lone surrogate becomes its escape), non-finite numbers None, integers past
    2**53 text, nesting past MAX_DEPTH cut."""
    if isinstance(value, str):
        return value if not _has_surrogate(value) else _printable(value, 10**6)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_INT else "(an integer too large to keep)"
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return "(nested too deeply to keep)"
    if isinstance(value, dict):
        return {readable(str(k)): readable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [readable(v, depth + 1) for v in value]
    return readable(str(value))


def load_stored(text: Any, kind: Any = None) -> dict[str, Any]:
    """A stored record's JSON as a safe dict; a placeholder saying so if it cannot be read."""
    try:
        value = json.loads(text, parse_constant=lambda _: None)
    except (ValueError, TypeError, RecursionError):
        value = None
    value = readable(value)
    if not isinstance(value, dict):
        return {"kind": readable(kind), "unreadable": "this stored record could not be read"}
    return value


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
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise RecordRejected(f"{where} is an integer larger than 2**53")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise RecordRejected(f"{where} is longer than {MAX_TEXT} characters")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(v, f"{where}.{_printable(str(k), 40)}", depth + 1)
    if isinstance(value, list):
        if len(value) > MAX_LEVELS:
            raise RecordRejected(f"{where} has more than {MAX_LEVELS} items")
        for i, v in enumerate(value):
            _finite(v, f"{where}[{i}]", depth + 1)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a dataclass field's type hint (the types results uses)."""
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
        else re.sub(r"infralab\.results\.(?:\w+\.)*", "", str(hint))
    )


def _hints(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)  # each class's own module resolves its annotations
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def check_record(data: Any, index: int = 0) -> results.Record:
    """The typed record behind one uploaded object, or RecordRejected saying what is wrong."""
    where = f"record {index}"
    if not isinstance(data, dict):
        raise RecordRejected(f"{where} is not a JSON object")
    try:
        check_tree(data)
    except BodyRejected as exc:
        raise RecordRejected(f"{where}: {exc}") from None
    _finite(data, where)
    try:
        record = results.from_dict(data)
    except results.ResultError as exc:
        raise RecordRejected(f"{where}: {_printable(str(exc))}") from None
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # a field's own __post_init__ refusing a value
        kind = _printable(repr(data.get("kind")), 40)
        raise RecordRejected(
            f"{where}: its fields do not fit a {kind} record: {_printable(str(exc))}"
        ) from None
    for f, hint in _hints(type(record)):
        if f.name in ("origin", "source", "note"):
            continue
        if not _fits(getattr(record, f.name), hint):
            value = getattr(record, f.name)
            shown = _printable(repr(value), 80)
            raise RecordRejected(f"{where}: {f.name} = {shown} is not of type {_name(hint)}")
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
