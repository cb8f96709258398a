"""What happens inside the experts, computed from a model's trace as tidy DataFrames.

Every function takes a trace (`MultiTaskModel(x, trace=True)`, or a training `Snapshot`'s) with
or without the leading `[members]` dimension, and returns one row per (member, level, gate or
expert, ...). The phenomena (docs/REFERENCES.md):
  gate utilisation and polarisation      PLE Fig. 8; gate polarisation (Zhao et al., RecSys 2019)
  expert sparsity, dead units, scale       HoME's expert collapse (an expert over 90% zeros)
  shared-expert occupancy                HoME's expert degradation (a shared expert used by one task)
  own vs shared reliance per task        HoME's expert underfitting (sparse tasks ignore their experts)
  gradient conflict between tasks        the seesaw: per-task gradients on shared experts disagree
  gate drift between snapshots           gate stability over training
"""

from __future__ import annotations

from typing import Sequence

import time

import numpy as np
import pandas as pd
import torch

from ..models import LevelTrace, MultiTaskModel
from ..train.training import Snapshot, task_losses, TrainingRun
from ..train.weighting import task_gradients

NEAR_ZERO = 0.01   # |output| below this counts as near zero (Swish is never exactly 0, ReLU often is)
POLARISED = 0.9    # a gate is polarised when its top expert takes more than this share
COLLAPSED = 0.9    # an expert has collapsed (HoME) when over this share of its outputs are exactly 0
TAKEN_OVER = 0.8   # a shared expert is taken over when one consumer holds more than this share of its gate mass


def _m(t: torch.Tensor) -> torch.Tensor:
    """Add the member dimension to a single model's trace tensor: `[batch, ...]` -> `[1, batch, ...]`."""
    return t if t.dim() == 4 else t[None]


def _levels(trace: Sequence[LevelTrace]):
    for number, level in enumerate(trace, start=1):
        yield number, level.plan, _m(level.gate_weights).double(), _m(level.expert_outputs).double()


def gate_utilisation(trace: Sequence[LevelTrace]) -> pd.DataFrame:
    """Mean and std over the batch of each gate's weight on each expert it may see (PLE's bar + std plot)."""
    rows = []
    for level, plan, weights, _ in _levels(trace):
        mean, std = weights.mean(1), weights.std(1, unbiased=False)  # [members, gates, experts]
        for m, g, e in zip(*np.nonzero(np.broadcast_to(plan.mask, mean.shape))):
            rows.append(dict(member=m, level=level, gate=plan.gate_names[g], gate_kind=plan.gate_kinds[g],
                             expert=plan.expert_names[e], expert_kind=plan.expert_kinds[e],
                             mean=mean[m, g, e].item(), std=std[m, g, e].item()))
    return pd.DataFrame(rows)


def gate_polarisation(trace: Sequence[LevelTrace], threshold: float = POLARISED) -> pd.DataFrame:
    """Per gate: normalised entropy (1 = uniform over its visible experts, 0 = one-hot, mean over samples),
    the top expert of its mean distribution and that expert's share, whether that share exceeds
    `threshold` (polarised), and the share of samples whose top weight exceeds it."""
    rows = []
    for level, plan, weights, _ in _levels(trace):
        visible = torch.as_tensor(plan.mask.sum(1), dtype=torch.float64)
        entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1).mean(1)  # [members, gates]
        normalised = torch.where(visible > 1, entropy / visible.log().clamp_min(1e-12), torch.zeros_like(entropy))
        top_weight, top = weights.mean(1).max(-1)
        sample_polarised = (weights.max(-1).values > threshold).double().mean(1)
        for m in range(weights.shape[0]):
            for g, name in enumerate(plan.gate_names):
                rows.append(dict(member=m, level=level, gate=name, entropy=normalised[m, g].item(),
                                 top_expert=plan.expert_names[top[m, g]], top_weight=top_weight[m, g].item(),
                                 polarised=bool(top_weight[m, g] > threshold),
                                 sample_polarised=sample_polarised[m, g].item()))
    return pd.DataFrame(rows)


