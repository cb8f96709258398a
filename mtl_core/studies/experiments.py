"""The papers' studies, rerun on synthetic data; each returns tidy DataFrames (no Streamlit).

  correlation     MMoE Fig. 4: final test loss of Shared-Bottom / OMoE / MMoE across correlations
  trainability    MMoE Fig. 5: final loss over many seeds, for histograms
  home_ablation   HoME's four components switched off in turn on grouped dense + sparse binary tasks
  seesaw          PLE Fig. 7: per-task MTL gain over single-task models across correlations
  census          MMoE Table (census-income): the seven models of the paper's table on real data
  transfer        negative transfer: each task with all tasks, without each other task, and alone
  gate_tricks     the MMoE practice notes' gate tricks and the loss weightings against plain MMoE
  funnel          ESMM against a CVR model trained on clicks, over the strength of the selection bias
  home_lessons    the collapse and sparse lessons' HoME settings, each beside its control, on fresh seeds
  weightings      every loss weighting against equal and a tuned fixed weight (weightings.py)

Defaults are small grids that finish in a few minutes on a 2-core CPU; every argument enlarges
them. Grids of one architecture train as one stacked model (runs.py), and the grids go through
joblib, so `joblib.parallel_config(backend="ray")` (or "dask") spreads them over a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from ..config import check
from ..data.census import CensusConfig
from ..data.funnel import FunnelConfig, quality_rows
from ..data.synthetic import DataConfig, keep_tasks
from ..diagnostics.recorder import expert_occupancy, expert_reliance, expert_statistics
from ..models import REGISTRY, ModelConfig
from ..train.runs import sized_model_config, sweep, train_datasets, train_grid
from ..train.training import TrainConfig
from .evidence import Effect, seeds_needed
from .weightings import weightings

PAPER_DATA = DataConfig(samples=50_000, holdout=5_000)   # d=100, c=1, m=10, noise 0.1
PAPER_TRAIN = TrainConfig(lr=1e-3, batch_size=256, epochs=15, log_every=10_000, eval_every=0)  # ~2,900 Adam steps


def final_loss(rows: pd.DataFrame, metric: str = "mse") -> pd.DataFrame:
    """Test `metric` averaged over tasks: one final loss per run (arch, correlation, seed)."""
    test = rows[(rows.split == "test") & (rows.metric == metric)]
    return test.groupby(["arch", "correlation", "seed"], as_index=False)["value"].mean().rename(columns={"value": "loss"})


@dataclass
class Study:
    """What an experiment measured: `runs` (one row per run or per run and task) and its `summary`."""

    runs: pd.DataFrame
    summary: pd.DataFrame


def correlation(archs: Sequence[str] = ("shared_bottom", "omoe", "mmoe"), correlations: Sequence[float] = (0.0, 0.5, 0.9, 1.0),
                seeds: int = 5, data: DataConfig = PAPER_DATA, train: TrainConfig = PAPER_TRAIN, n_jobs: int = 1) -> Study:
    """MMoE Fig. 4: per (arch, p), the mean and spread of the final test MSE (mean over the two tasks)."""
    return correlation_summary(final_loss(sweep(archs, correlations, range(seeds), data, train, n_jobs=n_jobs)))


def correlation_summary(runs: pd.DataFrame) -> Study:
    """Mean, spread and median of the final loss per (arch, p), and `mean_rank`: the arch's rank among
    all archs on the same data (same p and seed; 1 = best), averaged over seeds. The rank compares
    models on equal footing, which the raw spread cannot: each seed draws new sinusoids."""
    runs = runs.copy()
    runs["rank"] = runs.groupby(["correlation", "seed"])["loss"].rank()
    summary = runs.groupby(["arch", "correlation"]).agg(
        mean=("loss", "mean"), std=("loss", "std"), median=("loss", "median"), min=("loss", "min"),
        max=("loss", "max"), mean_rank=("rank", "mean"), count=("loss", "count")).reset_index()
    return Study(runs, summary)


def trainability(archs: Sequence[str] = ("shared_bottom", "omoe", "mmoe"), correlations: Sequence[float] = (0.5, 1.0),
                 seeds: int = 20, data: DataConfig = PAPER_DATA, train: TrainConfig = PAPER_TRAIN, n_jobs: int = 1) -> Study:
    """MMoE Fig. 5: the final loss of every seed (histogram data) and its quantiles per (arch, p)."""
    return trainability_summary(final_loss(sweep(archs, correlations, range(seeds), data, train, n_jobs=n_jobs)))


def trainability_summary(runs: pd.DataFrame) -> Study:
    """Quantiles of the final loss per (arch, p). A run is `poor` when its loss is more than twice the
    best loss any architecture reached on the same data (same p and seed): a seed draws new sinusoids,
    so how hard the data are varies more between seeds than between models."""
    runs = runs.copy()
    runs["poor"] = runs["loss"] > 2 * runs.groupby(["correlation", "seed"])["loss"].transform("min")
    q = lambda p: (lambda s: s.quantile(p))
    summary = runs.groupby(["arch", "correlation"]).agg(
        min=("loss", "min"), q25=("loss", q(0.25)), median=("loss", "median"), q75=("loss", q(0.75)),
        max=("loss", "max"), poor=("poor", "mean"), count=("loss", "count")).reset_index()
    return Study(runs, summary)


def seed_by_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of architectures at every correlation, compared seed by seed on the same data: on how many
    seeds the better one (lower median loss) won, the mean and spread (sd) of its gain (the other's loss minus
    its own), the one-sided Wilcoxon p of that gain, and how many seeds a gain this size needs to be found
    4 times in 5 (mtl_core.studies.evidence)."""
    losses = runs.pivot_table(index=["correlation", "seed"], columns="arch", values="loss")
    rows = []
    for correlation, table in losses.groupby(level="correlation", sort=False):
        archs = list(table.median().sort_values().index)
        for i, better in enumerate(archs):
            for worse in archs[i + 1:]:
                gain = (table[worse] - table[better]).dropna()
                rows.append(dict(correlation=correlation, better=better, worse=worse, seeds=len(gain), won=int((gain > 0).sum()),
                                 mean_gain=gain.mean(), spread=gain.std(), p=Effect.of(gain).p,
                                 seeds_needed=seeds_needed(gain.mean(), gain.std())))
    return pd.DataFrame(rows, columns=["correlation", "better", "worse", "seeds", "won", "mean_gain", "spread", "p", "seeds_needed"])


