"""The class collector tried as an attacker (issue #25, item 6): hostile JSON on every
endpoint never gets a 5xx and never breaks the class's reads; a 500 MB chunked upload is
refused with 413 while it streams, costing the real server process under 50 MB; nobody
posts as another student; export.csv cannot carry a formula; the database is private; no
token reaches the log or the terminal. All traffic goes to 127.0.0.1."""

from __future__ import annotations

import json
import os
import select
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infralab.core import results
from infralab.tooling.classroom import client, room
from infralab.tooling.classroom.service import MAX_BODY, create_app
from infralab.tooling.classroom.store import Store

REPO = Path(__file__).resolve().parents[1]
ADMIN = "instructor-secret-0123456789"


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _record(i: int = 0, **fields) -> dict:
    rec = results.ServingResult(
        throughput_rps=100.0 + i, mean_duration_s=0.01, cpu_vcpus=2.0, command=f"test {i}"
    ).to_dict()
    return {**rec, **fields}


@pytest.fixture()
def room_app(tmp_path):
    """A collector in process (SQLite) with a class, a joined student, and one record."""
    store = Store(f"sqlite:///{tmp_path / 'class.db'}")
    with TestClient(create_app(store, ADMIN)) as c:
        c.store = store
        c.class_token = c.post("/api/classes", json={"name": "R"}, headers=_auth(ADMIN)).json()[
            "token"
        ]
        c.student = c.post(
            "/api/join", json={"nickname": "otter"}, headers=_auth(c.class_token)
        ).json()["token"]
        r = c.post("/api/share", json={"records": [_record()]}, headers=_auth(c.student))
        assert r.status_code == 200, r.text
        yield c


def _reads_still_work(c) -> None:
    for path in ("/api/records", "/api/export.csv"):
        for token in (c.class_token, c.student):
            r = c.get(path, headers=_auth(token))
            assert r.status_code == 200, (path, r.status_code, r.text[:300])


# ------------------------------------------------------------------ hostile JSON, as text

# JSON text fragments a JSON encoder would never write, but a hand-made request can.
HOSTILE_LEAVES = [
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\ud83d\\ude00"',  # a valid pair: accepted as text
    "1" * 5000,
    "-" + "9" * 30,
    "9007199254740993",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "1" * 400 + ".5",
    "[" * 3000 + "]" * 3000,
    '{"a":' * 50 + "1" + "}" * 50,
    '"=HYPERLINK(\\"http://x\\",\\"y\\")"',
    "true",
    "null",
    '"' + "x" * 400 + '"',
]


def _text(value) -> str:
    return json.dumps(value, allow_nan=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=10,
)
leaf_text = st.one_of(st.sampled_from(HOSTILE_LEAVES), json_values.map(_text))


@st.composite
def record_text(draw) -> str:
    """A valid record as JSON text with a few fields (or keys) replaced by hostile text."""
    rec = _record(draw(st.integers(0, 10**6)))
    fields = {k: _text(v) for k, v in rec.items()}
    for key in draw(st.lists(st.sampled_from(sorted(rec) + ["extra", "\\ud800"]), max_size=3)):
        fields[key] = draw(leaf_text)
    return "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"


@st.composite
def body_text(draw, endpoint: str) -> str:
    """A body for ``endpoint``: mostly the right shape with hostile parts, sometimes anything."""
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return draw(leaf_text)
    if shape == 1:
        return draw(st.text(max_size=40))
    nick = draw(st.one_of(st.just('"otter"'), st.just('"mallory"'), leaf_text))
    if endpoint == "/api/classes":
        return '{"name":' + draw(st.one_of(st.just('"Room B"'), leaf_text)) + "}"
    if endpoint == "/api/join":
        return '{"nickname":' + nick + "}"
    records = "[" + ",".join(draw(st.lists(record_text(), min_size=1, max_size=3))) + "]"
    if draw(st.booleans()):
        records = draw(st.one_of(st.just(records), leaf_text))
    with_nick = draw(st.booleans())
    return "{" + (f'"nickname":{nick},' if with_nick else "") + f'"records":{records}' + "}"