def expert_statistics(trace: Sequence[LevelTrace], near_zero: float = NEAR_ZERO) -> pd.DataFrame:
    """Per expert, over its post-activation outputs `[batch, hidden]`: the fraction exactly zero (ReLU's
    ordinary sparsity: a unit is 0 wherever its input is negative), the fraction below `near_zero` in
    magnitude, `dead_units` (the share of its hidden units that are 0 for every sample of the batch: dead
    ReLU units), mean, std and quantiles. HoME's expert collapse is an expert whose outputs are over 90%
    zeros (`COLLAPSED`)."""
    rows, qs = [], torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
    for level, plan, _, outputs in _levels(trace):
        flat = outputs.transpose(1, 2).flatten(2)  # [members, experts, batch * hidden]
        zero, small = (flat == 0).double().mean(-1), (flat.abs() < near_zero).double().mean(-1)
        dead = (outputs == 0).all(1).double().mean(-1)  # [members, experts]: units 0 for the whole batch
        mean, std = flat.mean(-1), flat.std(-1, unbiased=False)
        quantiles = torch.quantile(flat, qs, dim=-1)  # [5, members, experts]
        for m in range(flat.shape[0]):
            for e, name in enumerate(plan.expert_names):
                rows.append(dict(member=m, level=level, expert=name, kind=plan.expert_kinds[e],
                                 zero_fraction=zero[m, e].item(), near_zero_fraction=small[m, e].item(), dead_units=dead[m, e].item(),
                                 mean=mean[m, e].item(), std=std[m, e].item(),
                                 **{f"q{int(q * 100):02d}": quantiles[i, m, e].item() for i, q in enumerate(qs)}))
    return pd.DataFrame(rows)


def expert_scale_spread(statistics: pd.DataFrame) -> pd.DataFrame:
    """Per member and level: how different the experts' output scales are (max std / min std)."""
    grouped = statistics.groupby(["member", "level"])["std"]
    return (grouped.max() / grouped.min().clip(lower=1e-12)).rename("std_max_over_min").reset_index()


def expert_occupancy(trace: Sequence[LevelTrace], threshold: float = TAKEN_OVER) -> pd.DataFrame:
    """For each shared expert, the share of its gate mass that comes from each consuming gate (task or
    group gates; the gates that feed shared experts are not consumers). `taken_over` flags an expert
    whose top consumer holds more than `threshold` (HoME's expert degradation)."""
    rows = []
    for level, plan, weights, _ in _levels(trace):
        consumers = [g for g, kind in enumerate(plan.gate_kinds) if kind != "shared"]
        if len(consumers) < 2:
            continue
        mass = weights.mean(1)[:, consumers]  # [members, consumers, experts]
        share = mass / mass.sum(1, keepdim=True).clamp_min(1e-12)
        for m in range(mass.shape[0]):
            for e in (e for e, kind in enumerate(plan.expert_kinds) if kind == "shared"):
                top = share[m, :, e].max().item()
                for c, g in enumerate(consumers):
                    rows.append(dict(member=m, level=level, expert=plan.expert_names[e], consumer=plan.gate_names[g],
                                     share=share[m, c, e].item(), top_share=top, taken_over=top > threshold))
    return pd.DataFrame(rows, columns=["member", "level", "expert", "consumer", "share", "top_share", "taken_over"])


def expert_reliance(trace: Sequence[LevelTrace], positive_rate: dict[str, float] | None = None) -> pd.DataFrame:
    """Per task gate: the share of its expert mix that comes from its own experts, its group's and the shared
    ones (HoME's expert underfitting shows as sparse tasks leaning little on their own experts). The mix is
    the gate's weights plus, with a self-gate, the self-gate's weights on the own experts (model.py adds them):
    each share is over that total, and `self_gate` is the part of it the self-gate adds. `positive_rate` maps
    task names to their positive rate (NaN for regression)."""
    rows = []
    for level, step in enumerate(trace, start=1):
        plan, gated = step.plan, _m(step.gate_weights).double().mean(1)  # [members, gates, experts]
        added = torch.zeros_like(gated) if step.self_gate_weights is None else _m(step.self_gate_weights).double().mean(1)
        total = (gated + added).sum(-1).clamp_min(1e-12)  # [members, gates]
        kinds = np.array(plan.expert_kinds)
        for m in range(gated.shape[0]):
            for g, (name, kind) in enumerate(zip(plan.gate_names, plan.gate_kinds)):
                if kind != "task":
                    continue
                w, s, t = gated[m, g].numpy(), added[m, g].numpy(), total[m, g].item()
                rows.append(dict(member=m, level=level, task=name, own=(w[plan.own[g]].sum() + s.sum()) / t,
                                 group=w[(kinds == "group") & ~plan.own[g]].sum() / t,
                                 shared=w[(kinds == "shared") & ~plan.own[g]].sum() / t, self_gate=s.sum() / t,
                                 positive_rate=(positive_rate or {}).get(name, float("nan"))))
    return pd.DataFrame(rows)


