"""A training worker: it holds the races assigned to it and trains the playing ones in turns.

Commands are tuples `(race, seq, verb, argument)`; verbs: start (argument: knob settings), play,
pause, step (argument: steps), lr (argument: rate), alive, close, and job (argument: a name in JOBS
and its keyword arguments; the answer is a `JobDone`). The worker answers a command with
a `Done` carrying its `seq` (after the steps, for "step"), streams `Update`s while a race plays, and
on its own:
  pauses a playing race that has not heard "alive" for PATIENCE seconds (the student left the page);
  releases a race that has heard nothing for FORGET seconds (its models go; the page keeps the runs).

`serve(connection)` runs the loop over a multiprocessing Connection; the backends (backends.py) run it
in a thread, in a child process (`python -m mtl_core.live HOST:PORT`, authenticated with the key in
MTL_WORKER_KEY) or in a Ray actor (`Worker.handle` and `Worker.work` directly).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..config import ConfigError
from ..serve import environment
from ..studies import experiments
from ..train import runs
from .trainer import Done, JobDone, RaceTrainer, Released

log = logging.getLogger(__name__)
Command = tuple[str, int, str, Any]
JOBS = {"sweep": runs.sweep, "ablation_arm": experiments.ablation_arm, "transfer": experiments.transfer}   # what a page may ask a worker to run


class Worker:
    CHUNK = 10          # steps per model per turn: short, so every playing race gets turns often
    PATIENCE = 10.0     # seconds without "alive" before a playing race pauses itself
    FORGET = float(environment.race_idle_seconds())   # seconds without any word before a race is released

    def __init__(self):
        self.races: dict[str, RaceTrainer] = {}
        self.playing: list[str] = []
        self.heard: dict[str, float] = {}
        self.turn = 0

    @property
    def busy(self) -> bool:
        return bool(self.playing)

    def handle(self, command: Command) -> list:
        race = command[0]
        self.heard[race] = time.monotonic()
        return self._guarded(race, lambda: self._handle(*command))

    def _handle(self, race: str, seq: int, verb: str, argument: Any) -> list:
        if verb == "job":
            name, kwargs = argument
            try:
                return [JobDone(race, seq, JOBS[name](**kwargs))]
            except ConfigError as error:
                return [JobDone(race, seq, error=str(error))]
        if verb == "start":
            try:
                self.races[race] = RaceTrainer(race, *argument)
            except ConfigError as error:
                return [Done(race, seq, False, error=str(error))]
            return [Done(race, seq, False)]
        trainer = self.races.get(race)
        if trainer is None:
            return [Released(race, "the worker no longer holds this race")] if verb != "alive" else []
        if verb == "alive":
            return []
        if verb == "play":
            if not trainer.done and race not in self.playing:
                self.playing.append(race)
            return [Done(race, seq, race in self.playing)]
        if verb == "pause":
            self._stop_playing(race)
            return [*trainer.pause(), Done(race, seq, False)]
        if verb == "step":
            return [*trainer.advance(argument, playing=False), Done(race, seq, False)]
        if verb == "lr":
            trainer.set_lr(argument)
            return [Done(race, seq, race in self.playing)]
        if verb == "close":
            self._release(race)
            return [Released(race, "closed")]
        raise ValueError(f"unknown command {verb!r}")

    def work(self) -> list:
        """One turn: CHUNK steps of the next playing race, and the timers."""
        messages, now = [], time.monotonic()
        for race in [r for r in self.playing if now - self.heard[r] > self.PATIENCE]:
            log.warning("race %s paused: its page sent no word for %.0f s", race[:8], now - self.heard[race])
            self._stop_playing(race)
            messages += [*self.races[race].pause(), Done(race, -1, False)]
        for race in [r for r in self.races if r not in self.playing and now - self.heard[r] > self.FORGET]:
            self._release(race)
            messages.append(Released(race, f"it was idle for {_duration(self.FORGET)}"))
        if self.playing:
            self.turn = (self.turn + 1) % len(self.playing)
            race = self.playing[self.turn]
            trainer = self.races[race]
            messages += self._guarded(race, lambda: trainer.advance(self.CHUNK))
            if race in self.races and trainer.done:
                self._stop_playing(race)
                messages.append(Done(race, -1, False))
        return messages

    def _guarded(self, race: str, work) -> list:
        """Work that fails (a bug, memory) releases that race with the reason, never the worker."""
        try:
            return work()
        except Exception as error:  # noqa: BLE001 - reported to the page, logged here
            log.exception("race %s failed", race)
            self._release(race)
            return [Released(race, f"training failed ({type(error).__name__}: {error})")]

    def _stop_playing(self, race: str) -> None:
        if race in self.playing:
            self.playing.remove(race)

    def _release(self, race: str) -> None:
        self._stop_playing(race)
        trainer = self.races.pop(race, None)
        if trainer is not None:
            trainer.stop()
        self.heard.pop(race, None)


def serve(connection, worker: Worker | None = None) -> None:
    """Answer commands from `connection` and send what happens back, until it closes or sends None."""
    worker = worker or Worker()
    while True:
        messages = []
        try:
            wait = 0.0 if worker.busy else 1.0  # idle: block for commands, waking now and then for the timers
            while connection.poll(wait):
                command = connection.recv()
                if command is None:  # the backend lets this worker go
                    connection.close()
                    return
                messages += worker.handle(command)
                wait = 0.0
            messages += worker.work()
            if messages:
                connection.send(messages)
        except (EOFError, OSError):
            return


def _duration(seconds: float) -> str:
    """"15 minutes", or "20 seconds" under two minutes (MTL_RACE_IDLE_SECONDS may be short)."""
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} seconds"
