"""Synthetic multi-task data: the MMoE paper's generator (Ma et al., KDD 2018, Sec. 3.2) for K tasks.

Every task k has a weight vector w_k; the tasks differ only in w_k, so the cosine between
weight vectors is the knob for how related the tasks are:

    z_k = w_k . x                                          x ~ N(0, I_d)
    y_k = z_k + sum_i sin(alpha_i z_k + beta_i) + eps_k    alpha, beta ~ N(0, 1) shared by all tasks

The weights are `scale * U @ L.T` with U orthonormal columns and L @ L.T the target cosine
matrix C, so cos(w_i, w_j) = C_ij exactly. For two tasks this is the paper's
w1 = c u1, w2 = c (p u1 + sqrt(1 - p^2) u2). The sinusoids make the labels' Pearson
correlation differ from the cosine, so `Dataset.label_correlation` reports the measured one.

Binary tasks threshold a per-user-shifted score at a quantile (a chosen positive rate);
the pseudo-users give GAUC something to group by.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..config import check, ConfigError

TASK_TYPES = ("regression", "binary")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DataConfig:
    tasks: int = 2                 # K, 1..8
    correlation: float = 0.5       # p: target cosine for every pair (or within-group p when groups are set)
    groups: tuple[int, ...] | None = None   # group index per task, e.g. (0, 0, 1, 1); None = one group of all tasks
    between_correlation: float = 0.0        # target cosine between tasks of different groups (used only with groups)
    cosine: tuple[tuple[float, ...], ...] | None = None  # full K x K target cosine matrix; overrides correlation/groups
    task_types: tuple[str, ...] | None = None   # per task "regression" or "binary"; None = all regression
    positive_rates: tuple[float, ...] | None = None  # per binary task, 0 < r < 1; None = 0.5; ignored for regression
    features: int = 100            # d
    samples: int = 10_000          # training samples
    holdout: int = 2_000           # samples in EACH of validation and test
    scale: float = 1.0             # c
    sinusoids: int = 10            # m
    noise: float = 0.1             # label noise std
    users: int = 100               # pseudo-users for GAUC
    user_offset: float = 0.5       # std of the per-(user, task) offset added to binary tasks' scores
    seed: int = 0

    funnel = False   # a click -> conversion funnel (funnel.FunnelConfig) has the funnel models' metrics

    def __post_init__(self):
        k = self.tasks
        check(isinstance(k, numbers.Integral) and 1 <= k <= 8, f"tasks must be a whole number from 1 to 8, got {k}.")
        check(-1 <= self.correlation <= 1, f"correlation is a cosine and must lie in [-1, 1], got {self.correlation}.")
        check(-1 <= self.between_correlation <= 1,
              f"between_correlation is a cosine and must lie in [-1, 1], got {self.between_correlation}.")
        check(self.features >= k, f"features ({self.features}) must be at least the number of tasks ({k}): "
                                  "each task needs its own direction in feature space.")
        check(self.samples >= 10, f"samples must be at least 10, got {self.samples}.")
        check(self.holdout >= 10, f"holdout must be at least 10 (samples in each of validation and test), got {self.holdout}.")
        check(self.scale > 0, f"scale must be positive, got {self.scale}.")
        check(self.sinusoids >= 0, f"sinusoids must be 0 or more (0 makes the tasks linear), got {self.sinusoids}.")
        check(self.noise >= 0, f"noise is a standard deviation and must be 0 or more, got {self.noise}.")
        check(self.users >= 1, f"users must be at least 1, got {self.users}.")
        check(self.user_offset >= 0, f"user_offset is a standard deviation and must be 0 or more, got {self.user_offset}.")
        for name in ("groups", "task_types", "positive_rates", "cosine"):
            value = getattr(self, name)
            check(value is None or len(value) == k,
                  f"{name} needs one entry per task ({k}), got {len(value) if value is not None else 0}: {value}.")
        if self.task_types is not None:
            bad = [t for t in self.task_types if t not in TASK_TYPES]
            check(not bad, f"Unknown task type(s) {bad}: each task is 'regression' or 'binary'.")
        if self.positive_rates is not None:
            bad = [r for r, b in zip(self.positive_rates, self.is_binary) if b and not 0 < r < 1]
            check(not bad, f"positive_rates {bad} not allowed: a binary task's positive rate must lie strictly "
                           "between 0 and 1 (both classes are needed), e.g. 0.02 or 0.5.")
        if self.groups is not None:
            check(all(isinstance(g, numbers.Integral) for g in self.groups),
                  f"groups must be whole numbers (one group index per task), got {self.groups}.")
            used = sorted(set(self.groups))
            check(used == list(range(len(used))),
                  f"groups {self.groups} must be numbered 0, 1, ..., G-1 with every group used by some task "
                  f"(found groups {used}).")
        if self.cosine is not None:
            check(all(len(row) == k for row in self.cosine),
                  f"cosine must be a {k} x {k} matrix (one row of {k} numbers per task), got {self.cosine}.")
        self._check_target(self.target_cosine)

    def _check_target(self, c: np.ndarray) -> None:
        """Raise ConfigError unless `c` is a valid correlation matrix; say which knobs made it invalid."""
        k = self.tasks
        if self.cosine is not None:
            check(np.all(np.abs(c) <= 1), f"cosine entries are cosines and must lie in [-1, 1], got {self.cosine}.")
            check(np.all(np.diag(c) == 1), f"cosine must have 1 on the diagonal (a task's cosine with itself), "
                                           f"got diagonal {np.diag(c).tolist()}.")
            i, j = np.unravel_index(np.argmax(np.abs(c - c.T)), c.shape)
            check(c[i, j] == c[j, i], f"cosine must be symmetric (cos(task {i}, task {j}) = cos(task {j}, task {i})), "
                                      f"got {c[i, j]} and {c[j, i]}.")
        smallest = np.linalg.eigvalsh(c).min()
        if smallest >= -1e-9:
            return
        if self.cosine is not None:
            what = "The cosine matrix entries"
            hint = ("the pairwise similarities contradict each other (e.g. task 0 ~ task 1 and task 1 ~ task 2 "
                    "but task 0 opposite task 2). Move the off-diagonal entries towards 0.")
        elif len(set(self.task_groups)) > 1:
            what = f"within-group correlation {self.correlation} and between-group {self.between_correlation}"
            hint = ("tasks in different groups cannot be that alike (or that opposite) when tasks in the same group "
                    "are this far apart. Move between_correlation towards 0 or raise correlation.")
        else:
            what = f"{k} tasks all at correlation {self.correlation}"
            hint = f"with {k} tasks the shared correlation must be at least {-1 / (k - 1):.3g}."
        raise ConfigError(f"{what} do not form a valid correlation matrix (not positive semi-definite, "
                          f"smallest eigenvalue {smallest:.3g}); {hint}")

    @property
    def target_cosine(self) -> np.ndarray:
        """The target cosine matrix `[tasks, tasks]` between the task weight vectors."""
        if self.cosine is not None:
            return np.array(self.cosine, dtype=np.float64)
        g = np.array(self.task_groups)
        c = np.where(g[:, None] == g[None, :], self.correlation, self.between_correlation).astype(np.float64)
        np.fill_diagonal(c, 1.0)
        return c

    @property
    def task_groups(self) -> tuple[int, ...]:
        """The group index of every task (all 0 without groups)."""
        return tuple(self.groups) if self.groups is not None else (0,) * self.tasks

    @property
    def is_binary(self) -> tuple[bool, ...]:
        """Whether each task is binary (label 0/1, model outputs a logit) rather than regression."""
        return tuple(t == "binary" for t in self.task_types) if self.task_types is not None else (False,) * self.tasks

    @property
    def task_names(self) -> tuple[str, ...]:
        """Display names: "task 0", "task 1", ..."""
        return tuple(f"task {k}" for k in range(self.tasks))

    def dataset(self) -> "Dataset":
        """The data this config describes (every data source's config has this method)."""
        return make_dataset(self)


@dataclass(frozen=True)
class Split:
    x: np.ndarray      # [n, features] float32
    y: np.ndarray      # [n, tasks] float32 (0/1 for binary tasks)
    users: np.ndarray  # [n] int64
    truth: np.ndarray | None = None   # [n, k] what only a synthetic source knows (funnel.py: true pCVR, potential conversion)


@dataclass(frozen=True)
class Dataset:
    config: DataConfig
    train: Split
    validation: Split
    test: Split
    weights: np.ndarray | None            # [features, tasks] the task weight vectors (None for real data)
    target_cosine: np.ndarray | None      # [tasks, tasks] (None for real data)
    realised_cosine: np.ndarray | None    # [tasks, tasks] cosine of the actual weight vectors (= target up to float error)
    label_correlation: np.ndarray  # [tasks, tasks] Pearson correlation of the training labels
    positive_rate: np.ndarray      # [tasks] share of 1s in the training labels (NaN for regression tasks)

    def split(self, name: str) -> Split:
        """The split called `name`: "train", "validation" or "test"."""
        check(name in SPLITS, f"Unknown split {name!r}: choose one of {', '.join(SPLITS)}.")
        return getattr(self, name)


def _square_root(c: np.ndarray) -> np.ndarray:
    """L `[tasks, tasks]` with L @ L.T = c: Cholesky, or V sqrt(max(lambda, 0)) when c is singular (e.g. p = 1)."""
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(c)
        return vectors * np.sqrt(np.clip(values, 0, None))


def _labels(rng: np.random.Generator, z: np.ndarray, alpha: np.ndarray, beta: np.ndarray, noise: float) -> np.ndarray:
    """Raw labels `[n, tasks]` from projections z = x @ W `[n, tasks]`: z + sum_i sin(alpha_i z + beta_i) + noise."""
    waves = np.sin(z[:, :, None] * alpha + beta).sum(-1)
    return z + waves + noise * rng.standard_normal(z.shape)


def pearson(y: np.ndarray) -> np.ndarray:
    """Pearson correlation `[tasks, tasks]` of the columns of y `[n, tasks]`; a constant column correlates 0 with others."""
    centred = y - y.mean(0)
    centred[:, (y == y[0]).all(0)] = 0.0
    norms = np.linalg.norm(centred, axis=0)
    norms[norms == 0] = 1.0
    r = np.clip(centred.T @ centred / np.outer(norms, norms), -1.0, 1.0)
    np.fill_diagonal(r, 1.0)
    return r


def _cosine(w: np.ndarray) -> np.ndarray:
    """Cosine similarity `[tasks, tasks]` between the columns of w `[features, tasks]`."""
    unit = w / np.linalg.norm(w, axis=0)
    return unit.T @ unit


def make_dataset(config: DataConfig) -> Dataset:
    """Generate train / validation / test splits for `config`; the same config gives bit-identical arrays.

    Regression labels are standardised with the training split's mean and std, so MSE is comparable
    across settings (MSE 1.0 = predicting the mean). A binary task's score is that standardised label
    plus a per-(user, task) offset; the label is 1 where the score exceeds its (1 - rate) quantile over
    all samples, so the positive rate is the chosen one (up to ties).
    """
    rng = np.random.default_rng(config.seed)
    u, _ = np.linalg.qr(rng.standard_normal((config.features, config.tasks)))
    weights = config.scale * u @ _square_root(config.target_cosine).T  # [features, tasks], cos = target
    alpha, beta = rng.standard_normal((2, config.sinusoids))  # shared by all tasks
    n, train = config.samples + 2 * config.holdout, config.samples
    x = rng.standard_normal((n, config.features))
    y = _labels(rng, x @ weights, alpha, beta, config.noise)
    users = rng.integers(0, config.users, n)
    offsets = config.user_offset * rng.standard_normal((config.users, config.tasks))

    y = (y - y[:train].mean(0)) / y[:train].std(0)
    rates = config.positive_rates or (0.5,) * config.tasks
    for k in np.flatnonzero(config.is_binary):
        score = y[:, k] + offsets[users, k]
        y[:, k] = score > np.quantile(score, 1 - rates[k])

    def split(rows: slice) -> Split:
        return Split(x[rows].astype(np.float32), y[rows].astype(np.float32), users[rows].astype(np.int64))

    return Dataset(
        config=config,
        train=split(slice(0, train)),
        validation=split(slice(train, train + config.holdout)),
        test=split(slice(train + config.holdout, n)),
        weights=weights,
        target_cosine=config.target_cosine,
        realised_cosine=_cosine(weights),
        label_correlation=pearson(y[:train]),
        positive_rate=np.where(config.is_binary, y[:train].mean(0), np.nan),
    )


def label_correlation_curve(cosines: Sequence[float], *, trials: int, samples: int, base: DataConfig) -> pd.DataFrame:
    """The MMoE paper's Figure 2: measured label Pearson correlation against the weight cosine p.

    For each cosine and trial, two regression tasks are drawn from `base` (its scale, sinusoids, noise)
    with seed `base.seed + trial`, so weights and alpha, beta are redrawn per trial. Only labels are
    needed, so the projections z = x @ W are drawn directly: for x ~ N(0, I) they are exactly
    N(0, scale^2 C), which skips the `[samples, features]` inputs. Returns tidy rows
    `cosine, trial, label_correlation` (one per cosine and trial) for the caller to aggregate.
    """
    check(trials >= 1, f"trials must be at least 1, got {trials}.")
    rows = []
    for p in cosines:
        for trial in range(trials):
            config = dataclasses.replace(base, tasks=2, correlation=float(p), groups=None, cosine=None, task_types=None,
                                         positive_rates=None, samples=samples, seed=base.seed + trial)
            rng = np.random.default_rng(config.seed)
            alpha, beta = rng.standard_normal((2, config.sinusoids))
            z = rng.standard_normal((samples, 2)) @ (config.scale * _square_root(config.target_cosine).T)
            y = _labels(rng, z, alpha, beta, config.noise)
            rows.append((float(p), trial, pearson(y)[0, 1]))
    return pd.DataFrame(rows, columns=["cosine", "trial", "label_correlation"])


@dataclass(frozen=True)
class TaskSubset:
    """Some tasks of a data source, as a data config: same rows, only the label columns `keep` (the
    negative-transfer study trains without one task). Names, types and groups are the source's."""

    source: Any          # a DataConfig or a CensusConfig
    keep: tuple[int, ...]

    funnel = False       # a funnel's two tasks are never split: its models need both

    @property
    def tasks(self) -> int:
        return len(self.keep)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.source.task_names[k] for k in self.keep)

    @property
    def is_binary(self) -> tuple[bool, ...]:
        return tuple(self.source.is_binary[k] for k in self.keep)

    @property
    def task_groups(self) -> tuple[int, ...]:
        return tuple(self.source.task_groups[k] for k in self.keep)


def keep_tasks(dataset: Dataset, keep: Sequence[int]) -> Dataset:
    """`dataset` with only the tasks `keep` (same rows and inputs; labels, correlations and rates sliced)."""
    keep = tuple(keep)
    check(len(keep) >= 1 and len(set(keep)) == len(keep) and all(0 <= k < dataset.config.tasks for k in keep),
          f"keep names distinct task numbers below {dataset.config.tasks}, got {keep}.")
    split = lambda s: Split(s.x, s.y[:, keep], s.users)
    columns = lambda a: None if a is None else a[:, keep]
    square = lambda a: None if a is None else a[np.ix_(keep, keep)]
    return Dataset(TaskSubset(dataset.config, keep), split(dataset.train), split(dataset.validation), split(dataset.test),
                   columns(dataset.weights), square(dataset.target_cosine), square(dataset.realised_cosine),
                   square(dataset.label_correlation), dataset.positive_rate[list(keep)])