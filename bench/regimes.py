"""Where do the MMoE paper's effects show? A search over generator and training settings.

    python -m bench.regimes                 # the screening grid of docs/EXPERIMENTS.md (10 seeds each)
    python -m bench.regimes --only 7 --seeds 30 --first-seed 100   # one setting, more seeds

Each setting trains Shared-Bottom (sized to MMoE's parameters), OMoE and MMoE at every correlation on
the same seeds (stacked grids, runs.sweep) and prints the four effects a lesson regime needs:
  1 both mixtures beat Shared-Bottom at every p (mean and median)        moe_beats_sb
  2 OMoE's median over MMoE's at the lowest p (want >= 1.25), and how    ratio_low, omoe_rise, mmoe_rise
    much each model's median rises from p = 1 to the lowest p
  3 Shared-Bottom has the most poor runs (> 2x the best loss on that data) poor_sb, poor_omoe, poor_mmoe
  4 loss decreases with p for every model (medians)                      monotone
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from mtl_core.data.synthetic import DataConfig
from mtl_core.studies.experiments import final_loss
from mtl_core.train.runs import sweep
from mtl_core.train.training import TrainConfig

ARCHS = ("shared_bottom", "omoe", "mmoe")
CORRELATIONS = (1.0, 0.5, 0.0)
# (name, data changes, model changes, train changes): the paper's setting first, then one change at a time
SETTINGS = [
    ("paper: c=1 m=10, 50k, 8x16 experts, towers 8", {"samples": 50_000}, {}, {"epochs": 15}),
    ("paper, 10k samples", {"samples": 10_000}, {}, {"epochs": 30}),
    ("c=3", {"samples": 20_000, "scale": 3.0}, {}, {"epochs": 20}),
    ("c=3, m=30", {"samples": 20_000, "scale": 3.0, "sinusoids": 30}, {}, {"epochs": 20}),
    ("c=3, 4x8 experts", {"samples": 20_000, "scale": 3.0}, {"experts": 4, "expert_hidden": (8,)}, {"epochs": 20}),
    ("c=3, 8x8 experts, towers 4", {"samples": 20_000, "scale": 3.0}, {"expert_hidden": (8,), "tower_hidden": (4,)}, {"epochs": 20}),
    ("c=2, m=20, 4x8 experts", {"samples": 20_000, "scale": 2.0, "sinusoids": 20}, {"experts": 4, "expert_hidden": (8,)}, {"epochs": 20}),
    ("c=3, 4x8 experts, towers 4", {"samples": 20_000, "scale": 3.0}, {"experts": 4, "expert_hidden": (8,), "tower_hidden": (4,)},
     {"epochs": 20}),
    # second round: less data and more tasks (the first round's best lead was 10k samples)
    ("paper, 5k samples", {"samples": 5_000}, {}, {"epochs": 60}),
    ("paper, 20k samples", {"samples": 20_000}, {}, {"epochs": 20}),
    ("paper, 10k samples, towers 4", {"samples": 10_000}, {"tower_hidden": (4,)}, {"epochs": 30}),
    ("paper, 10k samples, 8x8 experts", {"samples": 10_000}, {"expert_hidden": (8,)}, {"epochs": 30}),
    ("paper, 10k samples, 3 tasks", {"samples": 10_000, "tasks": 3}, {}, {"epochs": 30}),
    ("paper, 10k samples, 4 tasks", {"samples": 10_000, "tasks": 4}, {}, {"epochs": 30}),
    # third round, around the two leads (20k samples; 8x8 experts)
    ("20k samples, 8x8 experts", {"samples": 20_000}, {"expert_hidden": (8,)}, {"epochs": 20}),
    ("20k samples, 8x8 experts, towers 4", {"samples": 20_000}, {"expert_hidden": (8,), "tower_hidden": (4,)}, {"epochs": 20}),
    ("20k samples, 16x8 experts", {"samples": 20_000}, {"experts": 16, "expert_hidden": (8,)}, {"epochs": 20}),
    # fourth round: is the OMoE/MMoE gap of setting 16 robust across blocks of seeds? narrower or more experts
    ("20k samples, 16x4 experts", {"samples": 20_000}, {"experts": 16, "expert_hidden": (4,)}, {"epochs": 20}),
    ("20k samples, 32x8 experts", {"samples": 20_000}, {"experts": 32, "expert_hidden": (8,)}, {"epochs": 20}),
]


def effects(runs: pd.DataFrame) -> dict:
    """The four effects from one row per (arch, correlation, seed) with a `loss`."""
    low = min(runs.correlation)
    median = runs.groupby(["arch", "correlation"])["loss"].median().unstack("correlation")
    mean = runs.groupby(["arch", "correlation"])["loss"].mean().unstack("correlation")
    best = runs.groupby(["correlation", "seed"])["loss"].transform("min")
    poor = (runs["loss"] > 2 * best).groupby(runs["arch"]).mean()
    moe_beats = all((stat.loc[moe] < stat.loc["shared_bottom"]).all() for stat in (mean, median) for moe in ("omoe", "mmoe"))
    order = sorted(median.columns)
    return dict(moe_beats_sb=moe_beats, ratio_low=median.loc["omoe", low] / median.loc["mmoe", low],
                omoe_rise=median.loc["omoe", low] / median.loc["omoe", 1.0], mmoe_rise=median.loc["mmoe", low] / median.loc["mmoe", 1.0],
                poor_sb=poor["shared_bottom"], poor_omoe=poor["omoe"], poor_mmoe=poor["mmoe"],
                monotone=all(np.all(np.diff(median.loc[a, order].to_numpy()) <= 0) for a in ARCHS),
                **{f"median {a} p={p:g}": median.loc[a, p] for a in ARCHS for p in order})


def run(number: int, seeds: range, correlations=CORRELATIONS) -> tuple[dict, pd.DataFrame]:
    name, data, model, train = SETTINGS[number]
    started = time.perf_counter()
    rows = sweep(ARCHS, correlations, seeds, replace(DataConfig(holdout=5_000), **data),
                 replace(TrainConfig(eval_every=0, log_every=10_000), **train), model_overrides=model)
    runs = final_loss(rows)
    return dict(setting=number, name=name, seeds=len(seeds), seconds=time.perf_counter() - started, **effects(runs)), runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.regimes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", type=int, help="one setting (its number)")
    parser.add_argument("--start", type=int, default=0, help="the first setting of the grid to run")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--correlations", default="1,0.5,0", help="comma-separated p values")
    parser.add_argument("--csv", help="write every run's final loss here")
    a = parser.parse_args(argv)
    correlations = tuple(float(p) for p in a.correlations.split(","))
    rows, frames = [], []
    for number in [a.only] if a.only is not None else range(a.start, len(SETTINGS)):
        row, runs = run(number, range(a.first_seed, a.first_seed + a.seeds), correlations)
        rows.append(row)
        frames.append(runs.assign(setting=number))
        print(pd.DataFrame([row]).to_string(index=False, float_format=lambda v: f"{v:.4g}"), flush=True)
    if a.csv:
        pd.concat(frames).to_csv(a.csv, index=False)
    print(pd.DataFrame(rows)[["setting", "name", "seconds", "moe_beats_sb", "ratio_low", "omoe_rise", "mmoe_rise", "poor_sb", "poor_omoe",
                              "poor_mmoe", "monotone"]].to_string(index=False, float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