def rise_by_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """Each architecture at the lowest correlation against the highest, seed by seed (a seed draws the same
    directions, sinusoids and inputs at every p, data.py): on how many seeds its loss was higher at the lowest
    p, the median of (loss at lowest / at highest - 1), and the one-sided Wilcoxon p of that rise. The MMoE
    paper's first finding is that every model's loss rises as the tasks grow less related."""
    low, high = runs.correlation.min(), runs.correlation.max()
    losses = runs.pivot_table(index="seed", columns=["arch", "correlation"], values="loss")
    rows = []
    for arch in runs.arch.unique():
        rise = (losses[arch, low] / losses[arch, high] - 1).dropna()
        rows.append(dict(arch=arch, low=low, high=high, rose=int((rise > 0).sum()), seeds=len(rise),
                         median_rise=rise.median(), p=Effect.of(rise).p))
    return pd.DataFrame(rows, columns=["arch", "low", "high", "rose", "seeds", "median_rise", "p"])


HOME_DATA = DataConfig(tasks=4, groups=(0, 0, 1, 1), correlation=0.9, between_correlation=0.1,
                       task_types=("binary",) * 4, positive_rates=(0.5, 0.05, 0.5, 0.05), samples=50_000, holdout=10_000,
                       users=200)
HOME_TRAIN = replace(PAPER_TRAIN, epochs=10)
HOME_SWITCHES = REGISTRY["home"].switches
HOME_ARMS = {"HoME": {}, **{f"w/o {switch.words}": {switch.field: False} for switch in HOME_SWITCHES},
             "all off": {switch.field: False for switch in HOME_SWITCHES}}


def ablation_arm(arm: str, switches: dict, seeds: int, data: DataConfig, train: TrainConfig, model: dict) -> pd.DataFrame:
    """One arm of the ablation: HoME with `switches` on `seeds` seeds; tidy rows (arm, seed, scope, metric, value)."""
    config = ModelConfig.for_arch("home", **model, **switches)
    configs = [replace(data, seed=s) for s in range(seeds)]
    result = train_grid(configs, config, train, diagnostics=True)
    trace, dataset = result.diagnostics.latest, result.datasets[0]
    rates = dict(zip(dataset.config.task_names, dataset.positive_rate.tolist()))
    stats, occupancy = expert_statistics(trace), expert_occupancy(trace)
    reliance = expert_reliance(trace, rates)
    reliance = reliance[reliance.level == reliance.level.max()]
    test = result.metrics[result.metrics.split == "test"]
    rows = [dict(member=r.member, scope=r.task, metric=r.metric, value=r.value) for r in test.itertuples()]
    for m in range(len(configs)):
        s, o, r = stats[stats.member == m], occupancy[occupancy.member == m], reliance[reliance.member == m]
        taken = o.drop_duplicates(["level", "expert"])
        rows += [dict(member=m, scope="model", metric="dead_expert_share", value=(s.zero_fraction > 0.9).mean()),
                 dict(member=m, scope="model", metric="zero_fraction", value=s.zero_fraction.mean()),
                 dict(member=m, scope="model", metric="output_std_max_over_min", value=s["std"].max() / max(s["std"].min(), 1e-12)),
                 dict(member=m, scope="model", metric="taken_over_share", value=taken.taken_over.mean() if len(taken) else np.nan)]
        rows += [dict(member=m, scope=t.task, metric="own_expert_weight", value=t.own) for t in r.itertuples()]
    frame = pd.DataFrame(rows)
    frame.insert(0, "arm", arm)
    frame.insert(1, "seed", frame.pop("member"))
    return frame.assign(params=result.params)


