"""The durable store behind each browser's locker: bounded, apart, written through (a new process finds
everything), safe for many threads and processes at once, and a bad file never stops the server.

Each test runs on an SQLite file and, where MTL_TEST_POSTGRES names a server (`.ci/run` starts one with
`.ci/postgres`), on a fresh PostgreSQL database of that server."""

import sqlite3
import subprocess
import sys
import threading

import pytest

from mtl_core.serve.records import dumps, free_id
from mtl_core.serve.shelf import Shelf
from mtl_core.serve.store import Store, StoreFull, StoreUnavailable

A, B = "a" * 20, "b" * 20


def run(i, size=0, **changes):
    return {"id": f"r{i}", "arch": "mmoe", "status": "finished", "step": i, "settings": {}, "history": [],
            "metrics": [], "positive_rate": [], "diagnostics": {}, "pad": "x" * size, **changes}


def test_a_locker_is_bounded_by_count_and_bytes_and_browsers_are_apart(where):
    store = Store(where, max_runs=3, max_locker_bytes=5_000)
    store.keep(A, [run(i) for i in range(5)])
    assert [e.id for e in store.index(A)] == ["r2", "r3", "r4"] and store.counts(A)[1] == 2
    assert store.index(B) == [] and store.run(B, "r4") is None   # another browser sees nothing of it
    store.keep(A, [run(4, step=9)], update=True)   # a live run archived again replaces itself
    assert [e.step for e in store.index(A)] == [2, 3, 9]
    small = len(dumps(run(3)))
    store.keep(A, [run(7, size=5_000 - small - small // 2 - len(dumps(run(7))))])   # room for one small run beside it
    sizes = {e.id: e.bytes for e in store.index(A)}
    assert list(sizes) == ["r4", "r7"] and sum(sizes.values()) <= 5_000   # the oldest went to stay under the bound
    with pytest.raises(StoreFull, match="at most"):
        store.keep(A, [run(8, size=6_000)])
    assert [e.id for e in store.index(A)] == ["r4", "r7"]   # a refused run changes nothing


def test_a_taken_id_gets_a_new_one_and_replaces_nothing(where):
    store = Store(where)
    added = store.keep(A, [run(1), run(1), run(1)])
    assert [r["id"] for r in added] == ["r1", "r1 (2)", "r1 (3)"] == [e.id for e in store.index(A)]
    assert store.run(A, "r1 (3)")["id"] == "r1 (3)"
    assert free_id("x" * 80, {"x" * 80}) == "x" * 74 + " (2)"


def test_a_restarted_server_finds_every_browsers_runs_and_settings(where):
    path = where
    shelf = Shelf(Store(path))
    shelf.keep(A, [run(1), run(2)])
    shelf.locker(A).settings = {"corr": 0.2}
    assert shelf.locker(A).next_race() == 1
    shelf.locker(A).keep_file("old.csv", b"a,b\n0,0\n")
    shelf.locker(A).keep_file("shop.csv", b"a,b\n1,2\n")   # an own file replaces the one before
    code = ("import sys; from mtl_core.serve.store import Store; s = Store(sys.argv[1]); "
            "print([e.id for e in s.index('" + A + "')], s.settings('" + A + "'), s.next_race('" + A + "'), s.file('" + A + "'))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['r1', 'r2'] {'corr': 0.2} 2 ('shop.csv', b'a,b\\n1,2\\n')"
    assert shelf.locker(B).file() is None   # another browser's file is never seen


def test_many_students_writing_at_once_lose_and_duplicate_nothing(where):
    """25 students keep 40 runs each at the same time (1,000 runs), through one store and a second process's."""
    path = where
    store = Store(path, max_runs=100)
    tokens = [f"student{i:02d}".ljust(20, "x") for i in range(25)]
    other = subprocess.Popen([sys.executable, "-c", "import sys; from mtl_core.serve.store import Store; s = Store(sys.argv[1]); "
                              "[s.keep('other'.ljust(20, 'x'), [{'id': f'o{i}', 'arch': 'mmoe', 'status': 'finished', 'step': i}]) "
                              "for i in range(100)]", str(path)])
    errors = []

    def student(token):
        try:
            for i in range(40):
                store.keep(token, [run(i)])
        except Exception as error:   # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=student, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other.wait(60) == 0 and not errors
    for token in tokens:
        assert [e.id for e in store.index(token)] == [f"r{i}" for i in range(40)]
    assert [e.id for e in store.index("other".ljust(20, "x"))] == [f"o{i}" for i in range(40, 100)]   # its bound: 60


def test_a_corrupt_or_newer_store_is_set_aside_and_a_fresh_one_started(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = Store(path)
    assert "could not be read" in store.problem and store.index(A) == []
    store.keep(A, [run(1)])
    assert [p.name for p in tmp_path.iterdir() if "unreadable" in p.name]
    store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    newer = Store(path)
    assert "newer than this app's" in newer.problem and newer.index(A) == []


def test_the_file_bound_lets_the_least_recently_used_browsers_go(where):
    store = Store(where, max_bytes=1)   # every write is over the bound
    store.keep(A, [run(1)])
    store.keep_file(A, "a.csv", b"a,b\n1,2\n")
    store.keep(B, [run(2)])
    assert store.index(A) == [] and store.file(A) is None and [e.id for e in store.index(B)] == ["r2"]   # never the writer's own


def test_a_newer_or_unreachable_postgresql_store_says_why_and_is_left_alone(where):
    if not where.startswith("postgresql://"):
        pytest.skip("the SQLite file's case is the test above")
    Store(where).keep(A, [run(1)])
    import psycopg
    with psycopg.connect(where, autocommit=True) as db:
        db.execute("UPDATE meta SET schema = 99")
    with pytest.raises(StoreUnavailable, match="newer version of this app"):
        Store(where)
    with psycopg.connect(where, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1   # someone's data: never set aside
    with pytest.raises(StoreUnavailable, match="Could not reach"):
        Store("postgresql://mtl@localhost:1/none")
