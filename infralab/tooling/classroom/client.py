"""``python -m infralab share``: send your saved measurements to your class's collector.

Opt-in and explicit: it sends only the typed records in :func:`infralab.core.results.results_dir`
(your own measurements, never the kit's recorded runs), under the nickname you choose, and
prints what it sent. Re-running it stores nothing twice.

One call for the student: the first share joins the class (``POST api/join`` with the class's
join token and the nickname) and keeps the student token it returns in a file only the
student can read (``<results folder>/.class_tokens.json``, 0600); every share posts with that
token, so the collector stores the records under the nickname it names and nobody else can
post under it. Tokens are never printed: a malformed one is described, not echoed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from infralab.core import results
from infralab.core.errors import InfralabError

# What lessons and labs may use (tests/test_public_face.py holds notebooks to it).
__all__ = [
    "export_csv",
    "fetch_room",
]


class ShareError(RuntimeError, InfralabError):
    """Why sharing did not happen, with what to do."""

    hint = "Check the collector URL and token your instructor gave you; `python -m infralab share --help`."


def saved_records(folder: Path | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(the valid saved records as dicts, one line per file skipped and why)."""
    folder = folder or results.results_dir()
    found, skipped = [], []
    for kind in results.KINDS:
        path = folder / f"{kind}.json"
        if not path.is_file():
            continue
        try:
            record = results.from_dict(json.loads(path.read_text()))
            found.append(record.to_dict())
        except (results.ResultError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            skipped.append(f"{path}: {exc}")
    return found, skipped


TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
TOKENS_FILE = ".class_tokens.json"


def check_token(token: Any, what: str = "token") -> str:
    """The token stripped of surrounding blanks, or ShareError saying what is wrong with it
    without repeating it (a token echoed back ends up in logs and screen shares)."""
    if not isinstance(token, str) or not token.strip():
        raise ShareError(f"the {what} is empty: paste the one your instructor gave you")
    token = token.strip()
    if not 8 <= len(token) <= 200:
        raise ShareError(
            f"the {what} has {len(token)} characters; the collector's tokens have 8-200 "
            "(was it cut short or pasted twice?)"
        )
    if not TOKEN_CHARS.fullmatch(token):
        bad = next(i for i, c in enumerate(token) if not TOKEN_CHARS.fullmatch(c))
        kind = "a space" if token[bad].isspace() else "a character that no token holds"
        raise ShareError(
            f"the {what} has {kind} at position {bad + 1} of {len(token)}: tokens are letters, "
            "digits, '-' and '_' only (copy it again, without quotes)"
        )
    return token


def _tokens_path() -> Path:
    return results.results_dir() / TOKENS_FILE


def _key(url: str, class_token: str) -> str:
    return hashlib.sha256(f"{url.rstrip('/')}\n{class_token}".encode()).hexdigest()


def _saved_tokens() -> dict[str, dict[str, str]]:
    try:
        data = json.loads(_tokens_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_token(url: str, class_token: str, nickname: str, student: str | None) -> None:
    """Keep (or with None forget) a student token, in a file only this user can read."""
    data = _saved_tokens()
    mine = data.setdefault(_key(url, class_token), {})
    if student is None:
        mine.pop(nickname, None)
    else:
        mine[nickname] = student
    path = _tokens_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(data, f)


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text[:300]


def _post(http: Any, endpoint: str, body: dict, token: str) -> Any:
    import httpx

    try:
        return http.post(endpoint, json=body, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise ShareError(f"cannot reach the collector at {endpoint}: {exc}") from None


def join(url: str, class_token: str, nickname: str, http: Any = None) -> str:
    """A student token for ``nickname`` in the class: the one kept from an earlier join, else
    a new one from ``POST api/join`` (then kept, 0600)."""
    import httpx

    class_token = check_token(class_token, "class token")
    kept = _saved_tokens().get(_key(url, class_token), {}).get(nickname)
    if kept:
        return kept
    own = http is None
    http = http or httpx.Client(timeout=30.0)
    try:
        r = _post(http, url.rstrip("/") + "/api/join", {"nickname": nickname}, class_token)
    finally:
        if own:
            http.close()
    if r.status_code >= 400:
        raise ShareError(f"the collector refused to join the class ({r.status_code}): {_detail(r)}")
    student = r.json()["token"]
    _save_token(url, class_token, nickname, student)
    return student


def share(url: str, token: str, nickname: str, timeout: float = 30.0) -> dict[str, Any]:
    """Upload the saved records; returns the collector's answer (received, stored).

    ``token`` is the class's join token: the first share joins the class as ``nickname`` and
    keeps the student token it gets (:func:`join`); later shares reuse it.
    """
    import httpx

    token = check_token(token, "class token")
    records, skipped = saved_records()
    for line in skipped:
        print(f"skipped {line}")
    if not records:
        raise ShareError(
            f"no saved measurements in {results.results_dir()}: run a lesson that measures "
            "(02, 03, 04 or 06) first"
        )
    endpoint = url.rstrip("/") + "/api/share"
    with httpx.Client(timeout=timeout) as http:
        for attempt in range(2):
            student = join(url, token, nickname, http)
            response = _post(http, endpoint, {"records": records}, student)
            if response.status_code == 403 and attempt == 0:
                # a kept token the collector no longer knows (a new database): join again
                _save_token(url, token, nickname, None)
                continue
            break
    if response.status_code >= 400:
        raise ShareError(
            f"the collector refused the upload ({response.status_code}): {_detail(response)}"
        )
    return response.json()


def fetch_room(url: str, token: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every record the class shared (the instructor's view; the join token reads it)."""
    import httpx

    token = check_token(token)
    r = httpx.get(
        url.rstrip("/") + "/api/records",
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    if r.status_code >= 400:
        raise ShareError(f"the collector refused ({r.status_code}): {_detail(r)}")
    return r.json()["records"]


def export_csv(url: str, token: str, path: Path | str, timeout: float = 30.0) -> Path:
    """The class as CSV (one row per record, with the record itself as JSON) saved to ``path``."""
    import httpx

    token = check_token(token)
    r = httpx.get(
        url.rstrip("/") + "/api/export.csv",
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    if r.status_code >= 400:
        raise ShareError(f"the collector refused ({r.status_code}): {_detail(r)}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(r.text)
    return out
