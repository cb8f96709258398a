"""The bundled studies in data/, read into tidy tables: what the claims (claims.py), the lessons and the pages
compute their numbers from. Each reader names the command that made its file (data/README.md lists them all).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..data.funnel import FunnelConfig

DATA = Path(__file__).resolve().parents[2] / "data"


@lru_cache(maxsize=1)
def lesson_sweep_rows() -> pd.DataFrame:
    """The bundled sweep of the `lesson` preset on seeds that played no part in choosing it (`python -m mtl_core sweep
    --preset lesson --correlations 1,0.5,0.2 --seeds 60 --first-seed 1000 --holdout 5000 --csv data/lesson_sweep.csv`)."""
    return pd.read_csv(DATA / "lesson_sweep.csv")


def lesson_sweep() -> pd.DataFrame:
    """Its test MSE (mean over tasks) per (correlation, seed), one column per architecture."""
    runs = lesson_sweep_rows()
    return runs[runs.metric == "mse"].groupby(["arch", "correlation", "seed"]).value.mean().unstack("arch")


@lru_cache(maxsize=1)
def small_sweep() -> pd.DataFrame:
    """The bundled sweep with small experts (`python -m mtl_core sweep --preset lesson --experts 2 --expert-hidden 2
    --correlations 1,0.5,0 --seeds 30 --holdout 5000 --csv data/small_sweep.csv`): test MSE (mean over tasks),
    [(correlation, seed), arch]."""
    runs = pd.read_csv(DATA / "small_sweep.csv")
    return runs[runs.metric == "mse"].groupby(["arch", "correlation", "seed"]).value.mean().unstack("arch")


@lru_cache(maxsize=1)
def negative_transfer() -> pd.DataFrame:
    """The bundled negative-transfer study (`python -m mtl_core experiment negative-transfer --csv
    data/negative_transfer.csv`: a Shared-Bottom of 4 units on two tasks, seeds 1000-1059, at p = 0 and p = 1): per
    (correlation, task, seed), how much the task's test loss rose because the other task trained beside it."""
    runs = pd.read_csv(DATA / "negative_transfer.csv")
    loss = runs.pivot_table(index=["correlation", "task", "seed"], columns="setting", values="loss")
    other = {"task 0": "without task 1", "task 1": "without task 0"}
    return pd.Series([row["all tasks"] - row[other[task]] for (_, task, _), row in loss.iterrows()], index=loss.index, name="rise")


@lru_cache(maxsize=1)
def home_ablation() -> pd.DataFrame:
    """The bundled HoME ablation (`python -m mtl_core experiment home-ablation --csv data/home_ablation.csv`)."""
    return pd.read_csv(DATA / "home_ablation.csv")


def census_auc(group: int) -> pd.DataFrame:
    """The bundled census study's main-task test AUC: [seed, arch]."""
    return pd.read_csv(DATA / f"census_group{group}.csv").pivot_table(index="seed", columns="arch", values="main_auc")


def gate_tricks(metric: str = "test_mse") -> pd.DataFrame:
    """The bundled gate-trick study (`python -m mtl_core experiment gate-tricks --seeds 5 --csv data/gate_tricks.csv`):
    one of its measures, [seed, arm]."""
    runs = pd.read_csv(DATA / "gate_tricks.csv")
    return runs[runs.metric == metric].pivot_table(index="seed", columns="arm", values="value")


def gate_trick_summary() -> pd.DataFrame:
    """The bundled gate-trick study's means over seeds, one row per arm (data/gate_tricks.summary.csv)."""
    return pd.read_csv(DATA / "gate_tricks.summary.csv").set_index("arm")


RELATED, UNRELATED = FunnelConfig.correlation, 0.0   # the funnel's default; the control: click and conversion at right angles


@lru_cache(maxsize=2)
def funnel_sparsity(correlation: float = RELATED) -> pd.DataFrame:
    """The bundled sparsity study (docs/EXPERIMENTS.md §9.1 gives its commands) at one CTR/CVR correlation: CVR AUC
    on all test impressions, [(click_rate, samples, seed), model]."""
    runs = pd.read_csv(DATA / "funnel_sparsity.csv")
    auc = runs[(runs.metric == "cvr_auc") & (runs.space == "all") & (runs.correlation == correlation)]
    return auc.pivot_table(index=["click_rate", "samples", "seed"], columns="model", values="value")


SPARSE_CELL, DENSE_CELL = (0.01, 20_000), (0.05, 100_000)   # the study's fewest and most clicks


def sparse_cell(correlation: float = RELATED) -> pd.DataFrame:
    """The study's fewest-clicks cell (1% of 20,000 impressions) at one correlation: CVR AUC, [seed, model]."""
    return funnel_sparsity(correlation).xs(SPARSE_CELL, level=["click_rate", "samples"])


@lru_cache(maxsize=2)
def funnel_bias(space: str = "all") -> pd.DataFrame:
    """The bundled bias study (`python -m mtl_core experiment funnel --archs cvr_on_clicks,esmm,esmm_mmoe,escm2_ips,
    escm2_dr --biases 0,1,2 --seeds 5 --csv data/funnel.csv`): CVR calibration (mean pCVR over the true mean) on all
    test impressions or on the clicked ones, [(bias, seed), model]."""
    runs = pd.read_csv(DATA / "funnel.csv")
    calibration = runs[(runs.metric == "cvr_calibration") & (runs.space == space)]
    return calibration.pivot_table(index=["bias", "seed"], columns="model", values="value")


def sparse_calibration() -> pd.Series:
    """CVR on clicks' calibration on all impressions in the sparsity study's fewest-clicks cell, per seed."""
    runs = pd.read_csv(DATA / "funnel_sparsity.csv").query("model == 'cvr_on_clicks' and metric == 'cvr_calibration' and space == 'all' "
                                                            "and correlation == @RELATED")
    return runs[(runs.click_rate == SPARSE_CELL[0]) & (runs.samples == SPARSE_CELL[1])].set_index("seed").value


@lru_cache(maxsize=1)
def home_lessons() -> pd.DataFrame:
    """The collapse and sparse lessons' settings beside their controls on fresh seeds, one column per measure, rows
    (arm, seed) (`python -m mtl_core experiment home-lessons --seeds 30 --jobs 2 --csv data/home_lessons.csv`)."""
    return pd.read_csv(DATA / "home_lessons.csv").pivot_table(index=["arm", "seed"], columns="metric", values="value")


@lru_cache(maxsize=1)
def weightings_rows() -> pd.DataFrame:
    """The bundled weightings study (`python -m mtl_core experiment weightings --seeds 10 --jobs 2 --csv
    data/weightings.csv`): every arm's validation and test loss (and AUC) per (setting, arch, weighting, seed, task)."""
    return pd.read_csv(DATA / "weightings.csv")


def weightings_summary() -> pd.DataFrame:
    """Its summary, one row per (setting, arch, weighting) (data/weightings.summary.csv; studies/weightings.py says
    what each column is)."""
    return pd.read_csv(DATA / "weightings.summary.csv")
