"""What must outlive the server process: each browser's kept runs and settings, in an SQLite file
(one machine, any number of app processes) or a PostgreSQL server (several machines).

    store = Store("/var/lib/mtl/store.sqlite")    # or Store("postgresql://mtl@db-host/mtl")
    store.keep(token, records)            # -> the records as kept (a taken id gets " (2)")
    store.index(token)                    # -> [RunEntry(id, arch, status, step, bytes)], oldest first
    store.run(token, run_id)              # -> one record (dict), read and decoded on demand
    store.dump(token)                     # -> every kept run as a run file (JSON text)
    store.save_settings(token, settings)

Every write is its own transaction, written through at once (a restart or a killed process loses
nothing that was kept); WAL mode lets every student's thread and several app processes read while one
writes. A record is stored as zlib-compressed JSON, so a process holds only what a page is drawing,
never every browser's runs. Bounds (the README's table): `max_runs` runs and `max_locker_bytes`
(uncompressed JSON) per browser, the oldest runs going first; a file over `max_bytes` lets go of the
least recently used browsers' runs; a browser unused for `idle_seconds` is emptied.

A file that is not a store this code can read (corrupt, or written by a newer schema) is moved aside
to `<name>.unreadable-<time>` and a fresh store started: the server logs why and `Store.problem` says so.
A PostgreSQL store that cannot be reached or is newer is never set aside: StoreUnavailable says why.
The SQL is written once, for both (`?` placeholders; each database names its own column types).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..config import ConfigError
from .records import dumps, free_id

log = logging.getLogger(__name__)
SCHEMA = 1
DAY = 24 * 3600


@dataclass(frozen=True)
class RunEntry:
    """A kept run without its tables: what a page lists."""

    id: str
    arch: str
    status: str
    step: int
    bytes: int


class StoreFull(ValueError):
    """A record is larger than a browser may keep; the message says the sizes."""


class StoreUnavailable(ConfigError):
    """The store named by MTL_STORE cannot be used (server down, wrong password, newer schema); the message says
    which and what to do. The pages show it instead of running without a store."""


class _SQLiteFile:
    """The embedded database: one file, WAL, a single writer at a time (BEGIN IMMEDIATE)."""

    def __init__(self, path: Path):
        self.path, self.problem = path, ""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._open()
        except sqlite3.DatabaseError as error:
            aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            self.problem = f"The store {path} could not be read ({error}); it was moved to {aside.name} and a fresh one started."
            log.error(self.problem)
            self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA:
                raise sqlite3.DatabaseError(f"schema {version} is newer than this app's {SCHEMA}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")   # WAL + NORMAL: a committed write survives a crash of the app
            for statement in TABLES:
                db.execute(statement.format(seq="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB", real="REAL"))
            db.execute(f"PRAGMA user_version = {SCHEMA}")
            db.execute("SELECT count(*) FROM lockers").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def execute(self, sql: str, params: tuple = ()):
        return self.db.execute(sql, params)

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")   # another process's writer makes this one wait (the connection's timeout)

    def close(self) -> None:
        self.db.close()


class _Postgres:
    """A PostgreSQL server, for app processes on several machines (MTL_STORE=postgresql://user@host/db).

    Writers take one transaction-scoped advisory lock, so writes are serialised as SQLite's are; a connection
    the server dropped (a restart) is opened again on the next call. A database written by a newer schema is
    never set aside (it is someone's data): StoreUnavailable says so."""

    WRITE_LOCK = 7_151_023   # the advisory lock's key, any constant this app alone uses

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError as error:
            raise StoreUnavailable("MTL_STORE names a PostgreSQL server; install its driver: pip install 'psycopg[binary]'.") from error
        self.url, self.problem, self._psycopg = url, "", psycopg
        self.db = self._connect()
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (self.WRITE_LOCK,))   # app processes starting at once
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (schema INTEGER NOT NULL)")
            row = self.db.execute("SELECT max(schema) FROM meta").fetchone()
            if row[0] is not None and row[0] > SCHEMA:
                raise StoreUnavailable(f"The PostgreSQL store was written by a newer version of this app (schema {row[0]}, "
                                       f"this app reads {SCHEMA}); upgrade the app or point MTL_STORE at another database.")
            for statement in TABLES:
                self.db.execute(statement.format(seq="BIGSERIAL PRIMARY KEY", blob="BYTEA", real="DOUBLE PRECISION"))
            if row[0] is None:
                self.db.execute("INSERT INTO meta VALUES (%s)", (SCHEMA,))

    def _connect(self):
        try:
            return self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as error:
            raise StoreUnavailable(f"Could not reach the PostgreSQL store named by MTL_STORE ({str(error).strip()[:300]}).") from error

    def execute(self, sql: str, params: tuple = ()):
        if self.db.broken or self.db.closed:
            self.db = self._connect()
        return self.db.execute(sql.replace("?", "%s"), params)

    def begin(self) -> None:
        self.execute("BEGIN")
        self.execute("SELECT pg_advisory_xact_lock(?)", (self.WRITE_LOCK,))

    def close(self) -> None:
        self.db.close()


TABLES = (   # {seq}, {blob}, {real}: each database's words for them
    """CREATE TABLE IF NOT EXISTS lockers (token TEXT PRIMARY KEY, settings TEXT NOT NULL DEFAULT '{{}}',
        races INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0, used {real} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS runs (seq {seq}, token TEXT NOT NULL, id TEXT NOT NULL,
        arch TEXT NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL, bytes INTEGER NOT NULL, stored INTEGER NOT NULL,
        body {blob} NOT NULL, UNIQUE (token, id))""",
    "CREATE INDEX IF NOT EXISTS runs_by_token ON runs (token, seq)",
)


class Store:
    """Each browser's runs and settings, keyed by the browser's random token (see pages/kept.py).

    `location` is a file path (SQLite) or a `postgresql://` URL."""

    def __init__(self, location: str | Path, max_runs: int = 60, max_locker_bytes: int = 40_000_000,
                 max_bytes: int = 2_000_000_000, idle_seconds: float = 30 * DAY):
        self.location, self.max_runs, self.max_locker_bytes = str(location), max_runs, max_locker_bytes
        self.max_bytes, self.idle_seconds = max_bytes, idle_seconds
        self._lock = threading.Lock()
        self._sql = _Postgres(self.location) if is_server(self.location) else _SQLiteFile(Path(location))
        self.problem = self._sql.problem

    # ---------------------------------------------------------------- reading

    def index(self, token: str) -> list[RunEntry]:
        with self._lock:
            rows = self._sql.execute("SELECT id, arch, status, step, bytes FROM runs WHERE token = ? ORDER BY seq", (token,))
            return [RunEntry(*row) for row in rows]

    def run(self, token: str, run_id: str) -> dict | None:
        with self._lock:
            row = self._sql.execute("SELECT body FROM runs WHERE token = ? AND id = ?", (token, run_id)).fetchone()
        return None if row is None else json.loads(zlib.decompress(row[0]))

    def dump(self, token: str) -> str:
        """Every kept run of a browser as one JSON list (a run file), oldest first, without decoding any."""
        with self._lock:
            bodies = [b for (b,) in self._sql.execute("SELECT body FROM runs WHERE token = ? ORDER BY seq", (token,))]
        return "[" + ",".join(zlib.decompress(b).decode() for b in bodies) + "]"

    def settings(self, token: str) -> dict:
        return json.loads(self._locker(token)[0])

    def counts(self, token: str) -> tuple[int, int]:
        """(races started, runs let go because the browser's locker was full)."""
        _, races, dropped = self._locker(token)
        return races, dropped

    def _locker(self, token: str) -> tuple[str, int, int]:
        with self._lock:
            row = self._sql.execute("SELECT settings, races, dropped FROM lockers WHERE token = ?", (token,)).fetchone()
        return row or ("{}", 0, 0)

    def size(self) -> int:
        """Bytes of compressed records kept, all browsers together."""
        with self._lock:
            return int(self._sql.execute("SELECT coalesce(sum(stored), 0) FROM runs").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return self._sql.execute("SELECT count(*) FROM lockers").fetchone()[0]

    # ---------------------------------------------------------------- writing

    @contextmanager
    def _write(self):
        """One transaction, taken at once: another thread's or process's writer makes this one wait instead of
        failing half-way."""
        with self._lock:
            self._sql.begin()
            try:
                yield self._sql
            except BaseException:
                self._sql.execute("ROLLBACK")
                raise
            self._sql.execute("COMMIT")

    def save_settings(self, token: str, settings: dict) -> None:
        text = dumps(settings)
        with self._write():
            self._touch(token)
            self._sql.execute("UPDATE lockers SET settings = ? WHERE token = ?", (text, token))

    def next_race(self, token: str) -> int:
        """The number of this browser's next race (for its runs' names)."""
        with self._write():
            self._touch(token)
            self._sql.execute("UPDATE lockers SET races = races + 1 WHERE token = ?", (token,))
            return self._sql.execute("SELECT races FROM lockers WHERE token = ?", (token,)).fetchone()[0]

    def keep(self, token: str, records: Iterable[dict], update: bool = False) -> list[dict]:
        """Keep records; a record whose id is taken gets a new id, or, with `update` (the same live run archived
        again), replaces the one it updates. Beyond the locker's bounds the oldest runs go. Returns them as kept;
        StoreFull (nothing kept) when one record alone is over the locker's byte bound."""
        encoded = []
        for r in records:
            text = dumps(r).encode()
            if len(text) > self.max_locker_bytes:
                raise StoreFull(f"The run {r['id'][:40]!r} is {len(text) / 1e6:.1f} MB; a browser keeps at most "
                                f"{self.max_locker_bytes / 1e6:.0f} MB of runs.")
            encoded.append((r, len(text), zlib.compress(text, 6)))
        added = []
        with self._write():
            self._touch(token)
            taken = {rid for (rid,) in self._sql.execute("SELECT id FROM runs WHERE token = ?", (token,))}
            for r, size, body in encoded:
                rid = r["id"]
                if update and rid in taken:
                    self._sql.execute("DELETE FROM runs WHERE token = ? AND id = ?", (token, rid))
                else:
                    rid = free_id(rid, taken)
                    if rid != r["id"]:
                        body = zlib.compress(dumps({**r, "id": rid}).encode(), 6)
                taken.add(rid)
                self._sql.execute("INSERT INTO runs (token, id, arch, status, step, bytes, stored, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (token, rid, r["arch"], r["status"], r["step"], size, len(body), body))
                added.append({**r, "id": rid})
            self._bound(token)
        return added

    def _touch(self, token: str) -> None:
        self._sql.execute("INSERT INTO lockers (token, used) VALUES (?, ?) ON CONFLICT (token) DO UPDATE SET used = excluded.used",
                         (token, time.time()))

    def _bound(self, token: str) -> None:
        """The oldest runs of this locker beyond its count and byte bounds go; then, over the file's bound or
        idle too long, other browsers' lockers go, least recently used first."""
        rows = self._sql.execute("SELECT seq, bytes FROM runs WHERE token = ? ORDER BY seq DESC", (token,)).fetchall()
        total, gone = 0, []
        for i, (seq, size) in enumerate(rows):
            total += size
            if i >= self.max_runs or total > self.max_locker_bytes:
                gone.append(seq)
        if gone:
            self._sql.execute("DELETE FROM runs WHERE token = ? AND seq <= ?", (token, gone[0]))   # the oldest: a suffix
            self._sql.execute("UPDATE lockers SET dropped = dropped + ? WHERE token = ?", (len(gone), token))
        stale = time.time() - self.idle_seconds
        self._sql.execute("DELETE FROM runs WHERE token IN (SELECT token FROM lockers WHERE used < ?)", (stale,))
        self._sql.execute("DELETE FROM lockers WHERE used < ?", (stale,))
        size = int(self._sql.execute("SELECT coalesce(sum(stored), 0) FROM runs").fetchone()[0])
        for (other,) in self._sql.execute("SELECT token FROM lockers WHERE token != ? ORDER BY used", (token,)).fetchall():
            if size <= self.max_bytes:
                break
            size -= int(self._sql.execute("SELECT coalesce(sum(stored), 0) FROM runs WHERE token = ?", (other,)).fetchone()[0])
            self._sql.execute("DELETE FROM runs WHERE token = ?", (other,))
            self._sql.execute("DELETE FROM lockers WHERE token = ?", (other,))

    def close(self) -> None:
        with self._lock:
            self._sql.close()


def is_server(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def default_location() -> str:
    """Where the server keeps its store: MTL_STORE (a file, or a postgresql:// URL), else
    `store/mtl-playground.sqlite` beside the app."""
    return os.environ.get("MTL_STORE") or str(Path(__file__).resolve().parents[2] / "store" / "mtl-playground.sqlite")
