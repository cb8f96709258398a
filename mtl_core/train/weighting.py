"""Loss weightings: how per-task losses become one update. One contract, any architecture.

A weighting is an `nn.Module` with
  forward(task_losses `[members, tasks]`) -> the loss to minimise `[members]`;
  backward(task_losses, model, penalty)  -> fills the parameters' gradients (default: backward of
      forward's sum plus the penalty; gradient-based weightings look at each task's gradient on the
      model's shared parameters first, `MultiTaskModel.shared_parameters`);
  new_epoch()                            -> called by the trainer between epochs;
  state()                                -> `{name: [members, tasks]}` for the charts; every weighting
      reports `weight`, the factor its update applies to each task's loss now.
Its parameters, if any, are trained with the model by the same optimiser.

| name        | paper (docs/REFERENCES.md)           | choices where the paper is silent |
|-------------|--------------------------------------|-----------------------------------|
| equal       | the sum of task losses               |                                   |
| fixed       | Σ w_k L_k, weights chosen by the user |                                   |
| uncertainty | Kendall, Gal & Cipolla, CVPR 2018    | s_k = log σ_k² starts at 0; binary tasks use the classification form |
| gradnorm    | Chen et al., ICML 2018               | W = all shared experts' parameters (the paper: the last shared layer), weights renormalised to Σ w = K before each step, clamped at 0.01 |
| dwa         | Liu, Johns & Davison, CVPR 2019      | T = 2; "epoch" = one pass over the training split |
| pcgrad      | Yu et al., NeurIPS 2020              | projected on the shared experts' parameters only, against the other tasks' unprojected gradients, in a random order per step (seeded) |
| famo        | Liu et al., NeurIPS 2023 (FAMO)      | the loss decrease that moves the logits is measured on the next step's batch (the paper runs the model on the same batch again: one more forward per step); the logits' own Adam, lr 0.025, weight decay 0.001 (the paper's) |
| upgrad ... rlw | aggregators.py (TorchJD)          | see there |

Without shared parameters (single-task columns, L2-Constrained), GradNorm keeps equal weights and PCGrad
is the plain sum: there is nothing shared to balance.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..config import check
from . import aggregators

WEIGHTINGS = ("equal", "fixed", "uncertainty", "gradnorm", "dwa", "pcgrad", "famo", *aggregators.AVAILABLE)
STATE_TITLES = {"weight": "weight on the task's loss", "log_variance": "learned log variance s = log σ²",
                "weighted_grad_norm": "weighted gradient norm G", "conflict_share": "share of comparisons in conflict",
                "removed_share": "share of the gradient projected away"}   # what `state()` reports, in words
GRADNORM_ALPHA = 1.5   # the paper's value for its NYUv2 experiments; --gradnorm-alpha / ?gn_alpha change it
# What each weighting does, in a student's words (the Playground and Inside the experts show it under the knob).
WEIGHTING_NOTES = {
    "equal": "Every task's loss counts once: the weights stay at 1. Compare with a weighting that moves them.",
    "fixed": "The weights you set; they do not move.",
    "uncertainty": "Kendall et al.: each task learns a variance σ²; its loss is weighted by 1/σ² (regression: 1/(2σ²)). "
                   "A noisier task learns a larger σ² and gets less weight.",
    "gradnorm": "Chen et al.: the weights move so that each task's weighted gradient norm on the shared experts tracks "
                "how far behind the task is. Watch a large-loss task's weight fall and the weighted norms come together.",
    "dwa": "Liu et al.: after two epochs, a task whose loss fell less in the last epoch gets more weight (the weights sum "
           "to the number of tasks).",
    "pcgrad": "Yu et al.: the weights stay at 1, but a task's gradient loses its part that points against another task's. "
              "The right panels show how often that happened and how much of the gradient was removed.",
    "famo": "Liu et al.: each task's loss is taken in log space and weighted so that every task's loss falls at about the "
            "same rate; a task whose loss fell less gets more weight next. One backward pass per step.",
    "upgrad": "Quinton & Rey (TorchJD): each task's gradient is projected so that it conflicts with no task's gradient, and "
              "the projections are averaged: no task's loss rises, to first order.",
    "mgda": "Sener & Koltun: the shortest update in the hull of the tasks' gradients, a step that decreases every task; the "
            "shortest point lies towards the smallest gradient, so a task with a small gradient can take nearly all the weight.",
    "cagrad": "Liu et al.: the update that helps the worst-off task most while staying close to the average gradient.",
    "nashmtl": "Navon et al.: the tasks bargain over the update (a Nash bargaining solution); a task with a large gradient "
               "gets a small weight.",
    "imtlg": "Liu et al.: the weights make the update's projection on every task's gradient direction equal.",
    "alignedmtl": "Senushkin et al.: the tasks' gradients are made orthogonal and of one length before they are added, so no "
                  "task dominates.",
    "gradvac": "Wang et al.: like PCGrad, but each pair of tasks is pulled towards the cosine it has had on average, not only "
               "to zero.",
    "rlw": "Lin et al.: random weights, drawn anew every step (a softmax of normal draws): the baseline every adaptive "
           "weighting should beat.",
}


def task_gradients(task_losses: torch.Tensor, shared: Sequence[tuple[nn.Parameter, list[int]]]) -> torch.Tensor:
    """Each task's gradient on the shared slices `(parameter [members, experts, ...], expert indices)`:
    `[members, tasks, P]` (members are independent models, so one backward per task serves them all).
    Keeps the graph, so the caller can still backward through `task_losses`."""
    params = [p for p, _ in shared]
    grads = []
    for k in range(task_losses.shape[1]):
        g = torch.autograd.grad(task_losses[:, k].sum(), params, retain_graph=True, allow_unused=True)
        grads.append(torch.cat([(gi if gi is not None else torch.zeros_like(p))[:, idx].flatten(1)
                                for gi, (p, idx) in zip(g, shared)], dim=1))
    return torch.stack(grads, 1)


def add_to_shared_grads(shared: Sequence[tuple[nn.Parameter, list[int]]], change: torch.Tensor) -> None:
    """Add `change [members, P]` (laid out as `task_gradients` lays out P) to the shared slices' gradients."""
    offset = 0
    for p, idx in shared:
        part = p.grad[:, idx]
        size = part[0].numel()
        p.grad[:, idx] = part + change[:, offset:offset + size].reshape(part.shape)
        offset += size