ENDPOINTS = [
    ("POST", "/api/share"),
    ("POST", "/api/join"),
    ("POST", "/api/classes"),
    ("GET", "/api/records"),
    ("GET", "/api/export.csv"),
    ("GET", "/api/health"),
]
ODD_HEADERS = st.sampled_from(
    [
        {},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/json; charset=latin-1"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "A" * 5000},
        {"Authorization": "token \u00e9\u00e9"},
        {"Content-Length": "abc"},
        {"Content-Length": str(10**12)},
        {"Content-Length": "-5"},
        {"Transfer-Encoding": "gzip"},
    ]
)


@pytest.mark.slow
@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_property_hostile_requests_on_every_endpoint_never_5xx_nor_break_reads(room_app, data):
    c = room_app
    method, path = data.draw(st.sampled_from(ENDPOINTS), label="endpoint")
    who = data.draw(st.sampled_from(["student", "class", "admin", "none", "junk"]), label="token")
    token = {"student": c.student, "class": c.class_token, "admin": ADMIN, "none": None,
             "junk": "x" * 43}[who]  # fmt: skip
    headers = {"Content-Type": "application/json", **(_auth(token) if token else {})}
    headers.update(data.draw(ODD_HEADERS, label="headers"))
    body = data.draw(body_text(path), label="body") if method == "POST" else None
    raw = body.encode("utf-8", "surrogatepass") if body is not None else None
    if "Content-Length" in headers and raw is not None:  # TestClient would write its own
        headers.pop("Content-Length")
    before = c.store.count()
    try:
        r = c.request(method, path, content=raw, headers=headers)
    except (httpx.LocalProtocolError, UnicodeEncodeError):
        return  # a header the client itself refuses to send: nothing reached the server
    assert r.status_code < 500, (method, path, body and body[:200], r.text[:300])
    if r.status_code >= 400:
        assert r.json()["detail"]
        assert c.store.count() == before
    _reads_still_work(c)


# ------------------------------------------------------- rows an older collector stored


def test_rows_an_older_collector_stored_cannot_break_the_reads(room_app):
    """A lone surrogate, NaN, huge numbers, deep nesting, an unknown kind, text that is not
    UTF-8: whatever is already in the database, records and export.csv answer 200."""
    c = room_app
    class_id = c.store.class_for(c.class_token)[0]
    bad = [
        ("serving", "h1", json.dumps(_record(1, command="\ud800x"))),  # stored escaped
        ("serving", "h2", '{"kind": "serving", "throughput_rps": NaN, "x": Infinity}'),
        ("serving", "h3", '{"kind": "serving", "throughput_rps": ' + "9" * 5000 + "}"),
        ("serving", "h4", "[" * 5000 + "]" * 5000),
        ("mystery", "h5", '{"kind": ["unhashable"], "machine": "not a dict"}'),
        ("serving", "h6", "not json"),
        ("serving", "h7", json.dumps(_record(2, throughput_rps=1e308))),
    ]
    c.store.add(class_id, "old", bad)
    db = sqlite3.connect(c.store.path)
    db.execute(
        "INSERT INTO records VALUES (?, 'h8', CAST(x'6576ff696c' AS TEXT), 'serving', ?, 'x')",
        (class_id, json.dumps(_record(3))),
    )
    db.commit()
    db.close()
    _reads_still_work(c)
    rows = c.get("/api/records", headers=_auth(c.class_token)).json()["records"]
    assert len(rows) == 1 + len(bad) + 1
    csv = c.get("/api/export.csv", headers=_auth(c.class_token)).text
    assert "unreadable record" in csv and "ev\\xffil" in csv


# ---------------------------------------------------------- who may post, CSV, privacy


