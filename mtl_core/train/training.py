"""Training as a stream of events.

    run = TrainingRun(model, dataset, TrainConfig(lr=1e-3, epochs=10))
    for event in run.events():      # stop iterating = cancel; hold the iterator = pause
        ...                          # run.lr = 3e-3 applies from the next step on

Data are moved to the device once; batches are taken by index; the loop syncs with the host only
at event points. Several members (a grid of seeds or correlations of one architecture) train
together when the model has `members > 1` and one dataset is given per member: their losses are
summed, so each member receives exactly its own gradient and Adam updates each independently.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..config import check
from ..data.funnel import funnel_metrics
from ..data.synthetic import Dataset
from ..models import LevelTrace, MultiTaskModel
from ..models.registry import REGISTRY
from .device import DEVICES, resolve_device
from .memory import keep_freed_memory
from .metrics import task_metrics
from .weighting import GRADNORM_ALPHA, WEIGHTINGS, make_weighting

EVAL_CHUNK = 8192
FUSED_ADAM_DEVICES = ("cpu", "cuda")  # one fused kernel per step instead of one op per parameter tensor


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. `steps`, when given, overrides `epochs`.
    `eval_every` N steps: an `Evaluation` on validation and test (None = once per epoch, 0 = only the
    final one). `snapshot_every` N: a `Snapshot` of the model's trace on a fixed validation batch for
    diagnostics (None = never, so training does not pay for it; 0 = only at the end)."""

    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 10
    steps: int | None = None
    weighting: str = "equal"
    task_weights: tuple[float, ...] | None = None
    freeze_gates_after: int | None = None
    gradnorm_alpha: float = GRADNORM_ALPHA
    log_every: int = 25
    eval_every: int | None = None
    snapshot_every: int | None = None
    snapshot_samples: int = 1024
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check(0 < self.lr <= 1, f"Learning rate must be in (0, 1], got {self.lr}.")
        check(1 <= self.batch_size <= 65536, f"Batch size must be between 1 and 65536, got {self.batch_size}.")
        check(1 <= self.epochs <= 10_000, f"Epochs must be between 1 and 10000, got {self.epochs}.")
        check(self.steps is None or self.steps >= 1, f"Steps must be at least 1, got {self.steps}.")
        check(self.weighting in WEIGHTINGS, f"Unknown loss weighting '{self.weighting}'. Choose one of: {', '.join(WEIGHTINGS)}.")
        check(self.freeze_gates_after is None or self.freeze_gates_after >= 0,
              f"freeze_gates_after must be 0 or more steps, got {self.freeze_gates_after}.")
        check(0 <= self.gradnorm_alpha <= 10, f"gradnorm_alpha must be between 0 and 10, got {self.gradnorm_alpha}.")
        check(self.log_every >= 1, f"log_every must be at least 1, got {self.log_every}.")
        check(self.eval_every is None or self.eval_every >= 0, f"eval_every must be 0 or more steps, got {self.eval_every}.")
        check(self.snapshot_every is None or self.snapshot_every >= 0,
              f"snapshot_every must be 0 or more steps, got {self.snapshot_every}.")
        check(self.snapshot_samples >= 2, f"snapshot_samples must be at least 2, got {self.snapshot_samples}.")
        check(self.device in DEVICES, f"Unknown device '{self.device}'. Choose one of: {', '.join(DEVICES)}.")


@dataclass(frozen=True)
class Progress:
    """Mean per-task training loss since the previous Progress: `train_loss [members, tasks]`."""

    step: int
    epoch: float
    lr: float
    train_loss: np.ndarray
    weighting: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """Per-task metrics on the validation and test splits, tidy: member, split, task, metric, value."""

    step: int
    epoch: float
    metrics: pd.DataFrame


@dataclass(frozen=True)
class Snapshot:
    """The model's trace (see `MultiTaskModel`) on the first `snapshot_samples` validation samples,
    in evaluation mode, on the CPU; each tensor has a leading `[members]` dimension."""

    step: int
    epoch: float
    trace: list[LevelTrace]