class Weighting(nn.Module):
    """Equal weights; the base of every weighting (see the module docstring for the contract)."""

    def __init__(self, tasks: int, members: int = 1):
        super().__init__()
        self.tasks, self.members = tasks, members

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        return task_losses.sum(-1)

    def backward(self, task_losses: torch.Tensor, model: nn.Module, penalty: torch.Tensor | None = None) -> None:
        loss = self(task_losses).sum()
        (loss if penalty is None else loss + penalty.sum()).backward()

    def new_epoch(self) -> None:
        pass

    def weights(self) -> torch.Tensor:
        """The factor on each task's loss now, `[members, tasks]`."""
        return torch.ones(self.members, self.tasks)

    def state(self) -> dict[str, np.ndarray]:
        return {"weight": self.weights().detach().float().cpu().numpy()}


class FixedWeighting(Weighting):
    """Σ_k w_k L_k with weights the user chose."""

    def __init__(self, weights: Sequence[float], members: int = 1):
        super().__init__(len(weights), members)
        self.register_buffer("fixed", torch.tensor(weights, dtype=torch.float32))

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        return (task_losses * self.fixed).sum(-1)

    def weights(self) -> torch.Tensor:
        return self.fixed.expand(self.members, -1)


class UncertaintyWeighting(Weighting):
    """Kendall, Gal & Cipolla (CVPR 2018), with learned s_k = log σ_k² per member and task:
    regression 0.5·exp(−s)·L + 0.5·s, binary (treated as classification) exp(−s)·L + 0.5·s; s starts at 0.
    At the optimum exp(s_k) equals the task's loss (its noise variance for a regression task)."""

    def __init__(self, is_binary: Sequence[bool], members: int = 1):
        super().__init__(len(is_binary), members)
        self.log_variance = nn.Parameter(torch.zeros(members, len(is_binary)))
        self.register_buffer("scale", torch.tensor([1.0 if b else 0.5 for b in is_binary]))

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        s = self.log_variance
        return (self.scale * torch.exp(-s) * task_losses + 0.5 * s).sum(-1)

    def weights(self) -> torch.Tensor:
        return self.scale * torch.exp(-self.log_variance)

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), "log_variance": self.log_variance.detach().cpu().numpy()}