def home_ablation(seeds: int = 3, data: DataConfig = HOME_DATA, train: TrainConfig = HOME_TRAIN,
                  model: dict | None = None, n_jobs: int = 1) -> Study:
    """HoME with each switch off in turn, and all off, on two groups of one dense and one sparse binary
    task. Per arm and seed: test AUC / GAUC / logloss per task, and the three anomalies: dead experts
    (share of experts with > 90% exact zeros; zero fraction; output-scale spread), degradation (share
    of shared experts taken over by one consumer) and underfitting (task gates' weight on own experts)."""
    model = {"experts": 4, "group_experts": 2, "task_experts": 1, **(model or {})}
    frames = Parallel(n_jobs=n_jobs)(delayed(ablation_arm)(arm, switches, seeds, data, train, model)
                                     for arm, switches in HOME_ARMS.items())
    return ablation_summary(pd.concat(frames, ignore_index=True), data)


def ablation_summary(runs: pd.DataFrame, data: DataConfig) -> Study:
    """Per arm: mean task metrics over dense and sparse tasks, and the anomaly measures."""
    sparse = {n for n, r in zip(data.task_names, data.positive_rates or ()) if r < 0.2}
    runs = runs.assign(task_kind=np.where(runs.scope == "model", "model", np.where(runs.scope.isin(sparse), "sparse", "dense")))
    summary = runs.groupby(["arm", "task_kind", "metric"], sort=False)["value"].mean().unstack(["task_kind", "metric"])
    columns = [("dense", "auc"), ("sparse", "auc"), ("sparse", "gauc"), ("model", "dead_expert_share"),
               ("model", "zero_fraction"), ("model", "output_std_max_over_min"), ("model", "taken_over_share"),
               ("dense", "own_expert_weight"), ("sparse", "own_expert_weight")]
    summary = summary[[c for c in columns if c in summary.columns]]
    summary.columns = [f"{kind} {metric}" for kind, metric in summary.columns]
    return Study(runs, summary.reset_index())


def seesaw(archs: Sequence[str] = ("shared_bottom", "mmoe", "cgc", "ple"), correlations: Sequence[float] = (0.0, 0.5, 0.9, 1.0),
           seeds: int = 3, data: DataConfig = PAPER_DATA, train: TrainConfig = PAPER_TRAIN, n_jobs: int = 1) -> Study:
    """PLE Fig. 7: per task, MTL gain = single-task test MSE - MTL test MSE on the same data and seed
    (positive = sharing helped that task). A seesaw is one task gaining while another loses.
    The single-task baseline (one bottom per task) gets MMoE's parameter budget, as Shared-Bottom does,
    so a gain measures sharing, not size."""
    rows = sweep(("single_task", *archs), correlations, range(seeds), data, train, n_jobs=n_jobs)
    test = rows[(rows.split == "test") & (rows.metric == "mse")]
    single = test[test.arch == "single_task"].set_index(["correlation", "seed", "task"])["value"]
    mtl = test[test.arch != "single_task"].set_index(["arch", "correlation", "seed", "task"])["value"]
    runs = (single.reindex(mtl.index.droplevel("arch")).to_numpy() - mtl).rename("gain").reset_index()
    summary = runs.groupby(["arch", "correlation", "task"])["gain"].agg(["mean", "std"]).reset_index()
    return Study(runs, summary)


CENSUS_ARCHS = ("single_task", "shared_bottom", "l2_constrained", "cross_stitch", "tensor_factorization", "omoe", "mmoe")
# The search: one size knob per model, three values each (plus L2's alpha and TF's ranks), chosen on
# validation AUC of the main task. Towers of 8 for all; Adam 1e-3, batch 1024, 3 epochs (585 steps).
CENSUS_SEARCH = {
    "single_task": [dict(expert_hidden=(w,)) for w in (32, 64, 128)],
    "shared_bottom": [dict(expert_hidden=(w,)) for w in (64, 128, 256)],
    "l2_constrained": [dict(expert_hidden=(64,), l2_alpha=a) for a in (1e-4, 1e-3, 1e-2)],
    "cross_stitch": [dict(expert_hidden=(w,), levels=2) for w in (16, 32, 64)],
    "tensor_factorization": [dict(expert_hidden=(64,), tucker_ranks=r) for r in ((8, 4, 2), (32, 8, 2), (64, 16, 2))],
    "omoe": [dict(experts=8, expert_hidden=(w,)) for w in (8, 16, 32)],
    "mmoe": [dict(experts=8, expert_hidden=(w,)) for w in (8, 16, 32)],
}
CENSUS_TRAIN = TrainConfig(lr=1e-3, batch_size=1024, epochs=3, log_every=10_000, eval_every=0)
# The paper's main-task AUC, best / mean over 400 runs (Ma et al., KDD 2018, section 6)
CENSUS_PAPER = {1: {"single_task": (0.9398, 0.9337), "shared_bottom": (0.9361, 0.9295), "l2_constrained": (0.9389, 0.9359),
                    "cross_stitch": (0.9406, 0.9361), "tensor_factorization": (0.7460, 0.6765), "omoe": (0.9387, 0.9319),
                    "mmoe": (0.9410, 0.9359)},
                2: {"single_task": (0.8843, 0.8792), "shared_bottom": (0.8836, 0.8813), "l2_constrained": (0.8855, 0.8823),
                    "cross_stitch": (0.8855, 0.8819), "tensor_factorization": (0.7367, 0.7256), "omoe": (0.8852, 0.8813),
                    "mmoe": (0.8860, 0.8826)}}


