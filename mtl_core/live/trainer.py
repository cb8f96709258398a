"""The worker's side of a live race: the models of one settings dict, trained in lockstep, and the
messages that tell the page what happened.

A `RaceTrainer` is built from knob settings (mtl_core.settings.knobs), the same code path as the lesson check.
It never talks to a page: `advance(steps)` trains every unfinished model to the same step and returns
one `Update` per model with what is new (loss rows, the latest test metrics, a snapshot's diagnostics
tables). Updates are plain data (pickled between processes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd
from safetensors.torch import save

from ..settings import builders

from ..data.funnel import quality_rows
from ..data.table import hold, Table
from ..diagnostics.recorder import DiagnosticsRecorder
from ..models import build_model
from ..models.registry import label
from ..settings.knob import Settings
from ..train.training import Diverged, Evaluation, Finished, Progress, Snapshot, TrainingRun

LOG_EVERY, EVAL_EVERY, SNAPSHOT_EVERY, SNAPSHOT_SAMPLES = 10, 50, 50, 512


@dataclass
class Update:
    """What is new about one model of a race. `history` rows are (arch, task, split, step, loss);
    `metrics` the latest test metrics when there was an evaluation; `snapshots` one dict of
    diagnostics tables (name -> frame) per snapshot taken."""

    race: str
    arch: str
    step: int
    status: str
    message: str = ""
    history: list[dict] = field(default_factory=list)
    metrics: pd.DataFrame | None = None
    snapshots: list[dict[str, pd.DataFrame]] = field(default_factory=list)
    seconds: float = 0.0
    positive_rate: list = field(default_factory=list)   # per task (NaN for regression)
    lr: float = 0.0                                      # the learning rate the model trains with now
    quality: list[dict] = field(default_factory=list)    # a funnel's CVR quality (step, space, metric, value) per evaluation
    weights: bytes | None = None                         # the trained model's state dict as safetensors, once it finished
    #                                                      (bytes: torch would share tensors between processes by descriptor)


@dataclass
class Done:
    """The worker has handled the race's command number `seq`; `playing` is the race's state after it."""

    race: str
    seq: int
    playing: bool
    error: str = ""


@dataclass
class JobDone:
    """The result of a job (a study run for a page, see worker.JOBS), or why it failed."""

    race: str
    seq: int
    result: Any = None
    error: str = ""


@dataclass
class Released:
    """The worker let the race go (idle too long, or asked to close); its models are gone."""

    race: str
    reason: str


class LiveModel:
    """One architecture of the race: its event stream and what the page has not yet been told."""

    def __init__(self, race: str, arch: str, run: TrainingRun):
        self.race, self.arch, self.run = race, arch, run
        self.events: Iterator = run.events()
        self.recorder = DiagnosticsRecorder(run)
        self.status, self.message, self.seconds = "ready", "", 0.0
        self.names = run.datasets[0].config.task_names
        self.funnel = run.datasets[0].config.funnel

    @property
    def done(self) -> bool:
        return self.status in ("finished", "diverged", "stopped")

    def advance(self, target: int) -> Update:
        """Consume events to the Progress of step `target` (a step's other events come before its
        Progress) or to the end of the run."""
        update = Update(self.race, self.arch, self.run.step, self.status)
        started = time.perf_counter()
        if not self.done:
            self.status = "training"
        while not self.done:
            try:
                event = next(self.events)
            except StopIteration:
                self.status = "finished"
                break
            if isinstance(event, Progress):
                update.history += [dict(arch=self.arch, task=t, split="train", step=event.step, loss=float(v))
                                   for t, v in zip(self.names, event.train_loss[0])]
                if target <= event.step < self.run.total_steps:
                    break
            elif isinstance(event, (Evaluation, Finished)):
                test = event.metrics[event.metrics.split == "test"]
                update.metrics = test
                for task, binary in zip(self.names, self.run.is_binary):
                    rows = test[(test.task == task) & (test.metric == ("logloss" if binary else "mse"))]
                    update.history += [dict(arch=self.arch, task=task, split="test", step=event.step, loss=float(v)) for v in rows.value]
                if self.funnel:   # every evaluation, the final one (a Finished event) included
                    update.quality += [dict(step=event.step, **row) for row in quality_rows(event.metrics)]
                if isinstance(event, Finished):
                    self.status = "finished"
                    update.weights = save({name: value.detach().cpu().contiguous()
                                           for name, value in self.run.model.state_dict().items()})
            elif isinstance(event, Snapshot):
                self.recorder.observe(event)
                update.snapshots.append({name: frames[-1] for name, frames in self.recorder.tables.items()
                                         if frames[-1]["step"].eq(event.step).all()})
            elif isinstance(event, Diverged):
                self.status, self.message = "diverged", event.message
        self.seconds += time.perf_counter() - started
        update.step, update.status, update.message, update.seconds = self.run.step, self.status, self.message, self.seconds
        update.positive_rate, update.lr = self.run.datasets[0].positive_rate.tolist(), self.run.lr
        return update

    def stop(self) -> None:
        self.events.close()
        if not self.done:
            self.status = "stopped"


class RaceTrainer:
    """Several architectures on the same data and seed (the knob `settings`), trained in lockstep."""

    def __init__(self, race: str, settings: Settings, file: Table | None = None):
        """`file`: the own file the settings train on, checked by the page's process (data/table.py)."""
        self.race = race
        if file is not None:
            hold(file)
        data = builders.data_config(settings)
        dataset = data.dataset()
        self.models: dict[str, LiveModel] = {}   # by entry: an architecture, or an architecture with its weighting
        for key, (arch, entry) in builders.entries(settings).items():
            train = builders.train_config(entry, log_every=LOG_EVERY, eval_every=EVAL_EVERY, snapshot_every=SNAPSHOT_EVERY,
                                          snapshot_samples=SNAPSHOT_SAMPLES)
            model = build_model(builders.race_model_config(arch, entry, data), data.task_names, data.task_groups,
                                data.features, seed=data.seed)
            self.models[key] = LiveModel(race, key, TrainingRun(model, dataset, train, member_seeds=[data.seed]))

    @property
    def done(self) -> bool:
        return all(m.done for m in self.models.values())

    @property
    def step(self) -> int:
        return max(m.run.step for m in self.models.values())

    def advance(self, steps: int, playing: bool = True) -> list[Update]:
        """Move every unfinished model to `steps` past the furthest one (the last models are paused after
        it unless the race is `playing`)."""
        target = self.step + steps
        updates = [m.advance(target) for m in self.models.values()]
        if not playing:
            paused = {u.arch: u for u in self.pause()}
            for u in updates:
                u.status = paused[u.arch].status
        return updates

    def set_lr(self, lr: float) -> None:
        for m in self.models.values():
            m.run.lr = lr

    def pause(self) -> list[Update]:
        """Mark the unfinished models paused (they keep their state) and say so."""
        for m in self.models.values():
            if not m.done and m.run.step > 0:
                m.status = "paused"
        return [Update(self.race, m.arch, m.run.step, m.status, m.message, seconds=m.seconds, lr=m.run.lr) for m in self.models.values()]

    def stop(self) -> None:
        for m in self.models.values():
            m.stop()


def run_names(settings: Settings, number: int) -> dict[str, str]:
    """The names a race's runs are kept under, by entry, e.g. "MMoE · seed 0 · race 3", "MMoE · upgrad · seed 0 · race 4"."""
    return {key: f"{label(key)} · seed {settings['seed']} · race {number}" for key in builders.entries(settings)}