def gate_drift(before: Sequence[LevelTrace], after: Sequence[LevelTrace]) -> pd.DataFrame:
    """Jensen-Shannon divergence (nats, at most ln 2) between each gate's mean distribution in two traces."""
    rows = []
    for (level, plan, p, _), (_, _, q, _) in zip(_levels(before), _levels(after)):
        p, q = p.mean(1), q.mean(1)
        mid = (p + q) / 2
        kl = lambda a, b: (a * (a.clamp_min(1e-12) / b.clamp_min(1e-12)).log()).sum(-1)
        js = (kl(p, mid) + kl(q, mid)) / 2  # [members, gates]
        for m in range(js.shape[0]):
            for g, name in enumerate(plan.gate_names):
                rows.append(dict(member=m, level=level, gate=name, js_divergence=js[m, g].item()))
    return pd.DataFrame(rows)


def gradient_conflict(model: MultiTaskModel, x: torch.Tensor, y: torch.Tensor, is_binary: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """The tasks' loss gradients on the shared parameters (`MultiTaskModel.shared_parameters`), on batch
    x `[members, batch, features]`, y `[members, batch, tasks]`: (cosine similarity `[members, tasks, tasks]`,
    norm `[members, tasks]`). Cosine 1 = tasks pull the shared experts the same way, < 0 = they fight
    (the seesaw). NaN without shared parameters."""
    shared, tasks = model.shared_parameters(), len(is_binary)
    if not shared:
        return np.full((model.members, tasks, tasks), np.nan), np.full((model.members, tasks), np.nan)
    losses = task_losses(model(x), y, torch.tensor(is_binary, device=x.device))  # [members, tasks]
    grads = task_gradients(losses, shared).double()
    g = torch.nn.functional.normalize(grads, dim=-1)  # [members, tasks, params]
    return (g @ g.transpose(1, 2)).cpu().numpy(), grads.norm(dim=-1).cpu().numpy()


def conflict_frame(cosines: np.ndarray, task_names: Sequence[str]) -> pd.DataFrame:
    """Tidy rows (member, task_a, task_b, cosine) of a `gradient_conflict` result, each pair once."""
    return pd.DataFrame([dict(member=m, task_a=task_names[i], task_b=task_names[j], cosine=cosines[m, i, j])
                         for m in range(cosines.shape[0]) for i in range(len(task_names))
                         for j in range(i + 1, len(task_names))])


def task_frame(values: dict[str, np.ndarray], task_names: Sequence[str]) -> pd.DataFrame:
    """Tidy rows (member, task, name, value) of per-task arrays `{name: [members, tasks]}`."""
    return pd.DataFrame([dict(member=m, task=task, name=name, value=float(v[m, k])) for name, v in values.items()
                         for m in range(v.shape[0]) for k, task in enumerate(task_names)],
                        columns=["member", "task", "name", "value"])


class DiagnosticsRecorder:
    """Turns a run's `Snapshot` events into time series: call `observe(event)` for every event.

    Each snapshot adds the frames above with a `step` column; gradient conflict and the tasks' gradient
    norms on the shared parameters are measured on a fixed training batch of the snapshot's size; the
    loss weighting's state (`weighting`: each task's weight and what the weighting learns) is recorded too; gate drift compares with the previous snapshot.
    """

    def __init__(self, run: TrainingRun):
        self.run = run
        self.tables: dict[str, list[pd.DataFrame]] = {}
        self.previous: list[LevelTrace] | None = None
        self.latest: list[LevelTrace] | None = None
        self.seconds = 0.0  # time spent here, to state the diagnostics' overhead

    def observe(self, event) -> None:
        if not isinstance(event, Snapshot):
            return
        started = time.perf_counter()
        trace, names = event.trace, self.run.datasets[0].config.task_names
        rates = dict(zip(names, self.run.datasets[0].positive_rate.tolist()))
        stats = expert_statistics(trace)
        x, y = (t[:, :self.run.config.snapshot_samples] for t in self.run.splits["train"])
        was_training = self.run.model.training
        self.run.model.eval()
        conflict, norms = gradient_conflict(self.run.model, x, y, self.run.is_binary)
        self.run.model.train(was_training)
        frames = dict(gates=gate_utilisation(trace), polarisation=gate_polarisation(trace), experts=stats,
                      spread=expert_scale_spread(stats), occupancy=expert_occupancy(trace),
                      reliance=expert_reliance(trace, rates), conflict=conflict_frame(conflict, names),
                      gradients=task_frame({"grad_norm": norms}, names), weighting=task_frame(self.run.weighting.state(), names))
        if self.previous is not None:
            frames["drift"] = gate_drift(self.previous, trace)
        for name, frame in frames.items():
            self.tables.setdefault(name, []).append(frame.assign(step=event.step))
        self.previous = self.latest = trace
        self.seconds += time.perf_counter() - started

    def frame(self, name: str) -> pd.DataFrame:
        """All snapshots of one table ("gates", "experts", "conflict", ...), stacked."""
        return pd.concat(self.tables.get(name, []), ignore_index=True)