def census_search(arch: str, data: CensusConfig, train: TrainConfig) -> pd.DataFrame:
    """Every search setting of `arch`, trained once (seed 0): validation and test AUC per task."""
    rows = []
    for number, overrides in enumerate(CENSUS_SEARCH[arch]):
        result = train_grid([data], ModelConfig.for_arch(arch, **overrides), train)
        auc = result.metrics[result.metrics.metric == "auc"]
        rows += [dict(arch=arch, setting=number, overrides=str(overrides), params=result.params, seconds=result.seconds,
                      split=r.split, task=r.task, auc=r.value) for r in auc.itertuples()]
    return pd.DataFrame(rows)


def census(group: int = 1, archs: Sequence[str] = CENSUS_ARCHS, seeds: int = 5, data: CensusConfig = CensusConfig(),
           train: TrainConfig = CENSUS_TRAIN, n_jobs: int = 1) -> Study:
    """The MMoE paper's census-income table: per model, the search setting with the best validation AUC of
    the main task, retrained on `seeds` seeds (one stacked grid; the seed changes the initial weights
    and the batch order, the data are the same), then the main task's test AUC (best and mean) and the
    auxiliary task's (of the run with the best main AUC, and mean), beside the paper's."""
    data = replace(data, group=group)
    main, aux = data.task_names
    search = pd.concat(Parallel(n_jobs=n_jobs)(delayed(census_search)(arch, data, train) for arch in archs), ignore_index=True)
    validation = search[(search.split == "validation") & (search.task == main)]
    chosen = validation.loc[validation.groupby("arch", sort=False)["auc"].idxmax()]
    frames, summary = [], []
    for row in chosen.itertuples():
        config = ModelConfig.for_arch(row.arch, **CENSUS_SEARCH[row.arch][row.setting])
        result = train_grid([replace(data, seed=s) for s in range(seeds)], config, train)
        test = result.metrics[(result.metrics.split == "test") & (result.metrics.metric == "auc")]
        runs = test.pivot(index="member", columns="task", values="value")
        frames.append(runs.reset_index().rename(columns={"member": "seed", main: "main_auc", aux: "aux_auc"}).assign(arch=row.arch))
        best = runs[main].idxmax()
        paper = CENSUS_PAPER[group].get(row.arch, (np.nan, np.nan))
        summary.append(dict(arch=row.arch, setting=row.overrides, params=result.params, main_best=runs[main].max(),
                            main_mean=runs[main].mean(), aux_of_best=runs.loc[best, aux], aux_mean=runs[aux].mean(),
                            paper_best=paper[0], paper_mean=paper[1], seconds=result.seconds))
    runs = pd.concat(frames, ignore_index=True)[["arch", "seed", "main_auc", "aux_auc"]]
    return Study(runs, pd.DataFrame(summary).assign(group=group))


# Two related tasks (p = 0.9) and one unrelated to them (task 2, its own group, p = 0 to the others), with the
# lesson preset's models (16 experts of 8 units: docs/EXPERIMENTS.md section 5), 20,000 samples, 20 epochs.
TRANSFER_DATA = DataConfig(tasks=3, groups=(0, 0, 1), correlation=0.9, between_correlation=0.0, samples=20_000, holdout=5_000)
TRANSFER_TRAIN = replace(PAPER_TRAIN, epochs=20)
TRANSFER_MODEL = dict(experts=16, expert_hidden=(8,))


def task_loss(metrics: pd.DataFrame, is_binary: dict[str, bool]) -> pd.DataFrame:
    """Test loss per (member, task): MSE for regression tasks, log loss for binary ones."""
    test = metrics[metrics.split == "test"]
    test = test[test.metric == test.task.map(lambda t: "logloss" if is_binary[t] else "mse")]
    return test[["member", "task", "value"]].rename(columns={"member": "seed", "value": "loss"})


