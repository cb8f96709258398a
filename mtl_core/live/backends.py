"""Where races train: one interface, three backends.

  InProcess       a worker thread in this process (tests, notebooks)
  LocalProcesses  worker processes on this machine, at most one per core (the app's default): the
                  page process only draws, and every core trains
  RayCluster      Ray actors on a cluster (optional dependency; the app on the head node: MTL_RAY_ADDRESS=auto)

A backend hands out `Link`s to workers, the least loaded first. A link sends commands and, on its own
thread, delivers what the worker sends back to the races registered on it; when the worker dies, every
race on it hears `lost()` and keeps what it recorded. `shared_backend()` is the one backend of a server
process, chosen by MTL_BACKEND (inprocess, processes, ray) or MTL_RAY_ADDRESS.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, Listener, Pipe
from typing import Any, Callable

from ..serve import environment
from .trainer import Released
from .worker import serve, Worker

log = logging.getLogger(__name__)


class Link:
    """A connection to one worker: commands out, messages in (delivered to the registered races)."""

    def __init__(self, name: str, send: Callable[[Any], None], hang_up: Callable[[], None] = lambda: None):
        self.name, self._send, self.hang_up = name, send, hang_up
        self.races: dict[str, Any] = {}
        self.alive = True
        self.process: subprocess.Popen | None = None   # the worker's process, for the local-processes backend
        self._lock = threading.Lock()

    def send(self, command) -> None:
        with self._lock:
            if not self.alive:
                raise ConnectionError(f"{self.name} has stopped")
            try:
                self._send(command)
            except (OSError, ValueError) as error:
                self.alive = False
                raise ConnectionError(f"{self.name} has stopped ({error})") from None

    def deliver(self, messages: list) -> None:
        for message in messages:
            race = self.races.get(message.race)
            if race is not None:
                race.receive(message)
                if isinstance(message, Released):
                    self.races.pop(message.race, None)

    def kill(self) -> None:
        """Stop the worker without waiting for it (a cancelled job): its process is killed where there is one, a
        worker thread is asked to end once its current work is done."""
        if self.process is not None:
            self.process.kill()
        else:
            self._send(None)

    def close(self, reason: str) -> None:
        """The worker is gone: every race on it is told, and keeps what it has."""
        self.alive = False
        for race in list(self.races.values()):
            race.lost(reason)
        self.races.clear()


class Backend:
    """Hands out links to workers; subclasses say how a worker is started. A start happens outside the
    backend's lock, so a slow start holds only the student whose race needs that worker."""

    name = "backend"
    START_TIMEOUT = 120.0

    def __init__(self, workers: int):
        self.size = max(1, workers)
        self.links: list[Link] = []
        self.jobs: Link | None = None   # a worker of its own for jobs, so a long study never stalls a race
        self._lock = threading.Condition()
        self._job_lock = threading.Lock()
        self._starting = self._started = 0
        self._warming = False

    def link(self) -> Link:
        """A link to the worker with the fewest races (a new worker while there are fewer than `size`)."""
        deadline = time.monotonic() + self.START_TIMEOUT
        with self._lock:
            while True:
                self.links = [link for link in self.links if link.alive]
                if len(self.links) + self._starting < self.size:
                    self._starting += 1
                    self._started += 1
                    name = f"{self.name} worker {self._started}"
                    break
                if self.links:
                    return min(self.links, key=lambda link: len(link.races))
                if not self._lock.wait(max(0.0, deadline - time.monotonic())):   # every worker is still starting
                    raise ConnectionError("no training worker started in time")
        link = None
        try:
            link = self._start(name)
            return link
        finally:
            with self._lock:
                self._starting -= 1
                if link is not None:
                    self.links.append(link)
                self._lock.notify_all()

    def warm(self) -> None:
        """Start the workers now, in the background (a class's first races then start at once)."""
        def start_all():
            try:
                while len(self.links) < self.size:
                    before = len(self.links)
                    self.link()
                    if len(self.links) == before:
                        break
            except ConnectionError:
                log.exception("a worker did not start")

        if not self._warming:
            self._warming = True
            threading.Thread(target=start_all, daemon=True, name=f"{self.name} warm-up").start()

    def job_link(self) -> Link:
        with self._job_lock:   # not the races' lock: a job worker starting holds no student's race
            if self.jobs is None or not self.jobs.alive:
                self.jobs = self._start(f"{self.name} job worker")
            return self.jobs

    def cancel_job(self, link: Link) -> None:
        """A page gave up on a job on `link`: when no other job waits there, the job worker is stopped (it holds
        no races, and the next job starts a fresh one); otherwise the job's result is dropped when it comes."""
        if link.races:
            return
        with self._job_lock:
            if self.jobs is link:
                self.jobs = None
        link.alive = False
        try:
            link.kill()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass

    def _start(self, name: str) -> Link:
        raise NotImplementedError

    def playing(self) -> int:
        """Races playing on this backend right now."""
        return sum(1 for link in self.links for race in list(link.races.values()) if race.playing)

    def held(self) -> int:
        """Races its workers hold, playing or not: the races that may play (a page plans its redraws for them)."""
        return sum(len(link.races) for link in self.links)

    def describe(self) -> str:
        return f"{self.name}, {self.size} worker(s)"

    def close(self) -> None:
        """Let every worker go (their races hear that they stopped)."""
        with self._lock:
            for link in [*self.links, *([self.jobs] if self.jobs else [])]:
                try:
                    link.hang_up()
                except (OSError, ValueError, subprocess.TimeoutExpired):
                    pass  # already gone
            self.links, self.jobs = [], None


