"""The class collector: a small FastAPI service that a class shares its measurements with.

Run it anywhere (``python -m infralab collector --db sqlite:///class.db --port 8765``) or as
a JupyterHub service (docs/hub.md). Routes, under the service prefix (``/`` alone, or the
``JUPYTERHUB_SERVICE_PREFIX`` the hub sets):

* ``POST api/classes`` (instructor token): a new class and its join token;
* ``POST api/join`` (a class's join token): ``{"nickname": ...}``; a token of the student's
  own, bound to that nickname (a nickname already taken in the class is refused with 409);
* ``POST api/share`` (a student token): ``{"records": [...]}``, stored under the nickname
  the token names (a ``"nickname"`` that is not the token's own is refused: nobody posts
  as someone else); every record is validated (:mod:`infralab.tooling.classroom.validate`); one bad
  record refuses the whole upload with a 4xx that names it, and nothing is stored; a record
  already shared is skipped;
* ``GET api/records`` / ``GET api/export.csv`` (the join token, or a student token of the
  class): the class's records;
* ``GET api/health``: liveness, no data.

Bodies are read chunk by chunk and refused with 413 as soon as they pass 512 KiB, whatever
the Content-Length says (or whether it is sent at all: chunked uploads), so a large upload
costs the service at most the limit. It keeps no personal data beyond the nickname a
student chose: no IP addresses (access log off), no user names, and of ``machine`` only
the kit's own description of a machine. No token is ever printed or logged: a generated
instructor token is written to a file only its owner can read, and the path is printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from infralab.core.errors import InfralabError
from infralab.tooling.classroom import validate
from infralab.tooling.classroom.store import Store, new_token

MAX_BODY = 512 * 1024


class _Refused(InfralabError):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") and value.strip() else None


def _class(store: Store, request: Request) -> tuple[str, str]:
    """(class id, name) of the class token, or of a student token's class: read access."""
    token = _token(request)
    if token is None:
        raise _Refused(401, "send the class's join token: 'Authorization: Bearer <token>'")
    found = store.class_for(token)
    if found is None:
        student = store.student_for(token)
        found = student[:2] if student else None
    if found is None:
        raise _Refused(403, "this token belongs to no class: ask your instructor for the token")
    return found


def _student(store: Store, request: Request) -> tuple[str, str, str]:
    """(class id, class name, nickname) of a student token: write access."""
    token = _token(request)
    if token is None:
        raise _Refused(401, "send your student token: 'Authorization: Bearer <token>'")
    found = store.student_for(token)
    if found is None:
        if store.class_for(token) is not None:
            raise _Refused(
                403,
                "this is the class's join token: join first (POST api/join with "
                '{"nickname": ...}) and share with the student token it returns '
                "(python -m infralab share does both)",
            )
        raise _Refused(403, "this token belongs to no student: ask your instructor for the token")
    return found