@dataclass(frozen=True)
class Diverged:
    """Members whose loss became NaN or infinite at `step`; they stop learning anything useful."""

    step: int
    members: tuple[int, ...]
    message: str


@dataclass(frozen=True)
class Finished:
    step: int
    seconds: float
    metrics: pd.DataFrame


Event = Progress | Evaluation | Snapshot | Diverged | Finished


def task_losses(predictions: torch.Tensor, targets: torch.Tensor, is_binary: torch.Tensor) -> torch.Tensor:
    """predictions, targets `[members, batch, tasks]` -> `[members, tasks]`: MSE, or BCE with logits for binary tasks."""
    mse = (predictions - targets).square()
    bce = F.binary_cross_entropy_with_logits(predictions, targets, reduction="none")
    return torch.where(is_binary, bce, mse).mean(1)


COUNTERFACTUAL_WEIGHT, GLOBAL_WEIGHT = 0.5, 0.5   # ESCM²'s lambda_c and lambda_g (Wang et al., SIGIR 2022); a design choice
PROPENSITY_FLOOR = 1e-3                           # pCTR below it counts as it, so that no weight is infinite


def funnel_losses(logits: torch.Tensor, targets: torch.Tensor, head: str) -> torch.Tensor:
    """A funnel head's two losses `[members, 2]` from logits `[members, batch, 2 or 3]` and targets
    `[members, batch, 2]` (click, click·conversion).

    Every head learns the click on every impression: BCE(click, pCTR). Then, for the conversion:
      "clicked"  BCE(conversion, pCVR) over the clicked impressions of the batch only (the usual CVR model);
      "esmm"     BCE(click·conversion, pCTR·pCVR) on every impression (Ma et al., SIGIR 2018): pCVR is never told
                 a conversion label on its own, only through the product (computed in log space);
      "ips"      ESCM²-IPS (Wang et al., SIGIR 2022): GLOBAL_WEIGHT x ESMM's loss plus
                 COUNTERFACTUAL_WEIGHT x the clicked impressions' BCE(conversion, pCVR), each weighted by
                 1 / pCTR. The propensity pCTR is the CTR tower's, held fixed (no gradient) and floored at
                 PROPENSITY_FLOOR; the weighted mean is self-normalised over the batch's clicks (divided by
                 the sum of the weights, not the batch size), our choice against the variance of 1 / pCTR;
      "dr"       ESCM²-DR: the third logit is an imputation tower's estimate e_hat = softplus(logit) of the
                 CVR loss e on every impression. Counterfactual loss = mean of e_hat over all impressions +
                 the weighted mean over clicked ones of (e - e_hat), plus the imputation's own loss, the
                 weighted mean over clicked ones of (e - e_hat)^2; weights as for "ips", trained jointly.
    """
    click, converted = targets[..., 0], targets[..., 1]
    ctr_loss = F.binary_cross_entropy_with_logits(logits[..., 0], click, reduction="none").mean(1)
    if head == "clicked":
        bce = F.binary_cross_entropy_with_logits(logits[..., 1], converted, reduction="none")
        return torch.stack([ctr_loss, (bce * click).sum(1) / click.sum(1).clamp_min(1)], -1)
    log_p = F.logsigmoid(logits[..., 0]) + F.logsigmoid(logits[..., 1])            # log pCTCVR
    log_not_p = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))                    # log(1 - pCTCVR)
    ctcvr_loss = -(converted * log_p + (1 - converted) * log_not_p).mean(1)
    if head == "esmm":
        return torch.stack([ctr_loss, ctcvr_loss], -1)
    weight = click / torch.sigmoid(logits[..., 0]).detach().clamp_min(PROPENSITY_FLOOR)     # [members, batch]
    weighted_mean = lambda values: (weight * values).sum(1) / weight.sum(1).clamp_min(1e-12)
    error = F.binary_cross_entropy_with_logits(logits[..., 1], converted, reduction="none")   # conversion seen on clicks only
    if head == "ips":
        counterfactual = weighted_mean(error)
    else:
        imputed = F.softplus(logits[..., 2])
        counterfactual = imputed.mean(1) + weighted_mean(error - imputed) + weighted_mean((error - imputed).square())
    return torch.stack([ctr_loss, GLOBAL_WEIGHT * ctcvr_loss + COUNTERFACTUAL_WEIGHT * counterfactual], -1)


