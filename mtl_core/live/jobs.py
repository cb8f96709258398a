"""Studies a page asks for (a sweep, an ablation arm), run by a worker so the page process only draws.

    rows = run_job(shared_backend(), "sweep", archs=["mmoe"], correlations=[0.5], seeds=range(3), ...)

The call blocks the page's own thread until the result arrives (other students' pages are not held:
the work happens in another process). A job's error comes back as ConfigError; a worker that dies as
ConnectionError.
"""

from __future__ import annotations

import threading
import uuid

from ..config import ConfigError
from .backends import Backend
from .trainer import JobDone


class _Job:
    def __init__(self):
        self.id, self.done = uuid.uuid4().hex, threading.Event()
        self.result, self.error, self.problem = None, "", ""

    def receive(self, message) -> None:
        if isinstance(message, JobDone):
            self.result, self.error = message.result, message.error
            self.done.set()

    def lost(self, reason: str) -> None:
        self.problem = reason
        self.done.set()


def run_job(backend: Backend, name: str, **kwargs):
    """Run `worker.JOBS[name](**kwargs)` on the backend's job worker and return its result."""
    job, link = _Job(), backend.job_link()
    link.races[job.id] = job
    try:
        link.send((job.id, 1, "job", (name, kwargs)))
        job.done.wait()
    finally:
        link.races.pop(job.id, None)
    if job.problem:
        raise ConnectionError(job.problem)
    if job.error:
        raise ConfigError(job.error)
    return job.result