async def _body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, read chunk by chunk: 413 as soon as it passes ``limit``, never buffering past
    it (Why: ``request.body()`` reads a chunked upload whole before anything can check it)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _Refused(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise _Refused(413, f"the upload is larger than {limit // 1024} KiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"the upload is larger than {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> Any:
    body = await _body(request)
    try:
        return validate.parse_json(body)
    except validate.BodyRejected as exc:
        raise _Refused(400, str(exc)) from None


def _rows(store: Store, class_id: str) -> list[dict[str, Any]]:
    """The class's records, each made safe to serve (validate.readable): a row an older
    collector stored cannot break a read."""
    return [
        {
            "nickname": validate.readable(str(n)),
            "kind": validate.readable(str(k)),
            "sha256": validate.readable(str(h)),
            "received": validate.readable(str(t)),
            "record": validate.load_stored(r, k),
        }
        for n, k, h, t, r in store.records(class_id)
    ]


def create_app(store: Store, admin_token: str, prefix: str = "/") -> FastAPI:
    """The collector's app over ``store``; ``admin_token`` lets the instructor create classes."""
    prefix = "/" + prefix.strip("/")
    app = FastAPI(title="infralab class collector", docs_url=None, redoc_url=None)
    router = APIRouter(prefix="" if prefix == "/" else prefix)

    @app.exception_handler(_Refused)
    async def refused(_: Request, exc: _Refused) -> JSONResponse:
        detail = validate._printable(exc.detail, 1000)
        # A 413 leaves the rest of the upload unread: close, so the client stops sending.
        headers = {"Connection": "close"} if exc.status == 413 else None
        return JSONResponse({"detail": detail}, status_code=exc.status, headers=headers)

    # The order of these calls is the order the routes are matched in.
    _add_instructor_routes(router, store, admin_token)
    _add_student_routes(router, store)
    _add_read_routes(router, store)
    app.include_router(router)
    return app


def _add_instructor_routes(router: APIRouter, store: Store, admin_token: str) -> None:
    """health (no data) and new_class (the instructor token only)."""

    @router.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/api/classes")
    async def new_class(request: Request) -> dict[str, str]:
        if not secrets.compare_digest((_token(request) or "").encode(), admin_token.encode()):
            raise _Refused(403, "creating a class needs the collector's instructor token")
        body = await _json(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
            raise _Refused(422, 'send {"name": "<class name, 1-80 characters>"}')
        info = store.create_class(name)
        return {"class_id": info.id, "name": info.name, "token": info.token}


def _add_student_routes(router: APIRouter, store: Store) -> None:
    """join (the class's join token) and share (a student token, only as its own nickname)."""

    @router.post("/api/join")
    async def join(request: Request) -> dict[str, str]:
        token = _token(request)
        found = store.class_for(token)
        if found is None:
            raise _Refused(
                401 if token is None else 403,
                "joining needs the class's join token: ask your instructor for the token",
            )
        class_id, class_name = found
        body = await _json(request)
        if not isinstance(body, dict) or set(body) != {"nickname"}:
            raise _Refused(422, 'send {"nickname": "<a name you choose>"}')
        try:
            nickname = validate.check_nickname(body["nickname"])
        except validate.RecordRejected as exc:
            raise _Refused(422, str(exc)) from None
        student = store.join(class_id, nickname)
        if student is None:
            raise _Refused(
                409,
                f"the nickname {nickname!r} is taken in this class: choose another (its owner "
                "shares with the student token they got when they joined)",
            )
        return {"class": class_name, "nickname": nickname, "token": student}

    @router.post("/api/share")
    async def share(request: Request) -> dict[str, Any]:
        class_id, class_name, nickname = _student(store, request)
        body = await _json(request)
        records, unique = _share_rows(body, nickname)
        new = store.add(class_id, nickname, unique)
        return {
            "class": class_name,
            "nickname": nickname,
            "received": len(records),
            "stored": new,
        }


def _add_read_routes(router: APIRouter, store: Store) -> None:
    """records and export.csv: the class's records, for its join token or a student token."""

    @router.get("/api/records")
    def records(request: Request) -> dict[str, Any]:
        class_id, class_name = _class(store, request)
        return {"class": validate.readable(class_name), "records": _rows(store, class_id)}

    @router.get("/api/export.csv")
    def export(request: Request) -> PlainTextResponse:
        from infralab.tooling.classroom import room

        class_id, _ = _class(store, request)
        return PlainTextResponse(room.to_csv(_rows(store, class_id)), media_type="text/csv")


def _share_rows(body: Any, nickname: str) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """A share body checked whole (any bad record refuses all): its records, and the
    (kind, hash, canonical record) rows to store, one per distinct record."""
    if (
        not isinstance(body, dict)
        or "records" not in body
        or not set(body)
        <= {
            "nickname",
            "records",
        }
    ):
        raise _Refused(422, 'send {"records": [ ...result records... ]}')
    if "nickname" in body and body["nickname"] != nickname:
        raise _Refused(
            403, f"this student token is {nickname!r}'s: a record cannot be shared as another"
        )
    records = body["records"]
    if not isinstance(records, list) or not 1 <= len(records) <= validate.MAX_RECORDS:
        raise _Refused(422, f"records must be a list of 1-{validate.MAX_RECORDS} records")
    try:
        checked = [validate.check_record(r, i) for i, r in enumerate(records)]
    except validate.RecordRejected as exc:
        raise _Refused(422, f"{exc}. Nothing was stored.") from None
    rows = [(r.kind, validate.content_hash(r), validate.canonical(r)) for r in checked]
    unique = list({digest: (k, digest, rec) for k, digest, rec in rows}.values())
    return records, unique


def token_file(store: Store) -> Path:
    """Where a generated instructor token is kept: next to a SQLite database, else in
    ``~/.config/infralab``."""
    if store.kind == "sqlite":
        return store.path.with_name(store.path.name + ".instructor-token")
    return Path.home() / ".config" / "infralab" / "collector-instructor-token"


def instructor_token(store: Store, path: Path | None = None) -> tuple[str, Path]:
    """The instructor token kept in ``path`` (0600), generated there on first use.

    Why a file: a token printed to the terminal ends up in a hub's service log, in a
    scrollback, in a screen share. Only its path is printed; ``cat`` it when needed.
    """
    path = path or token_file(store)
    if path.is_file():
        token = path.read_text().strip()
        if token:
            os.chmod(path, 0o600)
            return token, path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token, path


def serve(
    db: str, port: int, host: str = "127.0.0.1", prefix: str | None = None, admin_token: str = ""
) -> None:
    """Run the collector until interrupted (uvicorn, access log off: no IP addresses kept)."""
    import uvicorn

    store = Store(db)
    token = admin_token or os.environ.get("INFRALAB_COLLECTOR_TOKEN") or ""
    if not token:
        token, path = instructor_token(store)
        print(
            f"instructor token (creates classes): in {path} (readable by you only); "
            "set INFRALAB_COLLECTOR_TOKEN to choose it",
            flush=True,
        )
    prefix = prefix if prefix is not None else os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    app = create_app(store, token, prefix)
    print(f"collector: {store.kind} at {db}; serving http://{host}:{port}{prefix}", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
