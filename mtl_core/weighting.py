"""Loss weightings: how per-task losses become one loss. One contract, any architecture.

A weighting is an `nn.Module`: forward(task_losses `[members, tasks]`) -> loss `[members]`.
Its parameters, if any, are trained with the model; `state()` returns what the app shows.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .config import check

WEIGHTINGS = ("equal", "fixed", "uncertainty")


class EqualWeighting(nn.Module):
    """Sum of task losses."""

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        return task_losses.sum(-1)

    def state(self) -> dict[str, np.ndarray]:
        return {}


class FixedWeighting(nn.Module):
    """Σ_k w_k L_k with weights the user chose."""

    def __init__(self, weights: Sequence[float]):
        super().__init__()
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        return (task_losses * self.weights).sum(-1)

    def state(self) -> dict[str, np.ndarray]:
        return {"weight": self.weights.cpu().numpy()}


class UncertaintyWeighting(nn.Module):
    """Kendall, Gal & Cipolla (papers.md §4), with learned s_k = log σ_k² per member and task:
    regression 0.5·exp(−s)·L + 0.5·s, binary (treated as classification) exp(−s)·L + 0.5·s; s starts at 0."""

    def __init__(self, is_binary: Sequence[bool], members: int = 1):
        super().__init__()
        self.log_variance = nn.Parameter(torch.zeros(members, len(is_binary)))
        self.register_buffer("scale", torch.tensor([1.0 if b else 0.5 for b in is_binary]))

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        s = self.log_variance
        return (self.scale * torch.exp(-s) * task_losses + 0.5 * s).sum(-1)

    def state(self) -> dict[str, np.ndarray]:
        s = self.log_variance.detach().cpu()
        return {"log_variance": s.numpy(), "weight": (self.scale * torch.exp(-s)).numpy()}


def make_weighting(name: str, is_binary: Sequence[bool], members: int = 1,
                   task_weights: Sequence[float] | None = None) -> nn.Module:
    check(name in WEIGHTINGS, f"Unknown loss weighting '{name}'. Choose one of: {', '.join(WEIGHTINGS)}.")
    if name == "fixed":
        check(task_weights is not None and len(task_weights) == len(is_binary),
              f"Fixed weighting needs one weight per task ({len(is_binary)}), got {task_weights}.")
        return FixedWeighting(task_weights)
    if name == "uncertainty":
        return UncertaintyWeighting(is_binary, members)
    return EqualWeighting()
