"""Does any adaptive loss weighting beat a fixed weight tuned by hand? The weightings study.

Every loss weighting of train/weighting.py (the adaptive ones and TorchJD's aggregators) on MMoE and Shared-Bottom,
in the settings of `SETTINGS` (built as the Playground builds them, so a lesson can race the same thing), over the
same seeds, against three baselines trained on the same data and seeds:

  - one single-task model per task (a bottom per task, sized to MMoE's parameter count): task k's *MTL gain* is
    (single-task loss - the model's loss) / single-task loss on the test split (positive: sharing helped task k);
    `gain` is its mean over tasks (the negative of Maninis et al.'s Δm, CVPR 2019);
  - equal weighting;
  - a fixed weight tuned on the validation split: task 0's weight from `FIXED_GRID` (every other task's 1, the
    Playground's knob `tw`), the value whose mean validation gain over the seeds is best, per setting and model.
    The grid holds 1, so the tuned weight is equal weighting when no other value does better on validation.

The loss is MSE for a regression task and log loss for a binary one. Each (setting, model, weighting) trains its
seeds as one stacked model (train/runs.py); the grids go through joblib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pandas as pd
from joblib import Parallel, delayed

from ..settings import builders, knobs
from ..settings.knob import Settings
from ..train.runs import train_grid
from ..train.weighting import WEIGHTINGS
from .evidence import Effect

if TYPE_CHECKING:
    from .experiments import Study   # experiments.py lists this study among the others: imported when it runs

# name -> the knobs each setting sets over its preset's defaults (every weighting trains with them; a lesson may race them)
SETTINGS: dict[str, Settings] = {
    # the lesson preset's models (16 experts of 8 units: docs/EXPERIMENTS.md, section 5) on weakly related tasks
    "synthetic, p = 0.2": {"preset": "lesson", "corr": 0.2, "samples": 10_000, "holdout": 5_000},
    # the same models, a regression task beside a binary one with 5% positives: losses of different kinds and sizes
    "sparse task": {"preset": "lesson", "corr": 0.5, "sparse": (1,), "rate": 0.05, "samples": 10_000, "holdout": 5_000},
    # the MMoE paper's census income, group 1 (income over $50K; never married), with the Playground's models
    "census income": {"source": "census-income:1", "samples": 20_000},
}
ARCHS = ("mmoe", "shared_bottom")
FIXED_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)   # task 0's weight, the others' 1 (options of the Playground's `tw`)
ADAPTIVE = tuple(w for w in WEIGHTINGS if w not in ("equal", "fixed"))
SINGLE = "single_task"


def arm_name(weighting: str, w0: float | None = None) -> str:
    return weighting if w0 is None else f"fixed {w0:g}"


def study_arm(setting: str, arch: str, weighting: str, seeds: Sequence[int], w0: float | None = None) -> pd.DataFrame:
    """One arm: `arch` with `weighting` (task 0's weight `w0` when fixed) on `setting` over `seeds`, one stacked
    model; rows (setting, arch, weighting, seed, split, task, metric, value), metric `loss` (MSE or log loss) or
    `auc` (binary tasks), on the validation and test splits."""
    changes = SETTINGS[setting]
    s = {**knobs.defaults(changes.get("preset", "paper")), **changes, "weighting": weighting, "tw": 1.0 if w0 is None else w0}
    data = [builders.data_config({**s, "seed": seed}) for seed in seeds]
    result = train_grid(data, builders.race_model_config(arch, s, data[0]), builders.train_config(s, eval_every=0, log_every=10_000))
    binary = dict(zip(data[0].task_names, data[0].is_binary))
    m = result.metrics
    loss = m[m.metric == m.task.map(lambda t: "logloss" if binary[t] else "mse")].assign(metric="loss")
    rows = pd.concat([loss, m[m.metric == "auc"]], ignore_index=True)
    rows = rows[rows.split.isin(["validation", "test"])]
    rows = rows.assign(seed=[seeds[i] for i in rows.member], setting=setting, arch=arch, weighting=arm_name(weighting, w0))
    return rows[["setting", "arch", "weighting", "seed", "split", "task", "metric", "value"]]


def arms(settings: Sequence[str], archs: Sequence[str], compared: Sequence[str]) -> list[tuple[str, str, str, float | None]]:
    """Every (setting, arch, weighting, w0) the study trains: the single-task baseline, equal, the fixed grid and
    the `compared` weightings, for each model."""
    plan = [(setting, SINGLE, "equal", None) for setting in settings]
    for setting in settings:
        for arch in archs:
            plan += [(setting, arch, "equal", None)] + [(setting, arch, "fixed", w0) for w0 in FIXED_GRID if w0 != 1.0]
            plan += [(setting, arch, w, None) for w in compared if w not in ("equal", "fixed")]
    return plan


def weightings(seeds: int = 10, settings: Sequence[str] | None = None, archs: Sequence[str] = ARCHS,
               compared: Sequence[str] = ADAPTIVE, first_seed: int = 0, n_jobs: int = 1) -> Study:
    """The study on `settings` (default: all of SETTINGS): `runs` as `study_arm`'s rows of every arm, `summary` as
    `summary(runs)`."""
    from .experiments import Study

    seed_list, settings = list(range(first_seed, first_seed + seeds)), tuple(SETTINGS) if settings is None else settings
    frames = Parallel(n_jobs=n_jobs)(delayed(study_arm)(setting, arch, w, seed_list, w0)
                                     for setting, arch, w, w0 in arms(settings, archs, compared))
    runs = pd.concat(frames, ignore_index=True)
    return Study(runs, summary(runs))


def gains(runs: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Each task's MTL gain over the single-task model on the same setting and seed: rows (setting, arch, weighting,
    seed, task, gain)."""
    loss = runs[(runs.metric == "loss") & (runs.split == split)]
    single = loss[loss.arch == SINGLE].set_index(["setting", "seed", "task"]).value
    mtl = loss[loss.arch != SINGLE].copy()
    alone = single.reindex(pd.MultiIndex.from_frame(mtl[["setting", "seed", "task"]])).to_numpy()
    return mtl.assign(gain=(alone - mtl.value.to_numpy()) / alone)[["setting", "arch", "weighting", "seed", "task", "gain"]]


def tuned(runs: pd.DataFrame) -> pd.Series:
    """The fixed weight the validation split chooses, per (setting, arch): the arm name ("equal" or "fixed 3")."""
    validation = gains(runs, "validation")
    fixed = validation[validation.weighting.str.startswith("fixed") | (validation.weighting == "equal")]
    mean = fixed.groupby(["setting", "arch", "weighting"]).gain.mean()
    return mean.groupby(level=["setting", "arch"]).idxmax().map(lambda index: index[2])


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (setting, arch, weighting): the test gain (mean over tasks, mean over seeds) and each task's (`gain task k`,
    in the order of `tasks`); on how many
    seeds the weighting's gain beat the tuned fixed weight's and equal weighting's; a one-sided Wilcoxon p that it
    beats the tuned fixed weight (evidence.py); the tuned arm and its task 0 weight. The fixed grid's other values
    are left out (the tuned one is the row `tuned fixed`)."""
    test = gains(runs)
    per_seed = test.groupby(["setting", "arch", "weighting", "seed"]).gain.mean()
    choice = tuned(runs)
    rows = []
    for (setting, arch, weighting), gain in per_seed.groupby(level=["setting", "arch", "weighting"], sort=False):
        chosen = choice[(setting, arch)]
        if weighting.startswith("fixed") and weighting != chosen:
            continue
        gain = gain.droplevel(["setting", "arch", "weighting"])
        fixed = per_seed[(setting, arch, chosen)]
        equal = per_seed[(setting, arch, "equal")]
        order = list(dict.fromkeys(test[test.setting == setting].task))   # the setting's task order, whatever the arm
        tasks = test[(test.setting == setting) & (test.arch == arch) & (test.weighting == weighting)].groupby("task").gain.mean().reindex(order)
        rows.append(dict(setting=setting, arch=arch, weighting="tuned fixed" if weighting == chosen else weighting,
                         gain=gain.mean(), **{f"gain task {k}": value for k, value in enumerate(tasks)},
                         tasks=", ".join(tasks.index),
                         beat_tuned=int((gain > fixed).sum()), beat_equal=int((gain > equal).sum()), seeds=len(gain),
                         p_over_tuned=Effect.of(gain - fixed).p if weighting != chosen else float("nan"),
                         tuned=chosen))
        if weighting == chosen and chosen == "equal":
            rows.append({**rows[-1], "weighting": "equal", "p_over_tuned": float("nan")})
    return pd.DataFrame(rows)
