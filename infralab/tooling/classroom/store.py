"""The class database: classes with join tokens, students with their own tokens, and the
records students shared.

SQLite (the standard library's ``sqlite3``) by default: one file, enough for a class of a
few hundred. A ``postgresql://`` URL works where the ``psycopg`` (v3) driver is installed
(``pip install 'infralab[postgres]'``); the tests run on both. Tokens are stored as
sha256 hashes, so a copy of the database does not let anyone join a class. Records are
unique per class by content hash: re-sharing the same measurement stores nothing new.

Each student joins a class once (with the class's join token) and gets a token of their own,
bound to the nickname they chose: a record is stored under the nickname its student token
names, so nobody can post as someone else. A SQLite file (and a folder the store creates for
it) is private to the user running the collector (0600 / 0700): it names who shared what.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infralab.core.errors import InfralabError

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS classes (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS records (
        class_id TEXT NOT NULL REFERENCES classes(id), content_sha256 TEXT NOT NULL,
        nickname TEXT NOT NULL, kind TEXT NOT NULL, record TEXT NOT NULL,
        received TEXT NOT NULL, PRIMARY KEY (class_id, content_sha256))""",
    """CREATE TABLE IF NOT EXISTS students (
        token_sha256 TEXT PRIMARY KEY, class_id TEXT NOT NULL REFERENCES classes(id),
        nickname TEXT NOT NULL, created TEXT NOT NULL, UNIQUE (class_id, nickname))""",
)


class StoreError(ValueError, InfralabError):
    """A database URL the collector cannot use; the message says what to install or write."""

    hint = "The database URL is sqlite:///path or postgresql://...; docs/hub.md shows the collector's set-up."


def new_token(nbytes: int = 24) -> str:
    """A URL-safe secret that never starts with "-".

    Why: students paste it after ``--token`` on a command line, and argparse reads a value
    that starts with "-" as another option (about one token in 64 did).
    """
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ClassInfo:
    """A class as the instructor sees it once: its id, name and join token (shown once)."""

    id: str
    name: str
    token: str


class Store:
    """Thread-safe access to the class database (one short connection per operation)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///")).expanduser()
            _private_file(self.path)
        elif url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise StoreError(
                    "a Postgres URL needs the psycopg driver: pip install 'infralab[postgres]'"
                ) from None
            self.kind = "postgres"
        else:
            raise StoreError(
                f"database URL {url!r} is not supported: use sqlite:///path/to/class.db "
                "(default) or postgresql://user@host/db"
            )
        self._lock = threading.Lock()  # SQLite: one writer at a time inside this process
        with self._connect() as db:
            for statement in SCHEMA:
                db.execute(statement)
        if self.kind == "sqlite":  # the WAL files SQLite just made: private too
            for extra in ("-wal", "-shm"):
                side = self.path.with_name(self.path.name + extra)
                if side.exists():
                    os.chmod(side, 0o600)

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.kind == "sqlite":
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            # Text that is not UTF-8 (written by anything else) reads as escapes, never raises.
            db.text_factory = lambda raw: raw.decode("utf-8", "backslashreplace")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            try:
                with self._lock:
                    db.execute("BEGIN IMMEDIATE")
                    try:
                        yield _Cursor(db, "?")
                        db.execute("COMMIT")
                    except BaseException:
                        db.execute("ROLLBACK")
                        raise
            finally:
                db.close()
        else:
            import psycopg

            with psycopg.connect(self.url) as db, db.transaction():
                yield _Cursor(db, "%s")

    def create_class(self, name: str) -> ClassInfo:
        """A new class and its join token (printed once; only its hash is stored)."""
        name = name.strip()
        if not 1 <= len(name) <= 80:
            raise StoreError(
                "a class name has 1-80 characters",
                hint="Name the class briefly, e.g. 'infra-2026-spring'.",
            )
        info = ClassInfo(secrets.token_hex(4), name, new_token())
        with self._connect() as db:
            db.execute(
                "INSERT INTO classes (id, name, token_sha256, created) VALUES (?, ?, ?, ?)",
                (info.id, info.name, _sha(info.token), _now()),
            )
        return info

    def class_for(self, token: str | None) -> tuple[str, str] | None:
        """(class id, name) whose join token this is, else None."""
        if not token:
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT id, name FROM classes WHERE token_sha256 = ?", (_sha(token),)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def join(self, class_id: str, nickname: str) -> str | None:
        """A new student token bound to ``nickname`` in the class, or None if that nickname is
        already taken there (its owner holds the token; a second join cannot take it over)."""
        token = new_token()
        with self._connect() as db:
            cur = db.execute(
                "INSERT INTO students (token_sha256, class_id, nickname, created) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (class_id, nickname) DO NOTHING",
                (_sha(token), class_id, nickname, _now()),
            )
            if cur.rowcount != 1:  # taken: one atomic statement on both databases
                return None
        return token

    def student_for(self, token: str | None) -> tuple[str, str, str] | None:
        """(class id, class name, nickname) whose student token this is, else None."""
        if not token:
            return None
        with self._connect() as db:
            row = db.execute(
                "SELECT c.id, c.name, s.nickname FROM students s JOIN classes c "
                "ON c.id = s.class_id WHERE s.token_sha256 = ?",
                (_sha(token),),
            ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def add(self, class_id: str, nickname: str, rows: list[tuple[str, str, str]]) -> int:
        """Store (kind, content hash, record JSON) rows in one transaction; returns how many
        were new (a record already in the class is skipped)."""
        new = 0
        with self._connect() as db:
            for kind, digest, record in rows:
                cur = db.execute(
                    "INSERT INTO records (class_id, content_sha256, nickname, kind, record, "
                    "received) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (class_id, content_sha256) DO NOTHING",
                    (class_id, digest, nickname, kind, record, _now()),
                )
                new += max(cur.rowcount, 0)
        return new

    def records(self, class_id: str) -> list[tuple[str, str, str, str, str]]:
        """(nickname, kind, content hash, received, record JSON) in the order received."""
        with self._connect() as db:
            return db.execute(
                "SELECT nickname, kind, content_sha256, received, record FROM records "
                "WHERE class_id = ? ORDER BY received, content_sha256",
                (class_id,),
            ).fetchall()

    def count(self) -> int:
        """Records in every class (tests use it to prove that a refusal stored nothing)."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM records").fetchone()[0])


def _private_file(path: Path) -> None:
    """Create the database file 0600 (its folder 0700 where this creates it); tighten an
    existing file to 0600. Why: the database names who shared what, and with the default
    umask SQLite would make it readable by every user of a shared hub machine."""
    missing = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(mode=0o700)
        os.chmod(made, 0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class _Cursor:
    """One placeholder style ('?') for both drivers."""

    def __init__(self, db: Any, style: str) -> None:
        self._db, self._style = db, style

    def execute(self, sql: str, params: tuple = ()) -> Any:
        if self._style != "?":
            sql = sql.replace("?", self._style)
        return self._db.execute(sql, params)