def transfer(archs: Sequence[str] = ("shared_bottom", "mmoe"), seeds: int = 3, data: DataConfig = TRANSFER_DATA,
             train: TrainConfig = TRANSFER_TRAIN, model: dict | None = None, n_jobs: int = 1, first_seed: int = 0) -> Study:
    """Does sharing help each task? For each architecture, on the same data and seeds: the model on all
    tasks, the model without each task in turn (leave one out), and single-task models (one bottom per
    task, sized to MMoE's parameter count as in the MMoE paper). Each setting's seeds train as one stacked
    grid. `runs`: (arch, setting, seed, task, loss) with setting "all tasks", "without <task>" or "single task".
    `summary` per (arch, task): `mtl_gain` = single-task loss - all-tasks loss (positive: sharing helps the task)
    and, per other task j, `without_<j>` = all-tasks loss - loss without j (positive: task j hurt this one:
    negative transfer)."""
    model, seed_list = TRANSFER_MODEL if model is None else model, range(first_seed, first_seed + seeds)
    check(data.tasks >= 2, f"Negative transfer needs at least two tasks, got {data.tasks}.")
    datasets = [replace(data, seed=s).dataset() for s in seed_list]
    names, binary = data.task_names, dict(zip(data.task_names, data.is_binary))
    single = sized_model_config(ModelConfig.for_arch("single_task", **model), data, "mmoe")
    settings = [("single task", "single_task", single, tuple(range(data.tasks)))]
    for arch in archs:
        config = ModelConfig.for_arch(arch, **model)
        settings.append(("all tasks", arch, config, tuple(range(data.tasks))))
        settings += [(f"without {names[j]}", arch, config, tuple(k for k in range(data.tasks) if k != j)) for j in range(data.tasks)]
    results = Parallel(n_jobs=n_jobs)(delayed(train_datasets)([keep_tasks(d, keep) for d in datasets], seed_list, config, train)
                                      for _, _, config, keep in settings)
    runs = pd.concat([task_loss(result.metrics, binary).assign(arch=arch, setting=setting, seed=lambda f: f.seed + first_seed)
                      for (setting, arch, _, _), result in zip(settings, results)], ignore_index=True)
    runs = runs[["arch", "setting", "seed", "task", "loss"]]
    return Study(runs, transfer_summary(runs, names))


# A robust negative transfer (docs/EXPERIMENTS.md section 8.1): two tasks on a Shared-Bottom of 4 units, found on
# seeds 0-29 (p = 0: task 0 worse with task 1 than without it on 25 of 30 seeds; hidden 2 or 8, or 20,000 samples: 16 to 22).
NEGATIVE_DATA = DataConfig(tasks=2, correlation=0.0, samples=10_000, holdout=2_000)
NEGATIVE_TRAIN = replace(PAPER_TRAIN, epochs=10)
NEGATIVE_MODEL = dict(experts=8, expert_hidden=(4,), tower_hidden=(8,))


def negative_transfer(correlations: Sequence[float] = (0.0, 1.0), seeds: int = 60, data: DataConfig = NEGATIVE_DATA,
                      train: TrainConfig = NEGATIVE_TRAIN, n_jobs: int = 1, first_seed: int = 1000) -> Study:
    """Negative transfer with its control: `transfer` of a Shared-Bottom with a 4-unit bottom on two tasks at each
    correlation (p = 0: unrelated tasks; p = 1: identical tasks, the control: what any second task sharing four
    units does). `runs` as `transfer`'s with a `correlation` column; `summary` per (correlation, task):
    `transfer_summary`'s columns."""
    runs = pd.concat([transfer(("shared_bottom",), seeds, replace(data, correlation=c), train, NEGATIVE_MODEL, n_jobs,
                               first_seed).runs.assign(correlation=c) for c in correlations], ignore_index=True)
    summary = pd.concat([transfer_summary(part.drop(columns="correlation"), data.task_names).assign(correlation=c)
                         for c, part in runs.groupby("correlation")], ignore_index=True)
    return Study(runs, summary)