def _receive(link: Link, connection: Connection) -> None:
    try:
        while True:
            link.deliver(connection.recv())
    except (EOFError, OSError):
        link.close(f"{link.name} stopped (it crashed or was killed)")


class InProcess(Backend):
    """Workers are threads of this process, running the same loop as the processes do."""

    name = "in-process"

    def __init__(self, workers: int = 1):
        super().__init__(workers)

    def _start(self, name: str) -> Link:
        ours, theirs = Pipe()
        worker = threading.Thread(target=serve, args=(theirs,), daemon=True, name=name)
        worker.start()
        link = Link(name, ours.send, lambda: (ours.send(None), worker.join(10)))
        threading.Thread(target=_receive, args=(link, ours), daemon=True, name=f"{name} receiver").start()
        return link


class LocalProcesses(Backend):
    """Workers are child processes (`python -m mtl_core.live HOST:PORT THREADS`), each with MTL_TORCH_THREADS
    threads (1 unless set). Each start listens on a loopback port of its own with a random key, closed once
    the worker has connected or failed, so a failed start leaves nothing that could take the next worker's
    connection."""

    name = "local processes"

    def __init__(self, workers: int | None = None):
        super().__init__(workers or os.cpu_count() or 1)
        self.key = secrets.token_bytes(32)
        self.threads = environment.torch_threads()
        self.processes: list[subprocess.Popen] = []

    def _start(self, name: str) -> Link:
        listener = Listener(("127.0.0.1", 0), authkey=self.key)
        host, port = listener.address
        try:
            process = subprocess.Popen([sys.executable, "-m", "mtl_core.live", f"{host}:{port}", str(self.threads)],
                                       env={**os.environ, "MTL_WORKER_KEY": self.key.hex()},
                                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
            self.processes.append(process)
            accepted: list[Connection] = []

            def accept():   # a start that gives up leaves this thread blocked on its own closed port: it accepts nothing
                try:
                    accepted.append(listener.accept())
                except (OSError, EOFError):
                    pass

            waiter = threading.Thread(target=accept, daemon=True, name=f"{name} accept")
            waiter.start()
            deadline = time.monotonic() + self.START_TIMEOUT
            while waiter.is_alive() and process.poll() is None and time.monotonic() < deadline:
                waiter.join(0.1)
        finally:
            listener.close()
        if not accepted:
            process.kill()
            raise ConnectionError(f"{name} did not start (exit code {process.poll()}); see the server's log")
        connection = accepted[0]
        link = Link(name, connection.send, lambda: (connection.send(None), process.wait(10)))
        link.process = process
        threading.Thread(target=_receive, args=(link, connection), daemon=True, name=f"{name} receiver").start()
        return link

    def describe(self) -> str:
        return f"{self.name}, up to {self.size} (one per core)"


class RayCluster(Backend):
    """Workers are Ray actors (one CPU each) on the cluster at `address` ("auto", "ray://host:10001", or
    None for a local Ray instance). The mtl_core package travels to the cluster with each actor."""

    name = "Ray"
    TURN = 0.1   # seconds an actor trains before it returns what happened

    def __init__(self, address: str | None = None, workers: int | None = None):
        import ray

        import mtl_core

        if not ray.is_initialized():
            ray.init(address=address, runtime_env={"py_modules": [os.path.dirname(mtl_core.__file__)]},
                     include_dashboard=False, configure_logging=False)
        self.actor_class = ray.remote(num_cpus=1)(RayWorker)
        super().__init__(workers or int(ray.cluster_resources().get("CPU", 1)))

    def _start(self, name: str) -> Link:
        import ray

        actor = self.actor_class.remote()
        ray.get(actor.ready.remote())
        link = Link(name, lambda command: actor.handle.remote(command), lambda: ray.kill(actor))

        def receive():
            try:
                while link.alive:
                    messages = ray.get(actor.work.remote(self.TURN))
                    link.deliver(messages)
                    if not messages:
                        time.sleep(0.05)
            except Exception as error:  # noqa: BLE001 - the actor died (node lost, killed)
                link.close(f"{name} stopped ({type(error).__name__})")

        threading.Thread(target=receive, daemon=True, name=f"{name} receiver").start()
        return link


class RayWorker:
    """The worker inside a Ray actor: commands queue their answers; `work` trains for up to `seconds`."""

    def __init__(self):
        import torch

        torch.set_num_threads(1)
        self.worker, self.outbox = Worker(), []

    def ready(self) -> bool:
        return True

    def handle(self, command) -> None:
        self.outbox += self.worker.handle(command)

    def work(self, seconds: float) -> list:
        started = time.monotonic()
        messages, self.outbox = self.outbox + self.worker.work(), []
        while self.worker.busy and time.monotonic() - started < seconds:
            messages += self.worker.work()
        return messages


_SHARED: Backend | None = None
_SHARED_LOCK = threading.Lock()


def shared_backend() -> Backend:
    """This process's backend: MTL_RAY_ADDRESS -> Ray; else MTL_BACKEND (processes by default); MTL_WORKERS
    sets the number of workers (default: one per core). ConfigError for a bad variable (environment.py)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            kind, workers = environment.backend(), environment.workers()
            if kind == "ray":
                _SHARED = RayCluster(os.environ.get("MTL_RAY_ADDRESS"), workers)
            elif kind == "inprocess":
                _SHARED = InProcess(workers or 1)
            else:
                _SHARED = LocalProcesses(workers)
        return _SHARED