class GradNorm(Weighting):
    """Chen et al. (ICML 2018): learned weights w_k; with G_k = w_k·‖∇_W L_k‖ on the shared
    parameters W, r_k = (L_k/L_k(0)) / mean_j(L_j/L_j(0)) and the target Ḡ·r_k^α held constant, the
    weights descend Σ_k |G_k − Ḡ·r_k^α|, whose gradient is sign(G_k − target_k)·‖∇_W L_k‖ (no second
    backward needed). Tasks that learn slower (large r) get a larger gradient share."""

    def __init__(self, tasks: int, members: int = 1, alpha: float = GRADNORM_ALPHA):
        super().__init__(tasks, members)
        self.alpha = alpha
        self.weight = nn.Parameter(torch.ones(members, tasks))
        self.register_buffer("initial_loss", torch.full((members, tasks), float("nan")))
        self.register_buffer("grad_norm", torch.zeros(members, tasks))

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        return (self.weight.detach() * task_losses).sum(-1)

    def backward(self, task_losses: torch.Tensor, model: nn.Module, penalty: torch.Tensor | None = None) -> None:
        with torch.no_grad():
            self.weight.clamp_(min=0.01).mul_(self.tasks / self.weight.sum(-1, keepdim=True))
            losses = task_losses.detach()
            self.initial_loss.copy_(torch.where(self.initial_loss.isnan(), losses, self.initial_loss))
        shared = model.shared_parameters()
        if shared:
            norms = task_gradients(task_losses, shared).norm(dim=-1)   # ‖∇_W L_k‖ [members, tasks]
            with torch.no_grad():
                g = self.weight * norms
                ratio = losses / self.initial_loss.clamp_min(1e-12)
                target = g.mean(-1, keepdim=True) * (ratio / ratio.mean(-1, keepdim=True)) ** self.alpha
                self.grad_norm.copy_(g)
        super().backward(task_losses, model, penalty)
        if shared:
            self.weight.grad = torch.sign(g - target) * norms

    def weights(self) -> torch.Tensor:
        return self.weight

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), "weighted_grad_norm": self.grad_norm.cpu().numpy()}


class DynamicWeightAverage(Weighting):
    """Liu, Johns & Davison (CVPR 2019): w_k = K·softmax_k(r_k / T), r_k = L_k(t−1)/L_k(t−2) from
    the two previous epochs' mean training losses; w = 1 for the first two epochs. A task whose loss
    fell less last epoch gets more weight."""

    def __init__(self, tasks: int, members: int = 1, temperature: float = 2.0):
        super().__init__(tasks, members)
        self.temperature = temperature
        self.register_buffer("weight", torch.ones(members, tasks))
        self.register_buffer("epoch_sum", torch.zeros(members, tasks))
        self.register_buffer("epoch_means", torch.full((2, members, tasks), float("nan")))  # [t-2, t-1]
        self.steps = 0

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        return (self.weight * task_losses).sum(-1)

    def backward(self, task_losses: torch.Tensor, model: nn.Module, penalty: torch.Tensor | None = None) -> None:
        self.epoch_sum += task_losses.detach()
        self.steps += 1
        super().backward(task_losses, model, penalty)

    def new_epoch(self) -> None:
        if not self.steps:
            return
        self.epoch_means = torch.stack([self.epoch_means[1], self.epoch_sum / self.steps])
        self.epoch_sum.zero_()
        self.steps = 0
        if not self.epoch_means.isnan().any():
            ratio = self.epoch_means[1] / self.epoch_means[0].clamp_min(1e-12)
            self.weight = self.tasks * torch.softmax(ratio / self.temperature, dim=-1)

    def weights(self) -> torch.Tensor:
        return self.weight