class TrainingRun:
    """One model (of one or more members) being trained; `events()` drives it."""

    def __init__(self, model: MultiTaskModel, data: Dataset | Sequence[Dataset], config: TrainConfig,
                 member_seeds: Sequence[int] | None = None):
        datasets = [data] if isinstance(data, Dataset) else list(data)
        keep_freed_memory()
        check(len(datasets) == model.members, f"Give one dataset per model member ({model.members}), got {len(datasets)}.")
        self.datasets, self.config = datasets, config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.is_binary = datasets[0].config.is_binary
        self.funnel = REGISTRY[model.config.arch].funnel
        check(self.funnel is None or datasets[0].config.funnel,
              f"{REGISTRY[model.config.arch].label} models a click -> conversion funnel; train it on funnel data.")
        self.weighting = make_weighting(config.weighting, self.is_binary, model.members, config.task_weights,
                                        config.gradnorm_alpha, config.seed).to(self.device)
        self.optimizer = torch.optim.Adam([*self.model.parameters(), *self.weighting.parameters()], lr=config.lr,
                                          fused=self.device.type in FUSED_ADAM_DEVICES)
        self.seeds = list(member_seeds) if member_seeds is not None else [config.seed] * model.members
        first = datasets[0]
        self.shared_data = all(d.train is first.train and d.validation is first.validation and d.test is first.test for d in datasets)
        self.splits = {name: self._stack(name) for name in ("train", "validation", "test")}
        self.steps_per_epoch = math.ceil(self.splits["train"][0].shape[1] / config.batch_size)
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch
        self.step = 0

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        check(0 < value <= 1, f"Learning rate must be in (0, 1], got {value}.")
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def _stack(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """x `[members, n, features]`, y `[members, n, tasks]` on the device. When every member trains
        on the same splits (real data: seeds only change the model), one copy is expanded, not stacked."""
        parts = [d.split(split) for d in self.datasets]
        if self.shared_data:
            members = len(parts)
            return tuple(torch.as_tensor(t, device=self.device)[None].expand(members, -1, -1) for t in (parts[0].x, parts[0].y))
        x = torch.as_tensor(np.stack([p.x for p in parts]), device=self.device)
        y = torch.as_tensor(np.stack([p.y for p in parts]), device=self.device)
        return x, y

    def events(self) -> Iterator[Event]:
        cfg, model = self.config, self.model
        x, y = self.splits["train"]
        members, n = x.shape[:2]
        is_binary = torch.tensor(self.is_binary, device=self.device)
        generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        # A batch is one index_select of rows of the members' data laid end to end.
        if self.shared_data:
            x_rows, y_rows, member_offset = x[0], y[0], 0
        else:
            x_rows, y_rows = x.reshape(members * n, -1), y.reshape(members * n, -1)
            member_offset = torch.arange(members, device=self.device)[:, None] * n
        loss_sum = torch.zeros(members, len(self.is_binary), device=self.device)
        first_bad = torch.full((members,), -1, device=self.device)
        reported: set[int] = set()
        eval_every = self.steps_per_epoch if cfg.eval_every is None else cfg.eval_every or self.total_steps
        snapshot_every = None if cfg.snapshot_every is None else cfg.snapshot_every or self.total_steps
        started, since_log = time.perf_counter(), 0
        model.train()
        while self.step < self.total_steps:
            if self.step:
                self.weighting.new_epoch()
            order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(self.device) + member_offset
            for start in range(0, n, cfg.batch_size):
                if self.step >= self.total_steps:
                    break
                if cfg.freeze_gates_after is not None and self.step == cfg.freeze_gates_after:
                    for p in model.gate_parameters():
                        p.requires_grad_(False)
                        p.grad = None
                rows = order[:, start:start + cfg.batch_size].flatten()
                predictions = model(x_rows.index_select(0, rows).view(members, -1, x.shape[2]))
                targets = y_rows.index_select(0, rows).view(members, -1, y.shape[2])
                losses = task_losses(predictions, targets, is_binary) if self.funnel is None else \
                    funnel_losses(predictions, targets, self.funnel)
                self.optimizer.zero_grad(set_to_none=True)
                self.weighting.backward(losses, model, model.penalty())
                self.optimizer.step()
                self.step += 1
                since_log += 1
                loss_sum += losses.detach()
                bad = ~torch.isfinite(losses).all(-1)
                first_bad = torch.where((first_bad < 0) & bad, self.step, first_bad)

                # A step's events come in this order, Progress last (a caller that stops after a
                # Progress has seen everything about that step): Evaluation, Snapshot, Progress, Diverged.
                if self.step % eval_every == 0 and self.step != self.total_steps:
                    yield Evaluation(self.step, self.step / self.steps_per_epoch, self.evaluate())
                if snapshot_every and (self.step % snapshot_every == 0 or self.step == self.total_steps):
                    yield Snapshot(self.step, self.step / self.steps_per_epoch, self.trace())
                if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                    yield Progress(self.step, self.step / self.steps_per_epoch, self.lr,
                                   (loss_sum / since_log).cpu().numpy(), self.weighting.state())
                    loss_sum.zero_()
                    since_log = 0
                    diverged = self._newly_diverged(first_bad, reported)
                    if diverged is not None:
                        yield diverged
                        if len(reported) == members:
                            return
        yield Finished(self.step, time.perf_counter() - started, self.evaluate())

    def _newly_diverged(self, first_bad: torch.Tensor, reported: set[int]) -> Diverged | None:
        bad_steps = first_bad.cpu().tolist()
        new = [m for m, s in enumerate(bad_steps) if s >= 0 and m not in reported]
        if not new:
            return None
        reported.update(new)
        step = min(bad_steps[m] for m in new)
        who = "The loss" if self.model.members == 1 else f"The loss of member(s) {', '.join(map(str, new))}"
        return Diverged(step, tuple(new), f"{who} became NaN or infinite at step {step} (learning rate {self.lr:g}). "
                                          "Training stopped there; try a lower learning rate, e.g. 10x smaller.")

    @torch.no_grad()
    def trace(self) -> list[LevelTrace]:
        """The trace on the fixed snapshot batch, in evaluation mode, moved to the CPU."""
        x = self.splits["validation"][0][:, :self.config.snapshot_samples]
        was_training = self.model.training
        self.model.eval()
        _, trace = self.model(x, trace=True)
        self.model.train(was_training)
        cpu = lambda t: None if t is None else t.float().cpu()
        return [LevelTrace(t.plan, cpu(t.gate_weights), cpu(t.self_gate_weights), cpu(t.expert_outputs)) for t in trace]

    @torch.no_grad()
    def predict(self, split: str) -> np.ndarray:
        """Predictions `[members, n, tasks]` on a split, in evaluation mode (running norm statistics)."""
        x, _ = self.splits[split]
        was_training = self.model.training
        self.model.eval()
        out = torch.cat([self.model(x[:, i:i + EVAL_CHUNK]) for i in range(0, x.shape[1], EVAL_CHUNK)], dim=1)
        self.model.train(was_training)
        return out.float().cpu().numpy()

    def evaluate(self, splits: Sequence[str] = ("validation", "test")) -> pd.DataFrame:
        rows = []
        for split in splits:
            predictions = self.predict(split)
            for m, dataset in enumerate(self.datasets):
                part = dataset.split(split)
                values_per_task = funnel_metrics(part, predictions[m], self.funnel) if dataset.config.funnel \
                    else task_metrics(part.y, predictions[m], part.users, self.is_binary)
                for task, values in zip(dataset.config.task_names, values_per_task):
                    rows += [dict(member=m, split=split, task=task, metric=k, value=v) for k, v in values.items()]
        return pd.DataFrame(rows, columns=["member", "split", "task", "metric", "value"])
