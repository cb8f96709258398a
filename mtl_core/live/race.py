"""The page's side of a live race: what to draw, and the buttons.

    race = Race(shared_backend(), settings, number=1)   # ConfigError when the settings make no task set
    race = Race(backend, settings, 2, file=table)         # data = file: the worker gets the checked table with the race
    race.play(); race.alive()                           # alive() at every redraw, or it pauses itself
    with race.lock: ...race.runs["mmoe"].history...     # a consistent picture while messages arrive
    race.pause(); race.records()                        # run records (records.py) to keep

Training happens in a worker (backends.py); this object only keeps what the worker reported, so a
worker that dies takes nothing recorded with it: the race says so (`problem`) and the page can start a
fresh one.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd

from ..config import ConfigError
from ..data.table import Table
from ..models.registry import ENTRY
from ..serve.records import run_record
from ..settings import builders
from ..settings.knob import Settings
from .backends import Backend
from .trainer import Done, Released, run_names, Update


POINTS = 120   # points per loss curve kept for drawing (one per 1/POINTS of the run, the latest in each)


@dataclass
class RunView:
    """One model of the race as the page knows it. `curves` holds each loss curve, (task, split) ->
    (steps, losses), thinned as it grows to one point per 1/POINTS of the run (the latest in each), so
    a redraw never touches the whole history."""

    arch: str   # the race entry: an architecture, or "arch+weighting" (builders.entries)
    name: str
    total_steps: int
    step: int = 0
    status: str = "ready"
    message: str = ""
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    metrics: pd.DataFrame | None = None
    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    positive_rate: list = field(default_factory=list)
    snapshots: int = 0
    lr: float = 0.0
    lr_changed_at: int | None = None   # the last step trained before the learning rate last changed
    curves: dict[tuple[str, str], tuple[list[int], list[float]]] = field(default_factory=dict)
    weights: bytes | None = None   # the trained state dict (safetensors), once the worker said the model finished

    @property
    def done(self) -> bool:
        return self.status in ("finished", "diverged", "stopped")

    def apply(self, u: Update) -> None:
        if self.lr and u.lr != self.lr:
            self.lr_changed_at = self.step
        self.step, self.status, self.message, self.seconds, self.lr = u.step, u.status, u.message, u.seconds, u.lr
        self.history += u.history
        for row in u.history:
            steps, losses = self.curves.setdefault((row["task"], row["split"]), ([], []))
            if steps and steps[-1] * POINTS // self.total_steps == row["step"] * POINTS // self.total_steps:
                steps[-1], losses[-1] = row["step"], row["loss"]
            else:
                steps.append(row["step"])
                losses.append(row["loss"])
        self.positive_rate = u.positive_rate or self.positive_rate
        self.weights = u.weights if u.weights is not None else self.weights
        if u.metrics is not None:
            self.metrics = u.metrics
        if u.quality:   # evaluations, not snapshots: the funnel table has its own steps
            self.tables.setdefault("funnel", []).append(pd.DataFrame(u.quality))
        for snapshot in u.snapshots:
            for name, frame in snapshot.items():
                self.tables.setdefault(name, []).append(frame)
            self.snapshots += 1

    def latest(self, table: str) -> pd.DataFrame | None:
        frames = self.tables.get(table)
        return frames[-1] if frames else None

    def record(self, settings: Settings) -> dict:
        """The run record, with the settings this entry trained with (its architecture's, and its own weighting)."""
        tables = {name: pd.concat(frames, ignore_index=True) for name, frames in self.tables.items()}
        return run_record(self.name, self.arch.partition(ENTRY)[0], self.status, self.step, settings, self.history,
                          self.metrics, self.positive_rate, tables, self.weights)


class Race:
    """Several architectures on one task set, trained by a worker, drawn by a page."""

    WAIT = 120.0         # seconds a button waits for the worker (a Step of a large race takes a while)
    ALIVE_EVERY = 1.0    # seconds between "alive" messages

    def __init__(self, backend: Backend, settings: Settings, number: int = 1, file: Table | None = None):
        """`file`: the checked own file the settings train on (data/table.py; held in this process too)."""
        self.id, self.settings, self.number = uuid.uuid4().hex, dict(settings), number
        self.backend = backend.describe()
        steps = math.ceil(builders.training_rows(settings) / settings["batch"]) * settings["epochs"]
        self.entries = builders.entries(self.settings)   # key -> (architecture, the settings it trains with)
        self.runs = {key: RunView(key, name, steps) for key, name in run_names(settings, number).items()}
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self.playing, self.lr, self.problem = False, settings["lr"], ""
        self.wanted = False   # the student pressed Play (and not Pause since): the race should be playing
        self._seq = self._done = 0
        self._said_alive = 0.0
        self.link = backend.link()
        self.link.races[self.id] = self
        error = self._command("start", (settings, file), wait=True)
        if error:
            self.close()
            raise ConfigError(error)

    # ---------------------------------------------------------------- what the page reads

    @property
    def total_steps(self) -> int:
        return next(iter(self.runs.values())).total_steps

    @property
    def done(self) -> bool:
        return all(r.done for r in self.runs.values())

    @property
    def active(self) -> bool:
        """The worker still holds the race (it can train further)."""
        return not self.problem

    @property
    def in_play(self) -> bool:
        """The student pressed Play (not Pause since) and the race can still train: what a page redraws for. It does
        not follow the worker's moment-to-moment state: a race that paused itself because a busy server held back the
        page's word is in play, and the page's next `alive()` plays it again. A page that decided from `playing` while
        such a pause was on its way registered no timed redraw, and its browser then asked for none."""
        return self.wanted and not self.done and self.active

    def curves(self) -> pd.DataFrame:
        """The loss curves to draw: arch, task, split, step, loss (thinned, see RunView)."""
        with self.lock:
            parts = [(run.arch, task, split, list(steps), list(losses)) for run in self.runs.values()
                     for (task, split), (steps, losses) in run.curves.items()]
        return pd.DataFrame({"arch": [arch for arch, _, _, steps, _ in parts for _ in steps],
                             "task": [task for _, task, _, steps, _ in parts for _ in steps],
                             "split": [split for _, _, split, steps, _ in parts for _ in steps],
                             "step": [step for *_, steps, _ in parts for step in steps],
                             "loss": [loss for *_, losses in parts for loss in losses]})

    def records(self) -> list[dict]:
        """Run records of every model that learned something."""
        with self.lock:
            return [r.record(self.entries[key][1]) for key, r in self.runs.items() if r.step > 0]

    # ---------------------------------------------------------------- the buttons

    def play(self) -> None:
        with self.lock:
            self.playing = self.wanted = True
        self.alive(force=True)
        self._command("play")

    def pause(self) -> None:
        """Stop training; returns once the worker has reported the last steps (so a record is complete)."""
        self.wanted = False
        self._command("pause", wait=True)

    def step(self, steps: int) -> None:
        self._command("step", steps, wait=True)

    def set_lr(self, lr: float) -> None:
        """The live learning rate (the next steps use it)."""
        if lr != self.lr:
            self.lr = lr
            self._command("lr", lr)

    def alive(self, force: bool = False) -> None:
        """The page is drawing; a playing race pauses itself PATIENCE seconds after the last call. A race the
        student left playing that paused itself so (a busy server held back the page's word) plays again."""
        if self.wanted and not self.playing and not self.done and self.active:
            self.play()
            return
        now = time.monotonic()
        if force or now - self._said_alive > self.ALIVE_EVERY:
            self._said_alive = now
            self._command("alive")

    def close(self) -> None:
        """Let the worker free the race (the page keeps the runs)."""
        if self.active:
            self._command("close")
        self.link.races.pop(self.id, None)

    # ---------------------------------------------------------------- from the worker

    def receive(self, message) -> None:
        with self.lock:
            if isinstance(message, Update):
                run = self.runs[message.arch]
                run.apply(message)
            elif isinstance(message, Done):
                self._done = max(self._done, message.seq)
                self.playing = message.playing if message.seq >= self._seq or message.seq < 0 else self.playing
                if message.error:
                    self.problem = message.error
            elif isinstance(message, Released):
                self._let_go(f"The worker let this race go: {message.reason}.")
                self.link.races.pop(self.id, None)   # no longer held (pages plan their redraws for the races held)
            self._changed.notify_all()

    def lost(self, reason: str) -> None:
        with self.lock:
            self._let_go(f"Training stopped: {reason}. Everything recorded so far is kept; "
                         "press Play to start the race again on a fresh worker.")
            self._changed.notify_all()

    def _let_go(self, problem: str) -> None:
        self.problem, self.playing = problem, False
        for run in self.runs.values():
            if not run.done:
                run.status = "stopped"

    def _command(self, verb: str, argument=None, wait: bool = False) -> str:
        """Send a command; with `wait`, return once the worker has done it (or the race is gone)."""
        with self.lock:
            if self.problem and verb != "start":
                return self.problem
            self._seq += 1
            seq = self._seq
        try:
            self.link.send((self.id, seq, verb, argument))
        except ConnectionError as error:
            self.lost(str(error))
            return self.problem
        if wait:
            with self.lock:
                if not self._changed.wait_for(lambda: self._done >= seq or self.problem, timeout=self.WAIT):
                    self._let_go(f"The worker did not answer within {self.WAIT:.0f} s.")
        return self.problem