class PCGrad(Weighting):
    """Yu et al., gradient surgery (NeurIPS 2020): each task's gradient on the shared parameters loses its
    component along any other task's gradient it conflicts with (negative dot product), the others
    taken in a random order; the shared parameters get the sum of the projected gradients, the rest
    their usual gradients. `state` adds, per task, the share of its comparisons that conflicted and the
    share of its gradient's norm the projections removed (moving averages over about 50 steps)."""

    DECAY = 0.98

    def __init__(self, tasks: int, members: int = 1, seed: int = 0):
        super().__init__(tasks, members)
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("conflicts", torch.zeros(members, tasks))
        self.register_buffer("removed", torch.zeros(members, tasks))

    def backward(self, task_losses: torch.Tensor, model: nn.Module, penalty: torch.Tensor | None = None) -> None:
        shared = model.shared_parameters()
        if not shared or self.tasks < 2:
            return super().backward(task_losses, model, penalty)
        grads = task_gradients(task_losses, shared).detach()   # [members, tasks, P]
        projected, conflicts = project_conflicting(grads, self.generator)
        super().backward(task_losses, model, penalty)
        add_to_shared_grads(shared, (projected - grads).sum(1))
        removed = (projected - grads).norm(dim=-1) / grads.norm(dim=-1).clamp_min(1e-12)
        self.conflicts.mul_(self.DECAY).add_((1 - self.DECAY) * conflicts)
        self.removed.mul_(self.DECAY).add_((1 - self.DECAY) * removed)

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), "conflict_share": self.conflicts.cpu().numpy(), "removed_share": self.removed.cpu().numpy()}


