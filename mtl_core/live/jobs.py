"""Studies a page asks for (a sweep, an ablation arm), run by a worker so the page process only draws.

    rows = run_job(shared_backend(), "sweep", archs=["mmoe"], correlations=[0.5], seeds=range(3), ...)

The call blocks the page's own thread until the result arrives (other students' pages are not held:
the work happens in another process), never longer than `timeout` seconds (MTL_JOB_SECONDS). Every
way a job can end reaches the caller: a job's ConfigError comes back as ConfigError; anything else the
job raised, a worker that died or let the job go, a worker that did not start and a job past its time
come back as JobFailed with a sentence for the student. `waiting(seconds)` is called about twice a
second while it waits: a page draws progress there, and a Streamlit rerun raised from it (the student
pressed a button) stops the wait; a job given up is cancelled (see Backend.cancel_job).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Callable

from ..config import ConfigError
from ..serve import environment
from .backends import Backend
from .trainer import JobDone, Released


class JobFailed(RuntimeError):
    """A study did not return a result; the message says why, for the student."""


class _Job:
    def __init__(self):
        self.id, self.done = uuid.uuid4().hex, threading.Event()
        self.result, self.error, self.problem = None, "", ""

    def receive(self, message) -> None:
        if isinstance(message, JobDone):
            self.result, self.error = message.result, message.error
            self.done.set()
        elif isinstance(message, Released):   # the worker's guard caught something other than a ConfigError
            self.problem = f"the study failed on its worker: {message.reason}"
            self.done.set()

    def lost(self, reason: str) -> None:
        self.problem = reason
        self.done.set()


def run_job(backend: Backend, name: str, timeout: float | None = None, waiting: Callable[[float], None] | None = None,
            **kwargs):
    """Run `worker.JOBS[name](**kwargs)` on the backend's job worker and return its result."""
    timeout = environment.job_seconds() if timeout is None else timeout
    try:
        link = backend.job_link()
    except ConnectionError as error:
        raise JobFailed(f"no worker could start for the study ({error})") from None
    job, started, finished = _Job(), time.monotonic(), False
    link.races[job.id] = job
    try:
        link.send((job.id, 1, "job", (name, kwargs)))
        while not job.done.wait(0.5):
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise JobFailed(f"the study took longer than {timeout:.0f} s and was stopped; try fewer seeds or samples")
            if waiting is not None:
                waiting(elapsed)
        finished = True
    except ConnectionError as error:
        raise JobFailed(str(error)) from None
    finally:
        link.races.pop(job.id, None)
        if not finished:
            backend.cancel_job(link)
    if job.problem:
        raise JobFailed(job.problem)
    if job.error:
        raise ConfigError(job.error)
    return job.result
