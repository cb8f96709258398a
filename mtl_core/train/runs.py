"""Train models end to end: data -> model -> training -> tidy results.

One code path for a single run and a grid: `train_grid` trains every dataset of a list with one
architecture as members of one stacked model; a single run is a grid of one. Member m is seeded
with its dataset's seed (data, weights and batch order), so it gives the same result as a solo run
with that seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import pandas as pd
from joblib import Parallel, delayed

from ..config import check
from ..data.synthetic import DataConfig, Dataset
from ..diagnostics.recorder import DiagnosticsRecorder
from ..models import REGISTRY, build_model, match_bottom_to, ModelConfig, MultiTaskModel, stack_members
from .training import Diverged, Event, Finished, TrainConfig, TrainingRun


@dataclass
class GridResult:
    """Test (and validation) metrics of every member, tidy: member, split, task, metric, value."""

    model_config: ModelConfig
    datasets: list[Dataset]
    params: int
    device: str
    seconds: float
    metrics: pd.DataFrame
    diverged: list[Diverged]
    diagnostics: DiagnosticsRecorder | None = None
    model: MultiTaskModel | None = None   # the trained (stacked) model, e.g. to export (models/export.py)


def sized_model_config(model: ModelConfig, data: DataConfig, match_params: str | None = None) -> ModelConfig:
    """`model`, with the bottom(s) of an architecture the registry sizes (Shared-Bottom, single-task) widened to
    `match_params`'s parameter count."""
    if match_params is None:
        return model
    check(REGISTRY[model.arch].sized, f"--match-params sizes the bottoms of {' and '.join(sorted(a.label for a in REGISTRY.values() if a.sized))} "
                                      f"models; it does not apply to '{model.arch}'.")
    target = ModelConfig.for_arch(match_params, **{k: getattr(model, k) for k in ("experts", "expert_hidden", "tower_hidden")})
    return match_bottom_to(model, target, data.task_names, data.task_groups, data.features)


def train_grid(data_configs: Sequence[DataConfig], model_config: ModelConfig, train_config: TrainConfig,
               on_event: Callable[[Event], None] | None = None, diagnostics: bool = False) -> GridResult:
    """Train one `model_config` model per data config, all at once. `on_event` sees every event.

    With `diagnostics`, the result carries a `DiagnosticsRecorder` fed by the run's snapshots
    (every `train_config.snapshot_every` steps, or only at the end when that is None).
    """
    check(len(data_configs) >= 1, "A grid needs at least one dataset.")
    layout = {(d.tasks, d.task_types, d.task_groups, d.features, d.samples, d.holdout) for d in data_configs}
    check(len(layout) == 1, "Members of one grid must share tasks, task types, groups, features and sample counts.")
    return train_datasets([d.dataset() for d in data_configs], [d.seed for d in data_configs], model_config, train_config,
                          on_event, diagnostics)


def train_datasets(datasets: Sequence[Dataset], seeds: Sequence[int], model_config: ModelConfig, train_config: TrainConfig,
                   on_event: Callable[[Event], None] | None = None, diagnostics: bool = False) -> GridResult:
    """`train_grid` on datasets already made (of one task layout), member m seeded with `seeds[m]`."""
    first = datasets[0].config
    model = stack_members([build_model(model_config, first.task_names, first.task_groups, datasets[0].train.x.shape[1], seed=s)
                           for s in seeds])
    if diagnostics and train_config.snapshot_every is None:
        train_config = replace(train_config, snapshot_every=0)
    run = TrainingRun(model, list(datasets), train_config, member_seeds=list(seeds))
    recorder = DiagnosticsRecorder(run) if diagnostics else None
    diverged, metrics, started = [], None, time.perf_counter()
    for event in run.events():
        if recorder is not None:
            recorder.observe(event)
        if on_event is not None:
            on_event(event)
        if isinstance(event, Diverged):
            diverged.append(event)
        if isinstance(event, Finished):
            metrics = event.metrics
    if metrics is None:  # every member diverged: metrics of what is left, for the record
        metrics = run.evaluate()
    return GridResult(model_config, list(datasets), model.num_parameters(), str(run.device),
                      time.perf_counter() - started, metrics, diverged, recorder, model)


def sweep(archs: Sequence[str], correlations: Sequence[float], seeds: Sequence[int], base: DataConfig,
          train_config: TrainConfig, model_overrides: dict | None = None, match_params: str | None = "mmoe",
          on_result: Callable[[str, GridResult], None] | None = None, n_jobs: int = 1) -> pd.DataFrame:
    """The MMoE paper's study: every arch on every (correlation, seed), fresh data and init per seed.

    One stacked grid per architecture; the grids run through joblib (`n_jobs` workers; choose another
    backend such as Ray or Dask with `joblib.parallel_config(backend=...)`). The bottoms of Shared-Bottom
    and single-task models are sized to `match_params`'s parameter count (the paper's setting). Returns one row per (arch, correlation, seed, split,
    task, metric).
    """
    members = [(p, s) for p in correlations for s in seeds]
    configs = [replace(base, correlation=p, seed=s) for p, s in members]
    model_configs = []
    for arch in archs:
        config = ModelConfig.for_arch(arch, **(model_overrides or {}))
        model_configs.append(sized_model_config(config, base, match_params) if REGISTRY[arch].sized and match_params else config)
    results = Parallel(n_jobs=n_jobs)(delayed(train_grid)(configs, config, train_config) for config in model_configs)
    frames = []
    for arch, result in zip(archs, results):
        if on_result is not None:
            on_result(arch, result)
        frames.append(label_members(result.metrics, arch, members).assign(params=result.params))
    return pd.concat(frames, ignore_index=True)


def label_members(metrics: pd.DataFrame, arch: str, members: Sequence[tuple[float, int]]) -> pd.DataFrame:
    """Replace the member index of a grid's metrics by its arch, correlation and seed."""
    frame = metrics.copy()
    frame.insert(0, "arch", arch)
    frame.insert(1, "correlation", [members[m][0] for m in frame["member"]])
    frame.insert(2, "seed", [members[m][1] for m in frame["member"]])
    return frame.drop(columns="member")
