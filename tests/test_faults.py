"""Fault injection: each way a worker, a job, a start or a hostile file can fail, asserting what the student is
told and that nothing recorded is lost (a worker killed mid-race is in test_live.py)."""

import json
import os
import signal
import sys
import threading
import time

import pytest

from mtl_core.config import ConfigError
from mtl_core.live import InProcess, JobFailed, LocalProcesses, Race, run_job, worker as worker_module
from mtl_core.live.backends import Backend, Link
from mtl_core.serve.records import read_records, RecordError
from mtl_core.settings import builders, knobs, links


def settings(**changes):
    return {**knobs.defaults(), "samples": 2_000, "epochs": 20, **changes}


def wait(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def boom():
    raise RuntimeError("a bug in the study")


def out_of_memory():
    raise MemoryError("cannot allocate 8 GB")


def slow():
    time.sleep(3)
    return "late"


@pytest.fixture
def jobs(monkeypatch):
    """An in-process backend whose job worker also knows the failing jobs above."""
    monkeypatch.setitem(worker_module.JOBS, "boom", boom)
    monkeypatch.setitem(worker_module.JOBS, "oom", out_of_memory)
    monkeypatch.setitem(worker_module.JOBS, "slow", slow)
    backend = InProcess()
    yield backend
    backend.close()


@pytest.mark.parametrize("name, said", [("boom", "RuntimeError: a bug in the study"), ("oom", "MemoryError"),
                                         ("no-such-job", "KeyError")])
def test_a_job_that_fails_in_any_way_reaches_the_page_and_the_worker_serves_the_next(jobs, name, said):
    with pytest.raises(JobFailed, match=said):
        run_job(jobs, name, timeout=30)
    assert run_job(jobs, "slow", timeout=30) == "late"   # the same job worker goes on


def test_a_job_past_its_time_says_so_and_is_cancelled(jobs):
    seen = []
    with pytest.raises(JobFailed, match="longer than 1 s"):
        run_job(jobs, "slow", timeout=1, waiting=seen.append)
    assert seen and max(seen) <= 1.5   # the page was called while it waited, and the wait ended at its time
    assert jobs.jobs is None   # the job worker held nothing else: it was let go, the next job starts a fresh one
    assert run_job(jobs, "slow", timeout=30) == "late"


def test_a_page_that_stops_waiting_cancels_its_job(jobs):
    class Rerun(Exception):
        """What Streamlit raises in a page whose student pressed a button."""

    def press_stop(seconds):
        raise Rerun

    with pytest.raises(Rerun):
        run_job(jobs, "slow", timeout=30, waiting=press_stop)
    assert jobs.jobs is None


def test_a_worker_that_stops_answering_is_given_up_with_the_runs_kept(monkeypatch):
    backend = LocalProcesses(workers=1)
    race = Race(backend, settings())
    race.step(20)
    monkeypatch.setattr(Race, "WAIT", 2.0)
    os.kill(race.link.process.pid, signal.SIGSTOP)
    try:
        race.step(20)
        assert "did not answer within 2 s" in race.problem and not race.playing
        assert race.runs["mmoe"].step == 20 and [r["step"] for r in race.records()] == [20, 20]   # nothing recorded is lost
    finally:
        os.kill(race.link.process.pid, signal.SIGKILL)
        backend.close()


def test_a_failed_worker_start_leaves_nothing_that_takes_the_next_workers_connection(monkeypatch):
    backend = LocalProcesses(workers=1)
    monkeypatch.setattr(LocalProcesses, "START_TIMEOUT", 20.0)
    with monkeypatch.context() as m:
        m.setattr(sys, "executable", "/bin/false")   # the worker exits at once
        with pytest.raises(ConnectionError, match="did not start"):
            backend.link()
    race = Race(backend, settings())   # the next start connects (before the fix a stale accept took its connection)
    race.step(10)
    assert race.runs["mmoe"].step == 10 and race.link.alive
    race.close()
    backend.close()


def test_a_bad_environment_variable_is_one_clear_message(monkeypatch):
    monkeypatch.setenv("MTL_TORCH_THREADS", "two")
    with pytest.raises(ConfigError, match="MTL_TORCH_THREADS = 'two' is not allowed: it must be a whole number from 1"):
        LocalProcesses(workers=1)
    monkeypatch.setenv("MTL_TORCH_THREADS", "３")   # a full-width digit is not a number here either
    with pytest.raises(ConfigError, match="MTL_TORCH_THREADS"):
        LocalProcesses(workers=1)


def test_a_worker_starting_holds_no_other_student():
    """One worker is up; while a second starts (held here until released), another student gets the first at once."""
    release, started = threading.Event(), threading.Event()

    class Slow(Backend):
        def _start(self, name):
            if self._started > 1:
                started.set()
                release.wait(30)
            return Link(name, lambda command: None)

    backend = Slow(workers=2)
    first = backend.link()
    starter = threading.Thread(target=backend.link)
    starter.start()
    assert started.wait(10)
    got = []
    other = threading.Thread(target=lambda: got.append(backend.link()))
    other.start()
    other.join(5)
    release.set()
    starter.join(10)
    assert got == [first]   # served while the second worker was still starting


HOSTILE = [({"tasks": 1_000_000_000}, "tasks"), ({"source": "census-income:x"}, "source"),
           ({"experts": 10**6}, "experts"), ({"arch": ["MMoE"] * 100_000}, "arch"), ({"x" * 100: 1}, "not settings"),
           ({"tasks": 10**25}, "tasks"), ({"settings": {"nested": [1] * 10}}, "not settings")]


@pytest.mark.parametrize("changed, said", HOSTILE)
def test_a_run_files_settings_are_checked_like_a_link(live_record, changed, said):
    record = {**live_record, "settings": {**live_record["settings"], **changed}}
    with pytest.raises(RecordError, match=f"its settings are not this app's.*{said}"):
        read_records(json.dumps([record]))


def test_a_five_thousand_digit_number_gets_our_message_not_pythons():
    with pytest.raises(ValueError, match="a whole number of 5,000 digits; run files have numbers of at most 30 digits"):
        read_records('[{"id": "x", "step": ' + "9" * 5000 + "}]")
    with pytest.raises(ValueError, match="digits; settings files"):
        links.read_file('{"seed": ' + "9" * 5000 + "}")


def test_config_builders_check_sizes_before_they_allocate():
    for bad in ({"tasks": 10**9}, {"experts": 10**6}, {"source": "census-income:x"}, {"hidden": 7}):
        with pytest.raises(ConfigError):
            builders.data_config({**knobs.defaults(), **bad})
        with pytest.raises(ConfigError):
            builders.model_config("mmoe", {**knobs.defaults(), **bad})


@pytest.fixture(scope="module")
def live_record():
    backend = InProcess()
    race = Race(backend, settings(arch=("MMoE",)))
    race.step(50)
    (record,) = race.records()
    race.close()
    backend.close()
    return record