def project_conflicting(grads: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PCGrad's projection of `grads [members, tasks, P]`: (projected `[members, tasks, P]`, share of each
    task's comparisons with the other tasks that conflicted `[members, tasks]`)."""
    members, tasks, _ = grads.shape
    squared = grads.square().sum(-1).clamp_min(1e-20)   # [members, tasks]
    projected, conflicts = grads.clone(), torch.zeros(members, tasks, device=grads.device)
    for i in range(tasks):
        others = [j for j in torch.randperm(tasks, generator=generator).tolist() if j != i]
        for j in others:
            dot = (projected[:, i] * grads[:, j]).sum(-1)   # [members]
            conflict = dot < 0
            projected[:, i] -= torch.where(conflict, dot / squared[:, j], 0.0)[:, None] * grads[:, j]
            conflicts[:, i] += conflict.float() / len(others)
    return projected, conflicts


class FAMO(Weighting):
    """Liu, Liu, Jin, Stone & Liu, FAMO: Fast Adaptive Multitask Optimization (NeurIPS 2023), Algorithm 1: logits ξ,
    z = softmax(ξ); the model descends Σ_k z_k log L_k scaled by c = 1 / Σ_k (z_k / L_k), so task k's gradient gets the
    weight c z_k / L_k; ξ descends Jzᵀ δ with δ_k = log L_k(t−1) − log L_k(t), the last step's decrease of each log
    loss (measured on this step's batch: the module docstring's choice), by its own Adam (lr 0.025, weight decay 0.001)."""

    LR, DECAY, EPS = 0.025, 0.001, 1e-8

    def __init__(self, tasks: int, members: int = 1):
        super().__init__(tasks, members)
        self.register_buffer("logits", torch.zeros(members, tasks))
        self.register_buffer("previous", torch.full((members, tasks), float("nan")))
        self.register_buffer("weight", torch.ones(members, tasks))
        self._own: dict = {}   # the logits' copy and Adam, made on first use (on the module's device); not the model's

    def forward(self, task_losses: torch.Tensor) -> torch.Tensor:
        logs = (task_losses + self.EPS).log()
        z = torch.softmax(self.logits, -1)
        c = 1 / (z / (task_losses.detach() + self.EPS)).sum(-1, keepdim=True)
        return (c * z * logs).sum(-1)

    def backward(self, task_losses: torch.Tensor, model: nn.Module, penalty: torch.Tensor | None = None) -> None:
        losses = task_losses.detach()
        if not self.previous.isnan().any():
            logits = self.logits.clone().requires_grad_(True)
            if not self._own:
                parameter = nn.Parameter(self.logits.clone())
                self._own.update(parameter=parameter, adam=torch.optim.Adam([parameter], lr=self.LR, weight_decay=self.DECAY))
            decrease = (self.previous + self.EPS).log() - (losses + self.EPS).log()   # δ [members, tasks]
            self._own["parameter"].grad = torch.autograd.grad(torch.softmax(logits, -1), logits, grad_outputs=decrease)[0]
            self._own["adam"].step()
            self.logits.copy_(self._own["parameter"].detach())
        self.previous.copy_(losses)
        z = torch.softmax(self.logits, -1)
        self.weight.copy_(z / (losses + self.EPS) / (z / (losses + self.EPS)).sum(-1, keepdim=True))
        super().backward(task_losses, model, penalty)

    def weights(self) -> torch.Tensor:
        return self.weight


class Aggregated(Weighting):
    """A TorchJD aggregator (aggregators.py) on the shared parameters: each member's task gradients `[tasks, P]` get
    the aggregator's weights, the shared parameters the weighted sum, the rest their usual gradients; `weight` is the
    aggregator's weight on each task's gradient this step. Each member has its own aggregator (some keep state)."""

    def __init__(self, name: str, tasks: int, members: int = 1):
        super().__init__(tasks, members)
        self.name = name
        self.aggregators = [aggregators.aggregator(name, tasks) for _ in range(members)]
        self.register_buffer("weight", torch.ones(members, tasks))

    def backward(self, task_losses: torch.Tensor, model: nn.Module, penalty: torch.Tensor | None = None) -> None:
        shared = model.shared_parameters()
        if not shared or self.tasks < 2:
            return super().backward(task_losses, model, penalty)
        grads = task_gradients(task_losses, shared).detach()   # [members, tasks, P]
        w = torch.stack([aggregators.weights(agg, g) for agg, g in zip(self.aggregators, grads)]).to(grads)
        super().backward(task_losses, model, penalty)
        add_to_shared_grads(shared, (w[:, :, None] * grads).sum(1) - grads.sum(1))
        self.weight.copy_(w)

    def weights(self) -> torch.Tensor:
        return self.weight


def make_weighting(name: str, is_binary: Sequence[bool], members: int = 1, task_weights: Sequence[float] | None = None,
                   gradnorm_alpha: float = GRADNORM_ALPHA, seed: int = 0) -> Weighting:
    check(name not in aggregators.MISSING, f"The {name} weighting {aggregators.MISSING.get(name)} on the server.")
    check(name in WEIGHTINGS, f"Unknown loss weighting '{name}'. Choose one of: {', '.join(WEIGHTINGS)}.")
    tasks = len(is_binary)
    if name == "fixed":
        check(task_weights is not None and len(task_weights) == tasks,
              f"Fixed weighting needs one weight per task ({tasks}), got {task_weights}.")
        return FixedWeighting(task_weights, members)
    if name == "uncertainty":
        return UncertaintyWeighting(is_binary, members)
    if name == "gradnorm":
        return GradNorm(tasks, members, gradnorm_alpha)
    if name == "dwa":
        return DynamicWeightAverage(tasks, members)
    if name == "pcgrad":
        return PCGrad(tasks, members, seed)
    if name == "famo":
        return FAMO(tasks, members)
    if name in aggregators.AGGREGATORS:
        return Aggregated(name, tasks, members)
    return Weighting(tasks, members)
