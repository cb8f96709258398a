"""What the pages share: knobs bound to the URL, link checking, and the per-student run store.

Every knob is a widget bound to a query parameter (`bind="query-params"`), so the URL is the whole
setup and a teacher can share it. Streamlit drops a bad value silently; `check_link` first tells
the student what was wrong and what is allowed. Runs live in `st.session_state` (per student),
never in a shared cache.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pandas as pd
import streamlit as st
import torch

from mtl_core.charts import ARCH_LABELS
from mtl_core.config import ConfigError
from mtl_core.data import DataConfig, make_dataset
from mtl_core.device import available_devices
from mtl_core.diagnostics import DiagnosticsRecorder
from mtl_core.models import ARCHITECTURES, ModelConfig, build_model
from mtl_core.runs import sized_model_config
from mtl_core.training import Diverged, Evaluation, Finished, Progress, Snapshot, TrainConfig, TrainingRun


def torch_threads() -> int:
    """Threads per student's training: MTL_TORCH_THREADS, else 1. The models are small, and the browser
    and the page's drawing need the other cores: on 2 cores a race ran at half the speed with 2 threads."""
    value = os.environ.get("MTL_TORCH_THREADS", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


torch.set_num_threads(torch_threads())

SAMPLES = (2_000, 5_000, 10_000, 20_000, 50_000)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
HIDDEN = (8, 16, 32, 64, 128)
BATCHES = (64, 128, 256, 512, 1024)
DEVICES = ("auto", "cpu", "cuda", "mps")
ARCH_BY_LABEL = {label: arch for arch, label in ARCH_LABELS.items()}  # links say ?arch=MMoE


@dataclass(frozen=True)
class Knob:
    """A URL-bound setting: how to read it from a link and what is allowed."""

    parse: Callable[[str], Any]
    ok: Callable[[Any], bool]
    allowed: str
    multi: bool = False


KNOBS = {
    "tasks": Knob(int, lambda v: 1 <= v <= 8, "a whole number of tasks from 1 to 8"),
    "corr": Knob(float, lambda v: -1 <= v <= 1, "a correlation between -1 and 1"),
    "groups": Knob(lambda s: s.lower() == "true", lambda v: True, "true or false"),
    "between": Knob(float, lambda v: -1 <= v <= 1, "a correlation between -1 and 1"),
    "dense": Knob(int, lambda v: 0 <= v < 8, "task numbers 0-7", multi=True),
    "sparse": Knob(int, lambda v: 0 <= v < 8, "task numbers 0-7", multi=True),
    "rate": Knob(float, lambda v: 0.01 <= v <= 0.5, "a positive rate between 0.01 and 0.5"),
    "samples": Knob(int, lambda v: v in SAMPLES, f"one of {', '.join(map(str, SAMPLES))}"),
    "noise": Knob(float, lambda v: 0 <= v <= 1, "a noise level between 0 and 1"),
    "seed": Knob(int, lambda v: 0 <= v <= 1_000_000, "a whole number from 0 to 1000000"),
    "arch": Knob(str, lambda v: v in ARCH_BY_LABEL, f"architectures among {', '.join(ARCH_BY_LABEL)}", multi=True),
    "experts": Knob(int, lambda v: 1 <= v <= 32, "1 to 32 experts"),
    "hidden": Knob(int, lambda v: v in HIDDEN, f"one of {', '.join(map(str, HIDDEN))} units"),
    "lr": Knob(float, lambda v: v in LEARNING_RATES, f"one of {', '.join(map(str, LEARNING_RATES))}"),
    "epochs": Knob(int, lambda v: 1 <= v <= 200, "1 to 200 epochs"),
    "batch": Knob(int, lambda v: v in BATCHES, f"one of {', '.join(map(str, BATCHES))}"),
    "device": Knob(str, lambda v: v in DEVICES, f"one of {', '.join(DEVICES)}"),
    **{switch: Knob(lambda s: s.lower() == "true", lambda v: True, "true or false") for switch in ("norm", "mask", "fgate", "sgate")},
}


def check_link(keys) -> None:
    """Warn about every bad value this page's knobs would receive from the URL; the widget then
    falls back to its default (Streamlit removes the bad value from the URL)."""
    for key in keys:
        knob, raws = KNOBS[key], st.query_params.get_all(key)
        for raw in raws if knob.multi else raws[-1:]:
            try:
                good = knob.ok(knob.parse(raw))
            except ValueError:
                good = False
            if not good:
                st.warning(f"The link sets **{key}={raw}**, which is not allowed here: {key} must be {knob.allowed}. "
                           "Using the default instead.", icon=":material/warning:")


def hidden(key: str) -> bool:
    """A lesson link can lock chosen knobs: `?hide=corr,arch`."""
    return key in ",".join(st.query_params.get_all("hide")).split(",")


def bound(widget, label, key, **kw):
    return widget(label, key=key, bind="query-params", disabled=hidden(key), **kw)


def data_knobs(where=st) -> DataConfig | None:
    """The generator's knobs; returns the DataConfig, or None (with a message) when invalid."""
    check_link(("tasks", "corr", "groups", "between", "dense", "sparse", "rate", "samples", "noise", "seed"))
    tasks = bound(where.number_input, "tasks", "tasks", min_value=1, max_value=8, value=2,
                   help="How many tasks the network learns at once.")
    corr = bound(where.slider, "task correlation p", "corr", min_value=-1.0, max_value=1.0, value=0.5, step=0.05,
                  help="Cosine between the tasks' weight vectors (within a group when groups are on).")
    groups = bound(where.toggle, "two task groups", "groups", value=False,
                    help="Split the tasks into two halves: p within a group, the value below between groups.")
    between = bound(where.slider, "correlation between groups", "between", min_value=-1.0, max_value=1.0, value=0.0,
                     step=0.05) if groups else 0.0
    options = list(range(tasks))
    dense = bound(where.multiselect, "binary tasks, dense (50% positive)", "dense", options=options, default=[])
    sparse = bound(where.multiselect, "binary tasks, sparse", "sparse", options=[k for k in options if k not in dense], default=[])
    rate = bound(where.slider, "sparse positive rate", "rate", min_value=0.01, max_value=0.5, value=0.05, step=0.01) if sparse else 0.05
    samples = bound(where.select_slider, "training samples", "samples", options=SAMPLES, value=10_000)
    noise = bound(where.slider, "label noise (std)", "noise", min_value=0.0, max_value=1.0, value=0.1, step=0.05)
    seed = bound(where.number_input, "seed", "seed", min_value=0, max_value=1_000_000, value=0)
    types = tuple("binary" if k in dense or k in sparse else "regression" for k in range(tasks))
    rates = tuple(rate if k in sparse else 0.5 for k in range(tasks))
    try:
        return DataConfig(tasks=tasks, correlation=corr, groups=tuple(k * 2 // tasks for k in range(tasks)) if groups and tasks > 1 else None,
                          between_correlation=between, task_types=types, positive_rates=rates, samples=samples,
                          holdout=2_000, noise=noise, seed=seed)
    except ConfigError as error:
        st.error(f"These settings do not make a valid task set: {error}")
        return None


def arch_knob(where=st) -> list[str]:
    """The architectures to race, shown and linked by their names (?arch=Shared-Bottom&arch=MMoE)."""
    check_link(("arch",))
    labels = bound(where.multiselect, "architectures", "arch", options=list(ARCH_BY_LABEL), default=["Shared-Bottom", "MMoE"])
    return [ARCH_BY_LABEL[label] for label in labels]


def model_knobs(where=st) -> dict:
    """Sizes and HoME switches shared by every architecture of a race (overrides for ModelConfig.for_arch)."""
    check_link(("experts", "hidden", "norm", "mask", "fgate", "sgate"))
    experts = bound(where.number_input, "shared experts", "experts", min_value=1, max_value=32, value=8)
    hidden_units = bound(where.select_slider, "units per expert", "hidden", options=HIDDEN, value=16)
    where.caption("HoME's components (used by HoME only)")
    switches = dict(expert_norm=bound(where.toggle, "expert normalisation + Swish", "norm", value=True),
                    hierarchy_mask=bound(where.toggle, "hierarchy mask", "mask", value=True),
                    feature_gate=bound(where.toggle, "feature gate", "fgate", value=True),
                    self_gate=bound(where.toggle, "self-gate", "sgate", value=True))
    return dict(experts=experts, expert_hidden=(hidden_units,), home=switches)


def model_config(arch: str, knobs: dict, data: DataConfig) -> ModelConfig:
    overrides = dict(experts=knobs["experts"], expert_hidden=knobs["expert_hidden"])
    if arch == "home":
        overrides.update(knobs["home"])
    config = ModelConfig.for_arch(arch, **overrides)
    return sized_model_config(config, data, "mmoe") if arch in ("shared_bottom", "single_task") else config


def device_knob(where=st) -> str:
    check_link(("device",))
    found = available_devices()
    device = bound(where.selectbox, "device", "device", options=DEVICES, index=0,
                    help=f"Available on this server: {', '.join(found)}. auto picks {found[0]}.")
    if device != "auto" and device not in found:
        where.warning(f"{device} is not available on this server (available: {', '.join(found)}); using {found[0]}.")
        return found[0]
    return device


def settings_file(where=st) -> None:
    """Download the current knobs as JSON, and load such a file again (it sets the knobs)."""
    current = {key: st.session_state[key] for key in KNOBS if key in st.session_state}
    where.download_button("Download settings (JSON)", json.dumps(current, indent=1), "mtl-playground-settings.json",
                          mime="application/json")
    upload = where.file_uploader("Load settings (JSON)", type=["json"], key="settings_upload")
    if upload is None or st.session_state.get("loaded_settings") == upload.file_id:
        return
    st.session_state.loaded_settings = upload.file_id
    try:
        values = parse_settings(upload.getvalue().decode("utf-8", errors="replace"))
    except ValueError as error:
        where.error(f"Could not load {upload.name}: {error} Your current settings were kept.")
        return
    st.session_state.pending_settings = values  # knobs are already drawn: set them at the top of the next run
    st.rerun()


def apply_pending_settings() -> None:
    """Set knobs from a loaded settings file; call before any knob is drawn."""
    for key, value in st.session_state.pop("pending_settings", {}).items():
        st.session_state[key] = value


def parse_settings(text: str) -> dict:
    """Knob values from a settings file; ValueError naming the first bad entry and what is allowed."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"The file is not valid JSON ({error.msg} at line {error.lineno}).") from None
    if not isinstance(values, dict):
        raise ValueError("A settings file is a JSON object of knob names and values.")
    for key, value in values.items():
        knob = KNOBS.get(key)
        if knob is None:
            raise ValueError(f"Unknown setting '{key}'. Known settings: {', '.join(KNOBS)}.")
        items = value if knob.multi and isinstance(value, list) else [value]
        if knob.multi != isinstance(value, list) or not all(_fits(knob, v) for v in items):
            raise ValueError(f"'{key}': {value!r} is not allowed; {key} must be {knob.allowed}.")
    return values


def _fits(knob: Knob, value) -> bool:
    try:
        return knob.ok(knob.parse(str(value)) if not isinstance(value, bool) else value)
    except ValueError:
        return False


# ---------------------------------------------------------------- live runs (the Playground race)

@dataclass
class LiveRun:
    """One architecture training in the race: its event stream, and everything charted from it."""

    arch: str
    run: TrainingRun
    events: Iterator
    recorder: DiagnosticsRecorder
    history: list[dict] = field(default_factory=list)
    metrics: pd.DataFrame | None = None
    status: str = "ready"
    message: str = ""
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return self.status in ("finished", "diverged", "stopped")

    def pull(self, max_step: int) -> None:
        """Consume events up to the Progress event of `max_step` or later (the trainer emits a step's
        other events before its Progress), or to the end of the run."""
        names, binary = self.run.datasets[0].config.task_names, self.run.is_binary
        started = time.perf_counter()
        while not self.done:
            self.status = "training"
            try:
                event = next(self.events)
            except StopIteration:
                self.status = "finished"
                break
            if isinstance(event, Progress):
                self.history += [dict(arch=self.arch, task=t, split="train", step=event.step, loss=float(v))
                                 for t, v in zip(names, event.train_loss[0])]
                if max_step <= event.step < self.run.total_steps:
                    break
            elif isinstance(event, (Evaluation, Finished)):
                self.metrics = event.metrics[event.metrics.split == "test"]
                for t, b in zip(names, binary):
                    rows = self.metrics[(self.metrics.task == t) & (self.metrics.metric == ("logloss" if b else "mse"))]
                    self.history += [dict(arch=self.arch, task=t, split="test", step=event.step, loss=float(v)) for v in rows.value]
                if isinstance(event, Finished):
                    self.status = "finished"
            elif isinstance(event, Snapshot):
                self.recorder.observe(event)
            elif isinstance(event, Diverged):
                self.status, self.message = "diverged", event.message
        self.seconds += time.perf_counter() - started


@dataclass
class Race:
    """Several architectures trained on the same data and seed, in lockstep, by a background thread.

    The page only draws: `play()` starts the thread, which trains every model by the same few steps
    at a time under `lock` while the page keeps calling `alive()`; when the page stops doing so
    (the student left it) the thread pauses itself within `PATIENCE` seconds. `signature` is what
    restarts the race when it changes.
    """

    signature: str
    runs: dict[str, LiveRun]
    data: DataConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    playing: bool = False
    heartbeat: float = 0.0
    thread: threading.Thread | None = None

    PATIENCE = 10.0  # seconds without a draw before the thread pauses itself (a slow first draw must not stop it)
    CHUNK = 10       # steps per model between chances for the page to draw

    @property
    def done(self) -> bool:
        return all(r.done for r in self.runs.values())

    def step(self, steps: int) -> None:
        """Move every unfinished run to the same step, `steps` past the furthest one. The lock is
        taken per model, so a draw waits for one model's few steps, not the whole race's."""
        target = max(r.run.step for r in self.runs.values()) + steps
        for r in self.runs.values():
            with self.lock:
                r.pull(target)

    def alive(self) -> None:
        self.heartbeat = time.monotonic()

    def play(self) -> None:
        self.alive()
        self.playing = True
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._train, daemon=True, name="mtl-race")
            self.thread.start()

    def pause(self) -> None:
        self.playing = False
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _train(self) -> None:
        while self.playing and not self.done and time.monotonic() - self.heartbeat < self.PATIENCE:
            self.step(self.CHUNK)
            time.sleep(0.002)  # let the page's drawing take the interpreter
        self.playing = False

    def stop(self) -> None:
        self.pause()
        with self.lock:
            for r in self.runs.values():
                r.events.close()
                if not r.done:
                    r.status = "stopped"


def start_race(archs, data: DataConfig, knobs: dict, train: TrainConfig, signature: str) -> Race:
    dataset = make_dataset(data)
    runs = {}
    for arch in archs:
        model = build_model(model_config(arch, knobs, data), data.task_names, data.task_groups, data.features, seed=data.seed)
        run = TrainingRun(model, dataset, train, member_seeds=[data.seed])
        runs[arch] = LiveRun(arch, run, run.events(), DiagnosticsRecorder(run))
    return Race(signature, runs, data)


# ---------------------------------------------------------------- finished runs, kept for the session

def saved_runs() -> list[dict]:
    """The student's kept runs (JSON-ready records), newest last."""
    return st.session_state.setdefault("saved_runs", [])


def record(live: LiveRun, settings: dict) -> dict:
    """A JSON-ready record of a live run: settings, curves, final test metrics and diagnostics."""
    tables = {name: live.recorder.frame(name).to_dict(orient="records") for name in live.recorder.tables}
    return dict(id=f"{live.arch} · seed {live.run.datasets[0].config.seed} · step {live.run.step}", arch=live.arch,
                status=live.status, step=live.run.step, settings=settings, history=live.history,
                metrics=[] if live.metrics is None else live.metrics.to_dict(orient="records"),
                positive_rate=live.run.datasets[0].positive_rate.tolist(), diagnostics=tables)


def keep(records: list[dict]) -> None:
    """Add records to the session store, replacing a record with the same id."""
    store = saved_runs()
    ids = {r["id"] for r in records}
    store[:] = [r for r in store if r["id"] not in ids] + records


REQUIRED = {"id": str, "arch": str, "history": list, "metrics": list, "diagnostics": dict}


def parse_upload(text: str) -> list[dict]:
    """Records from an uploaded JSON file; ValueError with a clear message when it is not one of ours."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"The file is not valid JSON ({error.msg} at line {error.lineno}).") from None
    records = data if isinstance(data, list) else [data]
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"Entry {i} is not a run record (expected an object with {', '.join(REQUIRED)}).")
        wrong = [k for k, t in REQUIRED.items() if not isinstance(r.get(k), t)]
        if wrong:
            raise ValueError(f"Entry {i} is missing or has the wrong type for: {', '.join(wrong)}. "
                             "Upload a file downloaded from this app.")
        if r["arch"] not in ARCHITECTURES:
            raise ValueError(f"Entry {i} has an unknown architecture '{r['arch']}'.")
    return records
