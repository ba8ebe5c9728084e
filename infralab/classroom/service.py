"""The class collector: a small FastAPI service that a class shares its measurements with.

Run it anywhere (``python -m infralab collector --db sqlite:///class.db --port 8765``) or as
a JupyterHub service (docs/hub.md). Routes, under the service prefix (``/`` alone, or the
``JUPYTERHUB_SERVICE_PREFIX`` the hub sets):

* ``POST api/classes`` (instructor token): a new class and its join token;
* ``POST api/share`` (a class's join token): ``{"nickname": ..., "records": [...]}``; every
  record is validated (:mod:`infralab.classroom.validate`); one bad record refuses the whole
  upload with a 4xx that names it, and nothing is stored; a record already shared is skipped;
* ``GET api/records`` / ``GET api/export.csv`` (the join token): the class's records;
* ``GET api/health``: liveness, no data.

It keeps no personal data beyond the nickname a student chose: no IP addresses (access log
off), no user names, and of ``machine`` only the kit's own description of a machine.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from infralab.classroom import validate
from infralab.classroom.store import Store, new_token
from infralab.errors import InfralabError

MAX_BODY = 512 * 1024


class _Refused(InfralabError):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") and value.strip() else None


def _class(store: Store, request: Request) -> tuple[str, str]:
    token = _token(request)
    if token is None:
        raise _Refused(401, "send the class's join token: 'Authorization: Bearer <token>'")
    found = store.class_for(token)
    if found is None:
        raise _Refused(403, "this token belongs to no class: ask your instructor for the token")
    return found


async def _json(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _Refused(413, f"the upload is larger than {MAX_BODY // 1024} KiB")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _Refused(400, f"the body is not JSON ({exc})") from None


def create_app(store: Store, admin_token: str, prefix: str = "/") -> FastAPI:
    """The collector's app over ``store``; ``admin_token`` lets the instructor create classes."""
    prefix = "/" + prefix.strip("/")
    app = FastAPI(title="infralab class collector", docs_url=None, redoc_url=None)
    router = APIRouter(prefix="" if prefix == "/" else prefix)

    @app.exception_handler(_Refused)
    async def refused(_: Request, exc: _Refused) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

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

    @router.post("/api/share")
    async def share(request: Request) -> dict[str, Any]:
        class_id, class_name = _class(store, request)
        body = await _json(request)
        if not isinstance(body, dict) or set(body) != {"nickname", "records"}:
            raise _Refused(422, 'send {"nickname": "...", "records": [ ...result records... ]}')
        records = body["records"]
        if not isinstance(records, list) or not 1 <= len(records) <= validate.MAX_RECORDS:
            raise _Refused(422, f"records must be a list of 1-{validate.MAX_RECORDS} records")
        try:
            nickname = validate.check_nickname(body["nickname"])
            checked = [validate.check_record(r, i) for i, r in enumerate(records)]
        except validate.RecordRejected as exc:
            raise _Refused(422, f"{exc}. Nothing was stored.") from None
        rows = [(r.kind, validate.content_hash(r), validate.canonical(r)) for r in checked]
        unique = list({digest: (k, digest, rec) for k, digest, rec in rows}.values())
        new = store.add(class_id, nickname, unique)
        return {"class": class_name, "received": len(records), "stored": new}

    @router.get("/api/records")
    def records(request: Request) -> dict[str, Any]:
        class_id, class_name = _class(store, request)
        rows = [
            {"nickname": n, "kind": k, "sha256": h, "received": t, "record": json.loads(r)}
            for n, k, h, t, r in store.records(class_id)
        ]
        return {"class": class_name, "records": rows}

    @router.get("/api/export.csv")
    def export(request: Request) -> PlainTextResponse:
        from infralab.classroom import room

        class_id, _ = _class(store, request)
        rows = [
            {"nickname": n, "kind": k, "sha256": h, "received": t, "record": json.loads(r)}
            for n, k, h, t, r in store.records(class_id)
        ]
        return PlainTextResponse(room.to_csv(rows), media_type="text/csv")

    app.include_router(router)
    return app


def serve(
    db: str, port: int, host: str = "127.0.0.1", prefix: str | None = None, admin_token: str = ""
) -> None:
    """Run the collector until interrupted (uvicorn, access log off: no IP addresses kept)."""
    import uvicorn

    store = Store(db)
    token = admin_token or os.environ.get("INFRALAB_COLLECTOR_TOKEN") or ""
    if not token:
        token = new_token()
        print(
            f"instructor token (creates classes; set INFRALAB_COLLECTOR_TOKEN to fix it): {token}"
        )
    prefix = prefix if prefix is not None else os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    app = create_app(store, token, prefix)
    print(f"collector: {store.kind} at {db}; serving http://{host}:{port}{prefix}", flush=True)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
