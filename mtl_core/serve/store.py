"""What must outlive the server process: each browser's kept runs and settings, and the classes (classes.py), in an SQLite file
(one machine, any number of app processes) or a PostgreSQL server (several machines).

    store = Store("/var/lib/mtl/store.sqlite")    # or Store("postgresql://mtl@db-host/mtl")
    store.keep(token, records)            # -> the records as kept (a taken id gets " (2)")
    store.index(token)                    # -> [RunEntry(id, arch, status, step, bytes)], oldest first
    store.run(token, run_id)              # -> one record (dict), read and decoded on demand
    store.dump(token)                     # -> every kept run as a run file (JSON text)
    store.save_settings(token, settings)
    store.keep_file(token, name, raw)     # a browser's own data file (one; a new one replaces it)
    store.file(token)                     # -> (name, raw bytes) or None

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
import queue
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
SCHEMA = 3   # 2: the classes (classes.py); 3: each browser's own data file (data/table.py)
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
    """The embedded database: one file, WAL, a single writer at a time (BEGIN IMMEDIATE); readers each on a
    connection of their own, lent from a pool, so a read never waits for a write (nor for another read)."""

    def __init__(self, path: Path):
        self.path, self.problem = path, ""
        self.own_readers = str(path) != ":memory:"   # a second connection to :memory: would open another, empty database
        self._readers: queue.SimpleQueue = queue.SimpleQueue()
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

    @contextmanager
    def reader(self):
        """A read connection for one caller at a time (WAL: it sees the last committed write)."""
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            db = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
        try:
            yield db
        finally:
            self._readers.put(db)

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")   # another process's writer makes this one wait (the connection's timeout)

    def close(self) -> None:
        self.db.close()
        while not self._readers.empty():
            self._readers.get_nowait().close()


class _Postgres:
    """A PostgreSQL server, for app processes on several machines (MTL_STORE=postgresql://user@host/db).

    Writers take one transaction-scoped advisory lock, so writes are serialised as SQLite's are; a connection
    the server dropped (a restart) is opened again on the next call. A database written by a newer schema is
    never set aside (it is someone's data): StoreUnavailable says so."""

    WRITE_LOCK = 7_151_023   # the advisory lock's key, any constant this app alone uses
    own_readers = False      # one connection, shared under the store's lock

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
            elif row[0] < SCHEMA:   # an older schema's tables are all still there; the new ones were just created
                self.db.execute("UPDATE meta SET schema = %s", (SCHEMA,))

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
    """CREATE TABLE IF NOT EXISTS classes (code TEXT PRIMARY KEY, key_hash TEXT NOT NULL, lesson TEXT NOT NULL,
        seed INTEGER NOT NULL, stride INTEGER NOT NULL, answers INTEGER NOT NULL, opened {real} NOT NULL,
        expires {real} NOT NULL, revealed INTEGER NOT NULL, closed INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS members (code TEXT NOT NULL, token TEXT NOT NULL, number INTEGER NOT NULL,
        name TEXT NOT NULL, joined {real} NOT NULL, prediction INTEGER, predicted {real}, result TEXT, finished {real},
        PRIMARY KEY (code, token), UNIQUE (code, number))""",
    "CREATE INDEX IF NOT EXISTS members_by_token ON members (token, joined)",
    "CREATE TABLE IF NOT EXISTS joins (who TEXT NOT NULL, at {real} NOT NULL)",   # failed joins, for their rate limit
    "CREATE INDEX IF NOT EXISTS joins_by_who ON joins (who, at)",
    """CREATE TABLE IF NOT EXISTS files (token TEXT PRIMARY KEY, name TEXT NOT NULL, bytes INTEGER NOT NULL,
        stored INTEGER NOT NULL, body {blob} NOT NULL)""",
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

    @contextmanager
    def reading(self):
        """The database for reads: an SQLite file lends a connection of its own (readers never wait for the writer);
        PostgreSQL's one connection (or an in-memory database) is shared under the lock."""
        if self._sql.own_readers:
            with self._sql.reader() as db:
                yield db
        else:
            with self._lock:
                yield self._sql

    def index(self, token: str) -> list[RunEntry]:
        with self.reading() as sql:
            rows = sql.execute("SELECT id, arch, status, step, bytes FROM runs WHERE token = ? ORDER BY seq", (token,))
            return [RunEntry(*row) for row in rows]

    def run(self, token: str, run_id: str) -> dict | None:
        with self.reading() as sql:
            row = sql.execute("SELECT body FROM runs WHERE token = ? AND id = ?", (token, run_id)).fetchone()
        return None if row is None else json.loads(zlib.decompress(row[0]))

    def dump(self, token: str) -> str:
        """Every kept run of a browser as one JSON list (a run file), oldest first, without decoding any."""
        with self.reading() as sql:
            bodies = [b for (b,) in sql.execute("SELECT body FROM runs WHERE token = ? ORDER BY seq", (token,))]
        return "[" + ",".join(zlib.decompress(b).decode() for b in bodies) + "]"

    def settings(self, token: str) -> dict:
        return json.loads(self._locker(token)[0])

    def counts(self, token: str) -> tuple[int, int]:
        """(races started, runs let go because the browser's locker was full)."""
        _, races, dropped = self._locker(token)
        return races, dropped

    def _locker(self, token: str) -> tuple[str, int, int]:
        with self.reading() as sql:
            row = sql.execute("SELECT settings, races, dropped FROM lockers WHERE token = ?", (token,)).fetchone()
        return row or ("{}", 0, 0)

    def file(self, token: str) -> tuple[str, bytes] | None:
        """The browser's own data file: (its name, its bytes), or None."""
        with self.reading() as sql:
            row = sql.execute("SELECT name, body FROM files WHERE token = ?", (token,)).fetchone()
        return None if row is None else (row[0], zlib.decompress(row[1]))

    def size(self) -> int:
        """Bytes of compressed records and files kept, all browsers together."""
        with self.reading() as sql:
            return _stored(sql)

    def __len__(self) -> int:
        with self.reading() as sql:
            return sql.execute("SELECT count(*) FROM lockers").fetchone()[0]

    # ---------------------------------------------------------------- writing

    @contextmanager
    def transaction(self):
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
        with self.transaction():
            self._touch(token)
            self._sql.execute("UPDATE lockers SET settings = ? WHERE token = ?", (text, token))

    def keep_file(self, token: str, name: str, raw: bytes) -> None:
        """Keep a browser's own data file (checked by data/table.py first), in place of the one it kept before."""
        body = zlib.compress(raw, 6)
        with self.transaction():
            self._touch(token)
            self._sql.execute("DELETE FROM files WHERE token = ?", (token,))
            self._sql.execute("INSERT INTO files (token, name, bytes, stored, body) VALUES (?, ?, ?, ?, ?)",
                              (token, name, len(raw), len(body), body))
            self._bound(token)

    def next_race(self, token: str) -> int:
        """The number of this browser's next race (for its runs' names)."""
        with self.transaction():
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
        with self.transaction():
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
        for table in ("runs", "files"):
            self._sql.execute(f"DELETE FROM {table} WHERE token IN (SELECT token FROM lockers WHERE used < ?)", (stale,))
        self._sql.execute("DELETE FROM lockers WHERE used < ?", (stale,))
        size = _stored(self._sql)
        for (other,) in self._sql.execute("SELECT token FROM lockers WHERE token != ? ORDER BY used", (token,)).fetchall():
            if size <= self.max_bytes:
                break
            size -= _stored(self._sql, other)
            for table in ("runs", "files", "lockers"):
                self._sql.execute(f"DELETE FROM {table} WHERE token = ?", (other,))

    def close(self) -> None:
        with self._lock:
            self._sql.close()


def _stored(sql, token: str | None = None) -> int:
    """Compressed bytes of runs and files, of one browser or of all."""
    where, params = ("WHERE token = ?", (token,)) if token is not None else ("", ())
    return sum(int(sql.execute(f"SELECT coalesce(sum(stored), 0) FROM {table} {where}", params).fetchone()[0])
               for table in ("runs", "files"))


def is_server(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def default_location() -> str:
    """Where the server keeps its store: MTL_STORE (a file, or a postgresql:// URL), else
    `store/mtl-playground.sqlite` beside the app."""
    return os.environ.get("MTL_STORE") or str(Path(__file__).resolve().parents[2] / "store" / "mtl-playground.sqlite")
