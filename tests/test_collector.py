"""The class collector: bad records refused with a 4xx and nothing stored, tokens that
belong to another class cannot read or write, re-sharing stores nothing twice, a room
sharing at once loses nothing, and the data survives a restart of the process: each on
SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infralab.core import results
from infralab.tooling.classroom import client, room, validate
from infralab.tooling.classroom.service import create_app
from infralab.tooling.classroom.store import Store, StoreError

REPO = Path(__file__).resolve().parents[1]
ADMIN = "instructor-secret"


def _record(i: int = 0) -> dict:
    return results.ServingResult(
        throughput_rps=100.0 + i, mean_duration_s=0.01, cpu_vcpus=2.0, command=f"test {i}"
    ).to_dict()


def _pg_tool(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or where Debian's postgresql package puts it."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on a Unix socket in a temporary folder (no TCP port)."""
    pytest.importorskip("psycopg", reason="psycopg (the Postgres driver) is not installed")
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server (initdb, pg_ctl) is not installed: run make db-deps")
    base = Path(tempfile.mkdtemp(prefix="infralab-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = base / "data", _free_port()
    run = dict(check=True, capture_output=True, text=True)
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync"], **run)  # fmt: skip
    options = f"-k {base} -c listen_addresses='' -p {port} -c fsync=off"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-w", "-t", "60", "-l",
                    str(base / "log"), "-o", options, "start"], **run)  # fmt: skip
    try:
        yield f"postgresql://postgres@/{{db}}?host={base}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """The class database, once on SQLite (the default) and once on a real Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'class.db'}"
    import psycopg

    template = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(template.format(db="postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return template.format(db=name)


@pytest.fixture()
def app(db_url):
    store = Store(db_url)
    with TestClient(create_app(store, ADMIN)) as c:
        c.store = store
        yield c


def _new_class(c, name="Room A") -> str:
    r = c.post("/api/classes", json={"name": name}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _join(c, class_token: str, nickname: str, base: str = "") -> str:
    """The student token a nickname gets on joining the class."""
    r = c.post(base + "/api/join", json={"nickname": nickname}, headers=_auth(class_token))
    assert r.status_code == 200, r.text
    assert r.json()["nickname"] == nickname
    return r.json()["token"]


def test_share_is_idempotent_and_exported(app):
    token = _new_class(app)
    student = _join(app, token, "otter")
    body = {"nickname": "otter", "records": [_record(1), _record(2)]}
    first = app.post("/api/share", json=body, headers=_auth(student)).json()
    again = app.post("/api/share", json={"records": body["records"]}, headers=_auth(student))
    again = again.json()
    assert (first["stored"], again["stored"]) == (2, 0)
    rows = app.get("/api/records", headers=_auth(token)).json()["records"]
    assert len(rows) == 2 and {r["nickname"] for r in rows} == {"otter"}
    assert sorted(r["record"]["throughput_rps"] for r in rows) == [101.0, 102.0]
    csv = app.get("/api/export.csv", headers=_auth(token)).text
    assert csv.splitlines()[0].startswith("nickname,workload,hardware")
    assert len(csv.strip().splitlines()) == 3 and "otter" in csv


def test_machine_keeps_only_the_kits_description(app):
    token = _new_class(app)
    rec = _record()
    rec["machine"] = {**rec["machine"], "hostname": "alice-laptop", "user": "alice"}
    student = _join(app, token, "n1")
    assert app.post("/api/share", json={"records": [rec]}, headers=_auth(student))
    (row,) = app.get("/api/records", headers=_auth(token)).json()["records"]
    assert "alice" not in json.dumps(row) and row["record"]["machine"]["cpus"]


def test_wrong_token_cannot_read_or_write(app):
    token_a, token_b = _new_class(app, "A"), _new_class(app, "B")
    student_a = _join(app, token_a, "a1")
    app.post("/api/share", json={"records": [_record()]}, headers=_auth(student_a))
    for headers in ({}, _auth("not-a-token"), _auth(ADMIN), _auth(token_a)):
        w = app.post("/api/share", json={"nickname": "x", "records": [_record(9)]}, headers=headers)
        assert w.status_code in (401, 403) and "token" in w.json()["detail"]
        if headers == _auth(token_a):  # the class token reads its class, but cannot post
            assert "join first" in w.json()["detail"]
            continue
        r = app.get("/api/records", headers=headers)
        e = app.get("/api/export.csv", headers=headers)
        assert {w.status_code, r.status_code, e.status_code} <= {401, 403}
    assert app.get("/api/records", headers=_auth(token_b)).json()["records"] == []
    assert app.store.count() == 1
    # a class token cannot create classes
    r = app.post("/api/classes", json={"name": "C"}, headers=_auth(token_a))
    assert r.status_code == 403


BAD_CASES = [
    ("not json", b"{nope"),
    ("not an object", [1, 2]),
    ("extra key", {"nickname": "n", "records": [_record()], "email": "a@b.c"}),
    ("another's nickname", {"nickname": "a@b.c", "records": [_record()]}),
    ("empty records", {"nickname": "n", "records": []}),
    ("old schema", {"nickname": "n", "records": [{**_record(), "schema": 1}]}),
    ("zero throughput", {"nickname": "n", "records": [{**_record(), "throughput_rps": 0}]}),
    ("text in a text-free field", {"nickname": "n", "records": [{**_record(), "variant": [1]}]}),
    ("one good one bad", {"nickname": "n", "records": [_record(), {"kind": "serving"}]}),
]


@pytest.mark.parametrize("name,body", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_uploads_are_refused_and_nothing_is_stored(app, name, body):
    student = _join(app, _new_class(app), "n")
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    r = app.post("/api/share", headers=_auth(student), **kwargs)
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
    assert r.json()["detail"]
    assert app.store.count() == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=20,
)
good = _record()


@st.composite
def mutated_records(draw):
    """A valid record with some fields replaced by arbitrary JSON, or arbitrary JSON."""
    if draw(st.booleans()):
        return draw(json_values)
    rec = dict(good)
    for key in draw(st.lists(st.sampled_from(sorted(good) + ["extra"]), min_size=1, max_size=3)):
        rec[key] = draw(json_values)
    return rec


@pytest.mark.slow
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rec=mutated_records(), nickname=st.one_of(st.just("ok"), json_values))
def test_property_arbitrary_records_never_5xx_and_refusals_store_nothing(app, rec, nickname):
    if not hasattr(app, "token"):
        app.token = _join(app, _new_class(app), "ok")
    before = app.store.count()
    body = json.dumps({"nickname": nickname, "records": [rec]}, allow_nan=True)
    r = app.post("/api/share", content=body, headers=_auth(app.token))
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert app.store.count() == before and r.json()["detail"]
    else:  # accepted: it must be a valid, finite record of the kit's own types
        stored = validate.check_record(rec)
        assert all(
            math.isfinite(v)
            for v in json.loads(validate.canonical(stored)).values()
            if isinstance(v, float)
        )
        assert app.get("/api/records", headers=_auth(app.token)).status_code == 200


def test_store_refuses_unknown_urls_with_a_hint():
    with pytest.raises(StoreError, match="sqlite:///"):
        Store("mysql://x")


# ------------------------------------------------------------- the real process (CLI)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db: str, port: int, prefix: str = "/") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "INFRALAB_COLLECTOR_TOKEN": ADMIN}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infralab",
            "collector",
            "--db",
            db,
            "--port",
            str(port),
            "--prefix",
            prefix,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}{prefix.rstrip('/')}"
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("collector did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture()
def collector(db_url):
    db, port = db_url, _free_port()
    proc = _start(db, port, "/services/class-collector")
    url = f"http://127.0.0.1:{port}/services/class-collector"
    token = httpx.post(url + "/api/classes", json={"name": "R"}, headers=_auth(ADMIN)).json()
    yield url, token["token"], db, port, proc
    if proc.poll() is None:
        _stop(proc)


def test_a_room_sharing_at_once_loses_and_duplicates_nothing(collector):
    url, token, *_ = collector
    students, errors = 24, []

    def student(i: int) -> None:
        body = {"nickname": f"s{i:02d}", "records": [_record(3 * i + k) for k in range(3)]}
        try:
            with httpx.Client(timeout=60) as http:
                student = _join(http, token, body["nickname"], url)
                for _ in range(2):  # every student shares twice
                    r = http.post(url + "/api/share", json=body, headers=_auth(student))
                    r.raise_for_status()
        except Exception as exc:  # collected, asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=student, args=(i,)) for i in range(students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = httpx.get(url + "/api/records", headers=_auth(token)).json()["records"]
    assert len(rows) == 3 * students
    assert sorted(r["record"]["throughput_rps"] for r in rows) == [100.0 + i for i in range(72)]


@pytest.mark.slow
def test_data_survives_a_restart_and_share_cli_is_idempotent(collector, tmp_path):
    url, token, db, port, proc = collector
    saved = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": str(REPO), "INFRALAB_RESULTS": str(saved)}
    cmd = [
        sys.executable,
        "-m",
        "infralab",
        "share",
        "--url",
        url,
        "--token",
        token,
        "--nickname",
        "heron",
    ]
    nothing = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert nothing.returncode == 2 and "no saved measurements" in nothing.stderr
    os.environ[results.RESULTS_ENV] = str(saved)
    try:
        results.save(results.ServingResult(throughput_rps=321.0, mean_duration_s=0.02))
        results.save(results.GenerationResult(decode_tokens_per_s=55.0))
        assert len(client.saved_records()[0]) == 2
    finally:
        del os.environ[results.RESULTS_ENV]
    out = [subprocess.run(cmd, env=env, capture_output=True, text=True) for _ in range(2)]
    assert [o.returncode for o in out] == [0, 0], out[0].stderr
    assert "2 records, 2 new" in out[0].stdout and "2 records, 0 new" in out[1].stdout
    wrong = subprocess.run(
        cmd[:-3] + ["wrong-but-well-formed", "--nickname", "heron"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert wrong.returncode == 2 and "403" in wrong.stderr

    _stop(proc)
    proc2 = _start(db, port, "/services/class-collector")
    try:
        rows = httpx.get(url + "/api/records", headers=_auth(token)).json()["records"]
        assert sorted(r["kind"] for r in rows) == ["generation", "serving"]
        assert {r["nickname"] for r in rows} == {"heron"}
        df = room.frame(rows)
        assert set(df["value"]) == {321.0, 55.0}
    finally:
        _stop(proc2)


def test_share_and_collector_cli_explain_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "r"))
    results.save(results.ServingResult(throughput_rps=5.0, mean_duration_s=0.1))
    closed = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(client.ShareError, match="cannot reach the collector"):
        client.share(closed, "a-well-formed-token", "nick", timeout=2)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bad_db = subprocess.run(
        [sys.executable, "-m", "infralab", "collector", "--db", "mysql://x", "--create-class", "A"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert bad_db.returncode == 2 and "sqlite:///" in bad_db.stderr
    made = subprocess.run(
        [sys.executable, "-m", "infralab", "collector", "--db", f"sqlite:///{tmp_path / 'c.db'}",
         "--create-class", "Room B"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0 and "join token" in made.stdout
    token = made.stdout.rsplit(" ", 1)[-1].strip()
    assert Store(f"sqlite:///{tmp_path / 'c.db'}").class_for(token)[1] == "Room B"
    # a bad saved file is skipped and named, the good one still goes
    (tmp_path / "r" / "embedding.json").write_text('{"kind": "embedding"}')
    found, skipped = client.saved_records(tmp_path / "r")
    assert [r["kind"] for r in found] == ["serving"] and "embedding.json" in skipped[0]


def test_tokens_never_start_with_a_dash_so_the_share_command_reads_them(monkeypatch):
    """argparse reads ``--token -abc`` as a missing value; one urlsafe token in 64 did that."""
    from infralab.__main__ import build_parser
    from infralab.tooling.classroom import store as store_module

    drawn = iter(["-leading-dash", "_fine_token"])
    monkeypatch.setattr(store_module.secrets, "token_urlsafe", lambda n: next(drawn))
    assert store_module.new_token() == "_fine_token"
    monkeypatch.undo()
    tokens = [store_module.new_token() for _ in range(2000)]
    assert not any(t.startswith("-") for t in tokens)
    args = build_parser().parse_args(["share", "--token", tokens[0], "--nickname", "otter"])
    assert args.token == tokens[0]
