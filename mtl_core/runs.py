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

from .config import check
from .data import DataConfig, Dataset, make_dataset
from .diagnostics import DiagnosticsRecorder
from .models import ModelConfig, build_model, count_parameters, match_bottom_to, stack_members
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


def sized_model_config(model: ModelConfig, data: DataConfig, match_params: str | None = None) -> ModelConfig:
    """`model`, with Shared-Bottom's bottom widened to `match_params`'s parameter count when asked."""
    if match_params is None:
        return model
    check(model.arch == "shared_bottom", f"--match-params sizes Shared-Bottom's bottom; it does not apply to '{model.arch}'.")
    target = ModelConfig.for_arch(match_params, **{k: getattr(model, k) for k in ("experts", "expert_hidden", "tower_hidden")})
    return match_bottom_to(model, target, data.task_names, data.task_groups, data.features)


def parameter_count(model: ModelConfig, data: DataConfig) -> int:
    return count_parameters(model, data.task_names, data.task_groups, data.features)


def train_grid(data_configs: Sequence[DataConfig], model_config: ModelConfig, train_config: TrainConfig,
               on_event: Callable[[Event], None] | None = None, diagnostics: bool = False) -> GridResult:
    """Train one `model_config` model per data config, all at once. `on_event` sees every event.

    With `diagnostics`, the result carries a `DiagnosticsRecorder` fed by the run's snapshots
    (every `train_config.snapshot_every` steps, or only at the end when that is None).
    """
    check(len(data_configs) >= 1, "A grid needs at least one dataset.")
    layout = {(d.tasks, d.task_types, d.task_groups, d.features, d.samples, d.holdout) for d in data_configs}
    check(len(layout) == 1, "Members of one grid must share tasks, task types, groups, features and sample counts.")
    datasets = [make_dataset(d) for d in data_configs]
    first = data_configs[0]
    model = stack_members([build_model(model_config, first.task_names, first.task_groups, first.features, seed=d.seed)
                           for d in data_configs])
    if diagnostics and train_config.snapshot_every is None:
        train_config = replace(train_config, snapshot_every=10**9)  # the run snapshots its last step anyway
    run = TrainingRun(model, datasets, train_config, member_seeds=[d.seed for d in data_configs])
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
    return GridResult(model_config, datasets, model.num_parameters(), str(run.device),
                      time.perf_counter() - started, metrics, diverged, recorder)


def sweep(archs: Sequence[str], correlations: Sequence[float], seeds: Sequence[int], base: DataConfig,
          train_config: TrainConfig, model_overrides: dict | None = None, match_params: str | None = "mmoe",
          on_result: Callable[[str, GridResult], None] | None = None) -> pd.DataFrame:
    """The MMoE paper's study: every arch on every (correlation, seed), fresh data and init per seed.

    One grid per architecture. Shared-Bottom's bottom is sized to `match_params` (the paper's
    setting). Returns one row per (arch, correlation, seed, split, task, metric).
    """
    frames = []
    for arch in archs:
        config = ModelConfig.for_arch(arch, **(model_overrides or {}))
        if arch == "shared_bottom" and match_params:
            config = sized_model_config(config, base, match_params)
        members = [(p, s) for p in correlations for s in seeds]
        result = train_grid([replace(base, correlation=p, seed=s) for p, s in members], config, train_config)
        if on_result is not None:
            on_result(arch, result)
        frame = result.metrics.copy()
        frame.insert(0, "arch", arch)
        frame.insert(1, "correlation", [members[m][0] for m in frame["member"]])
        frame.insert(2, "seed", [members[m][1] for m in frame["member"]])
        frame["params"] = result.params
        frames.append(frame.drop(columns="member"))
    return pd.concat(frames, ignore_index=True)
