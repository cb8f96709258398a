"""Jacobian descent through TorchJD (Quinton & Rey, 2024; `torchjd` 0.18): each task's gradient on the shared
parameters is a row of a matrix `[tasks, P]`, and an aggregator turns the matrix into the one update of the shared
parameters. Every aggregator here is a weighted one: it picks a weight per task from the rows (most of them from
their Gramian, the tasks' gradients' dot products), and the update is the weighted sum of the rows, so the
Playground charts those weights like any weighting's (weighting.py's contract).

| name       | paper                                           | TorchJD   | needs          | choice where the paper is silent |
|------------|-------------------------------------------------|-----------|----------------|----------------------------------|
| upgrad     | Quinton & Rey, Jacobian descent, 2024 (UPGrad)   | UPGrad    | quadprog       | the mean as preference |
| mgda       | Désidéri 2012; Sener & Koltun, NeurIPS 2018      | MGDA      |                | Frank-Wolfe, 100 iterations at most |
| cagrad     | Liu et al., NeurIPS 2021                         | CAGrad    | cvxpy          | c = 0.4 (the paper's choice for its image benchmarks) |
| nashmtl    | Navon et al., ICML 2022                          | NashMTL   | cvxpy          | weights solved every step, 20 iterations |
| imtlg      | Liu et al., ICLR 2021 (IMTL-G)                   | IMTLG     |                |                                  |
| alignedmtl | Senushkin et al., CVPR 2023                      | AlignedMTL|                | the smallest eigenvalue as scale |
| gradvac    | Wang et al., ICLR 2021                           | GradVac   |                | beta = 0.5 |
| rlw        | Lin et al., TMLR 2022 (random loss weighting)    | Random    |                | softmax of standard normal draws, redrawn every step |

As with PCGrad (weighting.py), only the shared parameters (`MultiTaskModel.shared_parameters`) get the
aggregated update; a task's own parameters (its tower, its experts) keep their usual gradient. An aggregator that
needs a solver this machine lacks is left out of `AVAILABLE`; `MISSING` says how to add it (the pages say so).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Callable

import torch
from torch import nn
from torchjd import aggregation as jd

from ..config import check

# name -> (TorchJD's aggregator, built for a number of tasks; the modules it needs beyond torch)
AGGREGATORS: dict[str, tuple[Callable[[int], nn.Module], tuple[str, ...]]] = {
    "upgrad": (lambda tasks: jd.UPGrad(), ("quadprog", "qpsolvers")),
    "mgda": (lambda tasks: jd.MGDA(), ()),
    "cagrad": (lambda tasks: jd.CAGrad(c=0.4), ("cvxpy",)),
    "nashmtl": (lambda tasks: jd.NashMTL(n_tasks=tasks), ("cvxpy", "ecos")),
    "imtlg": (lambda tasks: jd.IMTLG(), ()),
    "alignedmtl": (lambda tasks: jd.AlignedMTL(), ()),
    "gradvac": (lambda tasks: jd.GradVac(beta=0.5), ()),
    "rlw": (lambda tasks: jd.Random(), ()),
}
# cvxpy says, on Nash-MTL's first solve, that later solves will not be faster: true, and nothing a user can act on
warnings.filterwarnings("ignore", message="You are solving a parameterized problem that is not DPP")
EXTRAS = {"upgrad": "quadprog-projector", "cagrad": "cagrad", "nashmtl": "nash-mtl"}
MISSING = {name: f'needs {", ".join(needs)}: pip install "torchjd[{EXTRAS[name]}]"'
           for name, (_, needs) in AGGREGATORS.items() if any(importlib.util.find_spec(m) is None for m in needs)}
AVAILABLE = tuple(name for name in AGGREGATORS if name not in MISSING)


def aggregator(name: str, tasks: int) -> nn.Module:
    """TorchJD's aggregator `name` for `tasks` tasks (ConfigError when unknown, or when its solver is missing)."""
    check(name in AGGREGATORS, f"Unknown aggregator {name!r}. Choose one of: {', '.join(AGGREGATORS)}.")
    check(name not in MISSING, f"The {name} aggregator {MISSING.get(name)} on the server.")
    return AGGREGATORS[name][0](tasks)


def weights(agg: nn.Module, grads: torch.Tensor) -> torch.Tensor:
    """The aggregator's weight per task `[tasks]` for the task gradients `grads [tasks, P]`: the update is `weights @ grads`."""
    return agg.weighting(grads)
