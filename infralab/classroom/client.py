"""``python -m infralab share``: send your saved measurements to your class's collector.

Opt-in and explicit: it sends only the typed records in :func:`infralab.results.results_dir`
(your own measurements, never the kit's recorded runs), under the nickname you choose, and
prints what it sent. Re-running it stores nothing twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infralab import results
from infralab.errors import InfralabError


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


def share(url: str, token: str, nickname: str, timeout: float = 30.0) -> dict[str, Any]:
    """Upload the saved records; returns the collector's answer (received, stored)."""
    import httpx

    records, skipped = saved_records()
    for line in skipped:
        print(f"skipped {line}")
    if not records:
        raise ShareError(
            f"no saved measurements in {results.results_dir()}: run a lesson that measures "
            "(02, 03, 04 or 06) first"
        )
    endpoint = url.rstrip("/") + "/api/share"
    try:
        response = httpx.post(
            endpoint,
            json={"nickname": nickname, "records": records},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise ShareError(f"cannot reach the collector at {endpoint}: {exc}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise ShareError(f"the collector refused the upload ({response.status_code}): {detail}")
    return response.json()


def fetch_room(url: str, token: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every record the class shared (the instructor's view; the join token reads it)."""
    import httpx

    r = httpx.get(
        url.rstrip("/") + "/api/records",
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    if r.status_code >= 400:
        raise ShareError(f"the collector refused ({r.status_code}): {r.json().get('detail')}")
    return r.json()["records"]


def export_csv(url: str, token: str, path: Path | str, timeout: float = 30.0) -> Path:
    """The class as CSV (one row per record, with the record itself as JSON) saved to ``path``."""
    import httpx

    r = httpx.get(
        url.rstrip("/") + "/api/export.csv",
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )
    if r.status_code >= 400:
        raise ShareError(f"the collector refused ({r.status_code}): {r.json().get('detail')}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(r.text)
    return out