def test_nobody_posts_as_another_student(room_app):
    c = room_app
    mallory = c.post("/api/join", json={"nickname": "mallory"}, headers=_auth(c.class_token))
    mallory = mallory.json()["token"]
    # take the nickname over by joining again: refused
    again = c.post("/api/join", json={"nickname": "otter"}, headers=_auth(c.class_token))
    assert again.status_code == 409 and "taken" in again.json()["detail"]
    # claim it in the body: refused, nothing stored
    before = c.store.count()
    r = c.post("/api/share", json={"nickname": "otter", "records": [_record(7)]},
               headers=_auth(mallory))  # fmt: skip
    assert r.status_code == 403 and "another" in r.json()["detail"]
    # post with the class token: refused (join first)
    r = c.post("/api/share", json={"nickname": "otter", "records": [_record(8)]},
               headers=_auth(c.class_token))  # fmt: skip
    assert r.status_code == 403 and "join first" in r.json()["detail"]
    assert c.store.count() == before
    # a plain post is stored under the token's nickname
    r = c.post("/api/share", json={"records": [_record(9)]}, headers=_auth(mallory))
    assert r.status_code == 200 and r.json()["nickname"] == "mallory"
    rows = c.get("/api/records", headers=_auth(c.class_token)).json()["records"]
    assert {r["record"]["command"]: r["nickname"] for r in rows} == {
        "test 0": "otter", "test 9": "mallory"}  # fmt: skip
    # a student token of one class is nothing in another
    other = c.post("/api/classes", json={"name": "B"}, headers=_auth(ADMIN)).json()["token"]
    assert c.get("/api/records", headers=_auth(other)).json()["records"] == []
    r = c.post("/api/join", json={"nickname": "x"}, headers=_auth(mallory))
    assert r.status_code == 403