def transfer_summary(runs: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Mean over seeds of the gains `transfer` defines, one row per (arch, task); `helped` counts the seeds on
    which sharing beat the single-task model and `hurt_by_<j>` those on which leaving task j out lowered this
    task's loss (of `seeds`): a mean can come from a few seeds."""
    loss = runs.pivot_table(index=["arch", "task", "seed"], columns="setting", values="loss").reset_index()
    single = runs[runs.setting == "single task"].set_index(["task", "seed"])["loss"]
    rows = []
    for (arch, task), frame in loss[loss.arch != "single_task"].groupby(["arch", "task"], sort=False):
        alone = single.reindex(list(zip(frame.task, frame.seed))).to_numpy()
        row = dict(arch=arch, task=task, single_task=alone.mean(), all_tasks=frame["all tasks"].mean(),
                   mtl_gain=(alone - frame["all tasks"]).mean(), helped=int((alone > frame["all tasks"].to_numpy()).sum()),
                   seeds=len(frame))
        row.update({f"without_{other}": (frame["all tasks"] - frame[f"without {other}"]).mean() for other in names if other != task})
        row.update({f"hurt_by_{other}": int((frame["all tasks"] > frame[f"without {other}"]).sum()) for other in names if other != task})
        rows.append(row)
    return pd.DataFrame(rows, columns=["arch", "task", "single_task", "all_tasks", "mtl_gain", "helped", "seeds",
                                       *(f"without_{n}" for n in names), *(f"hurt_by_{n}" for n in names)])



def sharing_gap(runs: pd.DataFrame, arch: str = "shared_bottom", over: str = "mmoe") -> pd.Series:
    """Per correlation: the median over seeds of `arch`'s test MSE (mean over tasks) divided by `over`'s, from
    a sweep's rows (`sweep`: arch, correlation, seed, task, metric, value)."""
    mse = runs[runs.metric == "mse"].groupby(["arch", "correlation", "seed"]).value.mean().unstack("arch")
    return (mse[arch] / mse[over]).groupby(level="correlation").median()

# Where MMoE's gates polarise: the paper's task set (p = 0.5) at 20,000 samples, trained at a learning rate of
# 0.03. At 1e-3 the gates stay spread (normalised entropy 0.85, 2% of samples routed to one expert); raising
# the rate is what sends them to one expert per sample (docs/EXPERIMENTS.md section 7 has the search).
GATE_DATA = DataConfig(correlation=0.5, samples=20_000, holdout=5_000)
GATE_TRAIN = TrainConfig(lr=3e-2, batch_size=256, epochs=15, log_every=10_000, eval_every=0, snapshot_every=100)
GATE_ARMS = {   # arm -> (model options, training options)
    "plain MMoE": ({}, {}),
    "temperature 0.25": (dict(gate_temperature=0.25), {}),
    "temperature 4": (dict(gate_temperature=4.0), {}),
    "gate dropout 0.1": (dict(gate_dropout=0.1), {}),
    "gate init 0 (uniform start)": (dict(gate_init_scale=0.0), {}),
    "LayerNorm in gates": (dict(gate_layer_norm=True), {}),
    "freeze gates after 300 steps": ({}, dict(freeze_gates_after=300)),
    "shared input layer (32)": (dict(shared_input=32), {}),
    "uncertainty weighting": ({}, dict(weighting="uncertainty")),
    "GradNorm": ({}, dict(weighting="gradnorm")),
    "DWA": ({}, dict(weighting="dwa")),
    "PCGrad": ({}, dict(weighting="pcgrad")),
}


def gate_trick_arm(arm: str, seeds: int, data: DataConfig, train: TrainConfig) -> pd.DataFrame:
    """One arm of `gate_tricks`: rows (arm, seed, metric, value)."""
    model_options, train_options = GATE_ARMS[arm]
    result = train_grid([replace(data, seed=s) for s in range(seeds)], ModelConfig("mmoe", **model_options),
                        replace(train, **train_options), diagnostics=True)
    polarisation, drift = result.diagnostics.frame("polarisation"), result.diagnostics.frame("drift")
    last = polarisation[polarisation.step == polarisation.step.max()].groupby("member")
    late = drift[drift.step > drift.step.max() / 2].groupby("member")["js_divergence"].mean()
    test = result.metrics[(result.metrics.split == "test") & (result.metrics.metric == "mse")].groupby("member")["value"].mean()
    measures = {"test_mse": test, "entropy": last["entropy"].mean(), "samples_polarised": last["sample_polarised"].mean(),
                "top_weight": last["top_weight"].mean(), "late_drift": late}
    rows = [dict(arm=arm, seed=m, metric=name, value=float(values[m])) for name, values in measures.items() for m in range(seeds)]
    return pd.DataFrame(rows).assign(seconds=result.seconds)


def gate_tricks(seeds: int = 5, data: DataConfig = GATE_DATA, train: TrainConfig = GATE_TRAIN, n_jobs: int = 1) -> Study:
    """Each gate trick and loss weighting of the MMoE practice notes (docs/REFERENCES.md) against plain MMoE
    (8 experts of 16) where its gates polarise, on the same data and seeds. Per arm and seed: the test MSE (mean
    over tasks); at the end of training, each gate's normalised entropy (1 = uniform, 0 = one expert per
    sample), the share of samples whose top expert gets over 0.9 of the weight, the top share of the gate's mean
    weights; and `late_drift`, the mean Jensen-Shannon divergence between consecutive snapshots (every 100 steps)
    over the second half of training. Summary: means over seeds, and how many seeds the arm beat plain MMoE's
    test MSE on."""
    frames = Parallel(n_jobs=n_jobs)(delayed(gate_trick_arm)(arm, seeds, data, train) for arm in GATE_ARMS)
    runs = pd.concat(frames, ignore_index=True)
    wide = runs.pivot_table(index=["arm", "seed"], columns="metric", values="value").reset_index()
    plain = wide[wide.arm == "plain MMoE"].set_index("seed")["test_mse"]
    wide["beats_plain"] = wide.test_mse < wide.seed.map(plain)
    summary = wide.groupby("arm", sort=False).agg(
        test_mse=("test_mse", "mean"), entropy=("entropy", "mean"), samples_polarised=("samples_polarised", "mean"),
        top_weight=("top_weight", "mean"), late_drift=("late_drift", "mean"), seeds_better_than_plain=("beats_plain", "sum"))
    summary = summary.reindex(list(GATE_ARMS)).reset_index()
    summary.loc[summary.arm == "plain MMoE", "seeds_better_than_plain"] = np.nan
    return Study(runs, summary)


FUNNEL_DATA = FunnelConfig()   # 50,000 impressions (5% clicked, 10% of clicks convert), 20,000 test
FUNNEL_TRAIN = TrainConfig(lr=1e-3, batch_size=256, epochs=10, log_every=10_000, eval_every=0)
FUNNEL_MODELS = ("cvr_on_clicks", "esmm", "esmm_mmoe")


def funnel_grid(archs: Sequence[str], cells: Sequence[dict], seeds: int, data: FunnelConfig, train: TrainConfig,
                n_jobs: int = 1) -> pd.DataFrame:
    """Every model on every cell (a dict of FunnelConfig changes), `seeds` seeds stacked per grid: rows (model,
    the cell's keys, seed, space, metric, value) with space "all" (every test impression, against its potential
    conversion and true pCVR) or "clicked" (clicked test impressions, their observed conversions): cvr_auc,
    cvr_calibration (mean pCVR / mean true pCVR), and ctcvr_auc on all."""
    grids = [(arch, cell) for arch in archs for cell in cells]
    results = Parallel(n_jobs=n_jobs)(delayed(train_grid)([replace(data, **cell, seed=s) for s in range(seeds)],
                                                          ModelConfig.for_arch(arch), train) for arch, cell in grids)
    rows = []
    for (arch, cell), result in zip(grids, results):
        for seed in range(seeds):
            member = result.metrics[result.metrics.member == seed]
            rows += [dict(model=arch, **cell, seed=seed, **row) for row in quality_rows(member)]
    return pd.DataFrame(rows)


def funnel(archs: Sequence[str] = FUNNEL_MODELS, biases: Sequence[float] = (0.0, 1.0, 2.0), seeds: int = 3,
           data: FunnelConfig = FUNNEL_DATA, train: TrainConfig = FUNNEL_TRAIN, n_jobs: int = 1) -> Study:
    """ESMM's study on the synthetic funnel (funnel.py): each model at each strength of the hidden intent that
    drives both click and conversion (`bias`); rows as `funnel_grid`'s. `summary`: means over seeds per
    (model, bias), with the gap between the spaces."""
    runs = funnel_grid(archs, [dict(bias=float(b)) for b in biases], seeds, data, train, n_jobs)
    summary = runs.pivot_table(index=["model", "bias"], columns=["metric", "space"], values="value", sort=False)
    summary.columns = [f"{metric} {space}" for metric, space in summary.columns]
    summary = summary.reset_index()
    summary["calibration gap (all - clicked)"] = summary["cvr_calibration all"] - summary["cvr_calibration clicked"]
    return Study(runs, summary)


SPARSITY_MODELS = ("cvr_on_clicks", "esmm", "escm2_ips", "escm2_dr", "esmm_mmoe", "escm2_ips_mmoe", "escm2_dr_mmoe")
SPARSITY_KEYS = ["model", "correlation", "click_rate", "samples"]


def funnel_sparsity(archs: Sequence[str] = SPARSITY_MODELS, click_rates: Sequence[float] = (0.01, 0.02, 0.05),
                    sizes: Sequence[int] = (20_000, 100_000), correlations: Sequence[float] = (0.5,), seeds: int = 20,
                    data: FunnelConfig = FUNNEL_DATA, train: TrainConfig = FUNNEL_TRAIN, n_jobs: int = 1) -> Study:
    """What ESMM is for (Ma et al., SIGIR 2018; Wang et al., SIGIR 2022): data sparsity. Without a hidden cause (bias 0), every model at every
    CTR/CVR correlation (the cosine between the click and the conversion directions), click rate and number of
    training impressions; rows as `funnel_grid`'s, summary as `sparsity_summary`'s."""
    cells = [dict(bias=0.0, correlation=float(r), click_rate=float(c), samples=int(n))
             for r in correlations for c in click_rates for n in sizes]
    runs = funnel_grid(archs, cells, seeds, data, train, n_jobs)
    return Study(runs, sparsity_summary(runs))


def sparsity_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (model, correlation, click_rate, samples): mean CVR AUC and calibration on all and on clicked
    impressions, and against CVR on clicks on the same data and seeds: the mean difference in CVR AUC on all
    impressions and on how many seeds it was higher. A separate function so that studies run in parts (one
    command per block of cells) are summarised together."""
    cell = SPARSITY_KEYS[1:]
    summary = runs.pivot_table(index=SPARSITY_KEYS, columns=["metric", "space"], values="value", sort=False)
    summary.columns = [f"{metric} {space}" for metric, space in summary.columns]
    auc = runs[(runs.metric == "cvr_auc") & (runs.space == "all")].pivot_table(index=cell + ["seed"], columns="model",
                                                                               values="value")
    if "cvr_on_clicks" not in auc:   # a part of the study without the baseline: the comparison comes when merged
        return summary.reset_index()
    gain = auc.sub(auc["cvr_on_clicks"], axis=0).drop(columns="cvr_on_clicks").stack()
    by_cell = gain.groupby(["model"] + cell)
    against = pd.DataFrame({"auc gain over CVR on clicks": by_cell.mean(), "seeds higher": (gain > 0).groupby(["model"] + cell).sum(),
                            "seeds": by_cell.size()})
    return summary.join(against.reorder_levels(SPARSITY_KEYS)).reset_index()


# The HoME lessons' settings (lessons.py) beside their controls: the expert-normalisation switch off against on,
# the self-gate on against off. A lesson key with the changes its arm makes.
HOME_LESSON_ARMS = {"collapse": ("collapse", {}), "collapse, switch on": ("collapse", dict(norm=True)),
                    "sparse": ("sparse", {}), "sparse, self-gate off": ("sparse", dict(sgate=False))}


def home_lesson_arm(arm: str, seeds: Sequence[int]) -> pd.DataFrame:
    """One arm of `home_lessons`: its lesson's settings (with the arm's changes) built as the Playground builds
    them, one stacked model per seed; rows (arm, seed, metric, value)."""
    from ..settings import builders
    from .lessons import lesson

    key, changes = HOME_LESSON_ARMS[arm]
    settings = {**lesson(key).full_settings(), **changes}
    configs = [builders.data_config({**settings, "seed": s}) for s in seeds]
    result = train_grid(configs, builders.model_config("home", settings),
                        builders.train_config(settings, eval_every=0, log_every=10_000), diagnostics=True)
    rates = dict(zip(configs[0].task_names, result.datasets[0].positive_rate.tolist()))
    stats = expert_statistics(result.diagnostics.latest)
    reliance = expert_reliance(result.diagnostics.latest, rates)
    reliance = reliance[reliance.level == reliance.level.max()]
    rows = []
    for m, seed in enumerate(seeds):
        s, r = stats[stats.member == m], reliance[reliance.member == m]
        sparse = r.positive_rate < 0.2
        rows += [dict(seed=seed, metric="zero_fraction", value=s.zero_fraction.mean()),
                 dict(seed=seed, metric="dead_units", value=s.dead_units.mean()),
                 dict(seed=seed, metric="sparsest_expert", value=s.zero_fraction.max()),
                 dict(seed=seed, metric="own_sparse", value=r.own[sparse].mean()),
                 dict(seed=seed, metric="own_dense", value=r.own[~sparse].mean()),
                 dict(seed=seed, metric="self_gate_least", value=r.self_gate.min())]
    return pd.DataFrame(rows).assign(arm=arm)[["arm", "seed", "metric", "value"]]


def home_lessons(seeds: int = 20, first_seed: int = 1000, n_jobs: int = 1) -> Study:
    """The collapse and sparse lessons on `seeds` seeds from `first_seed`, each beside its control: per arm and
    seed, the mean share of expert outputs exactly 0, of dead units (0 for every input of the snapshot) and the
    sparsest expert's zeros; the own-expert share (self-gate included) of the sparse and the dense tasks' mixes
    and the least self-gate share. `summary`: means over seeds per arm."""
    frames = Parallel(n_jobs=n_jobs)(delayed(home_lesson_arm)(arm, range(first_seed, first_seed + seeds))
                                     for arm in HOME_LESSON_ARMS)
    runs = pd.concat(frames, ignore_index=True)
    return Study(runs, runs.pivot_table(index="arm", columns="metric", values="value", sort=False).reset_index())


EXPERIMENTS = {"correlation": correlation, "trainability": trainability, "home-ablation": home_ablation, "seesaw": seesaw,
               "census": census, "transfer": transfer, "negative-transfer": negative_transfer, "gate-tricks": gate_tricks,
               "funnel": funnel, "funnel-sparsity": funnel_sparsity,
               "home-lessons": home_lessons, "weightings": weightings}