def test_export_csv_escapes_formulas(room_app):
    c = room_app
    evil = ['=HYPERLINK("http://evil","click")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    for i, command in enumerate(evil):
        r = c.post("/api/share", json={"records": [_record(20 + i, command=command)]},
                   headers=_auth(c.student))  # fmt: skip
        assert r.status_code == 200, r.text
    import csv
    import io

    text = c.get("/api/export.csv", headers=_auth(c.class_token)).text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert {r["command"] for r in rows} >= {"'" + e for e in evil}
    for row in rows:  # no cell anywhere starts a formula
        assert not any(v.startswith(room.FORMULA_START) for v in row.values()), row
    # numbers stay numbers (a negative figure is not text)
    assert room.csv_cell(-1.5) == -1.5 and room.csv_cell("plain") == "plain"


def test_database_and_its_new_folder_are_private(tmp_path):
    db = tmp_path / "made" / "here" / "class.db"
    store = Store(f"sqlite:///{db}")
    store.create_class("A")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "made" / "here").stat().st_mode) == 0o700
    for side in db.parent.glob("class.db-*"):
        assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
    # an existing, world-readable database is tightened
    old = tmp_path / "old.db"
    old.write_bytes(b"")
    old.chmod(0o644)
    Store(f"sqlite:///{old}")
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_malformed_tokens_are_described_never_echoed(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path / "r"))
    results.save(results.ServingResult(throughput_rps=5.0, mean_duration_s=0.1))
    secret = "s3cr3t-T0ken-Value"
    for bad, why in [
        (secret + "\n" + secret, "a space at position 19"),
        (secret + '"', "a character that no token holds at position 19"),
        ("short", "5 characters"),
        ("", "empty"),
    ]:
        with pytest.raises(client.ShareError) as err:
            client.share("http://127.0.0.1:9", bad, "otter", timeout=1)
        assert why in str(err.value) and secret not in str(err.value)
    env = {**os.environ, "PYTHONPATH": str(REPO), "INFRALAB_RESULTS": str(tmp_path / "r")}
    out = subprocess.run(
        [sys.executable, "-m", "infralab", "share", "--url", "http://127.0.0.1:9",
         "--token", secret + " x", "--nickname", "otter"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "a space at position" in out.stderr
    assert secret not in out.stdout + out.stderr


# ------------------------------------------------------------------- the real process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(db: str, port: int, env_token: str | None = ADMIN) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("INFRALAB_COLLECTOR_TOKEN", None)
    if env_token:
        env["INFRALAB_COLLECTOR_TOKEN"] = env_token
    proc = subprocess.Popen(
        [sys.executable, "-m", "infralab", "collector", "--db", db, "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("collector did not start")


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def _stream_upload(
    port: int,
    path: str,
    token: str,
    total: int,
    chunk: int = 1 << 20,
    chunked: bool = True,
    declared: int | None = None,
) -> tuple[int, bytes, int]:
    """Send a body of ``total`` bytes generated on the fly (chunked, or with a
    Content-Length of ``declared``); stop as soon as the server answers. Returns (bytes sent,
    the response's first bytes, chunks sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}",
            "Content-Type: application/json"]  # fmt: skip
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    piece = b'{"records": [' + b" " * (chunk - 13)
    sent = chunks = 0
    answer = b""
    sock.setblocking(False)
    try:
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break  # the server answered: stop sending
            if not writable:
                continue
            data = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
            try:
                n = sock.send(data)
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                break
            if n < len(data):  # finish this chunk blocking (framing must stay whole)
                sock.setblocking(True)
                try:
                    sock.sendall(data[n:])
                except (BrokenPipeError, ConnectionResetError):
                    break
                sock.setblocking(False)
            sent += len(piece)
            chunks += 1
        sock.setblocking(True)
        sock.settimeout(30)
        try:
            while b"\r\n\r\n" not in answer:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
        except (TimeoutError, ConnectionResetError):
            pass
    finally:
        sock.close()
    return sent, answer, chunks


@pytest.fixture()
def real_collector(tmp_path):
    port = _free_port()
    proc = _start(f"sqlite:///{tmp_path / 'class.db'}", port)
    url = f"http://127.0.0.1:{port}"
    token = httpx.post(url + "/api/classes", json={"name": "R"}, headers=_auth(ADMIN))
    token = token.json()["token"]
    student = httpx.post(url + "/api/join", json={"nickname": "otter"}, headers=_auth(token))
    yield url, port, student.json()["token"], proc
    if proc.poll() is None:
        _stop(proc)


def test_a_500_mb_chunked_upload_is_refused_while_it_streams(real_collector):
    url, port, student, proc = real_collector
    server = psutil.Process(proc.pid)
    # warm the paths a request uses, then measure
    httpx.post(url + "/api/share", json={"records": [_record()]}, headers=_auth(student))
    rss_before = server.memory_info().rss
    started = time.monotonic()
    for _ in range(2):  # twice: the second must not grow either
        sent, answer, _ = _stream_upload(port, "/api/share", student, total=500 * 2**20)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 32 * 2**20, f"the server let {sent >> 20} MB in before refusing"
    elapsed = time.monotonic() - started
    grown = server.memory_info().rss - rss_before
    assert grown < 50 * 2**20, f"RSS grew {grown / 2**20:.0f} MB"
    assert elapsed < 60
    # a declared Content-Length past the limit is refused before any body byte is read
    sent, answer, _ = _stream_upload(port, "/api/share", student, total=MAX_BODY * 4,
                                     chunked=False, declared=500 * 2**20)  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 413")
    # a Content-Length that lies low: only the declared bytes are read (the rest is no body)
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    body = json.dumps({"records": [_record(5)]}).encode()
    sock.sendall(b"POST /api/share HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                 + student.encode() + b"\r\nContent-Length: 10\r\n\r\n" + body)  # fmt: skip
    assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    sock.close()
    # and the service still serves
    assert httpx.get(url + "/api/records", headers=_auth(student)).status_code == 200


def test_the_instructor_token_is_never_printed_only_its_file(tmp_path):
    port = _free_port()
    proc = _start(f"sqlite:///{tmp_path / 'class.db'}", port, env_token=None)
    try:
        token_file = tmp_path / "class.db.instructor-token"
        token = token_file.read_text().strip()
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        url = f"http://127.0.0.1:{port}"
        made = httpx.post(url + "/api/classes", json={"name": "R"}, headers=_auth(token))
        assert made.status_code == 200
        httpx.post(url + "/api/classes", json={"name": "R"}, headers=_auth(token + "x"))
    finally:
        out = _stop(proc)
    assert str(token_file) in out and token not in out
    # restarted, it keeps the same token (the file), and still does not print it
    proc = _start(f"sqlite:///{tmp_path / 'class.db'}", port, env_token=None)
    out = _stop(proc)
    assert token_file.read_text().strip() == token and token not in out
