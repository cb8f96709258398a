"""The one model class: levels of (expert bank, gate bank) following a routing plan, then towers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelConfig
from .gates import GateBank
from .layers import FeatureGate, MLPBank
from .registry import REGISTRY
from .routing import LevelPlan, RoutingPlan


class StreamSelect(nn.Module):
    """Which stream each unit reads: streams `[members, streams, batch, features]` -> `[members, units, batch, features]`.

    When every unit reads the same stream, returns that stream with a units-dimension of 1 (it is
    broadcast by the batched matmul instead of being copied per unit).
    """

    def __init__(self, index: tuple[int, ...]):
        super().__init__()
        self.index = tuple(int(i) for i in index)
        self.register_buffer("positions", torch.tensor(self.index, dtype=torch.long), persistent=False)

    def forward(self, streams: torch.Tensor) -> torch.Tensor:
        if len(set(self.index)) == 1:
            return streams[:, self.index[0]:self.index[0] + 1]
        if self.index == tuple(range(streams.shape[1])):
            return streams
        return streams.index_select(1, self.positions)  # its backward is an index_add, far cheaper than an index_put


class ExpertBank(nn.Module):
    """All experts of one level: [feature gate] -> MLP with optional per-expert norm.

    streams `[members, streams, batch, in]` -> outputs `[members, experts, batch, hidden]`.
    """

    def __init__(self, members: int, in_features: int, plan: LevelPlan, config: ModelConfig):
        super().__init__()
        self.select = StreamSelect(plan.expert_stream)
        self.feature_gate = FeatureGate(members, plan.n_experts, in_features, config.feature_gate_rank) \
            if config.feature_gate else None
        self.mlp = MLPBank(members, plan.n_experts, (in_features, *plan.hidden), config.activation, config.expert_norm,
                           tucker_ranks=config.tucker_ranks if REGISTRY[config.arch].factorised else None)

    def forward(self, streams: torch.Tensor) -> torch.Tensor:
        x = self.select(streams)
        if self.feature_gate is not None:
            x = self.feature_gate(x)
        return self.mlp(x)


class Level(nn.Module):
    """Experts and gates of one level; its gates' mixes are the next level's streams."""

    def __init__(self, members: int, in_features: int, plan: LevelPlan, config: ModelConfig):
        super().__init__()
        self.plan = plan
        self.experts = ExpertBank(members, in_features, plan, config)
        self.gates = GateBank(members, in_features, plan.mask, plan.own, config.gate_temperature,
                              config.gate_dropout, config.gate_init_scale, config.self_gate, plan.static_gates,
                              config.gate_layer_norm)
        self.gate_input = StreamSelect(plan.gate_stream)
        # When each gate sees one expert and has no self-gate, its mix is that expert's output.
        self.passed_through = StreamSelect(plan.mask.argmax(1)) if not (self.gates.learned or config.self_gate) else None

    def forward(self, streams: torch.Tensor):
        """streams `[members, S, batch, in]` -> (next streams `[members, gates, batch, hidden]`,
        gate weights `[members, gates, batch, experts]`, self-gate weights or None, expert outputs)."""
        outputs = self.experts(streams)
        weights, self_weights = self.gates(self.gate_input(streams))
        if self.passed_through is not None:
            # expand: several gates may pass the same expert on (e.g. MMoE with one expert)
            return self.passed_through(outputs).expand(-1, self.plan.n_gates, -1, -1), weights, self_weights, outputs
        mix = weights if self_weights is None else weights + self_weights
        return torch.matmul(mix.transpose(1, 2), outputs.transpose(1, 2)).transpose(1, 2), weights, self_weights, outputs


@dataclass
class LevelTrace:
    """What one level did on a batch. Shapes without the member dimension for a single model:
    gate_weights `[batch, gates, experts]`, self_gate_weights same or None, expert_outputs
    `[batch, experts, hidden]`; with members, each has a leading `[members]`."""

    plan: LevelPlan
    gate_weights: torch.Tensor
    self_gate_weights: torch.Tensor | None
    expert_outputs: torch.Tensor


class MultiTaskModel(nn.Module):
    """Any architecture of the playground: the routing plan decides which.

    forward(x `[batch, features]`) -> predictions `[batch, tasks]` (logits for binary tasks);
    with `trace=True` also a list of `LevelTrace`. `members` independent copies can be trained at
    once: then x is `[members, batch, features]` and predictions `[members, batch, tasks]`.
    """

    def __init__(self, config: ModelConfig, plan: RoutingPlan, features: int, members: int = 1):
        super().__init__()
        self.config, self.plan, self.features, self.members = config, plan, features, members
        self.shared_input = MLPBank(members, 1, (features, config.shared_input)) if config.shared_input else None
        levels, width = [], config.shared_input or features
        for level_plan in plan.levels:
            levels.append(Level(members, width, level_plan, config))
            width = level_plan.hidden[-1]
        self.levels = nn.ModuleList(levels)
        self.tower_input = StreamSelect(plan.tower_stream)
        self.towers = MLPBank(members, len(plan.tower_stream), (width, *config.tower_hidden, 1), activate_last=False)

    @property
    def tasks(self) -> int:
        return len(self.plan.tower_stream)

    def forward(self, x: torch.Tensor, trace: bool = False):
        single = x.dim() == 2
        streams = (x[None] if single else x)[:, None]  # [members, 1, batch, features]
        if self.shared_input is not None:
            streams = self.shared_input(streams)
        traces = []
        for level in self.levels:
            streams, weights, self_weights, outputs = level(streams)
            if trace:
                traces.append(LevelTrace(level.plan, *(_batch_first(t, single) for t in (weights, self_weights, outputs))))
        predictions = self.towers(self.tower_input(streams))[..., 0].transpose(1, 2)
        predictions = predictions[0] if single else predictions
        return (predictions, traces) if trace else predictions

    def num_parameters(self) -> int:
        """Trainable parameters of one member."""
        return sum(p.numel() for p in self.parameters()) // self.members

    def penalty(self) -> torch.Tensor | None:
        """The architecture's coupling penalty `[members]` to add to the loss, or None (registry.py)."""
        penalty = REGISTRY[self.config.arch].penalty
        return None if penalty is None else penalty(self)

    def shared_parameters(self) -> list[tuple[nn.Parameter, list[int]]]:
        """What every task's loss reaches: `(parameter [members, units, ...], unit indices)` for the shared
        input layer and each level's shared experts (the slices gradient-based weightings and the
        gradient-conflict chart look at). Empty when nothing is shared."""
        shared = [(p, [0]) for p in self.shared_input.parameters()] if self.shared_input is not None else []
        for level in self.levels:
            experts = [e for e, kind in enumerate(level.plan.expert_kinds) if kind == "shared"]
            shared += [(p, experts) for p in level.experts.parameters()] if experts else []
        return shared

    def gate_parameters(self) -> list[nn.Parameter]:
        """The gates' parameters (frozen by the trainer after `freeze_gates_after` steps)."""
        return [p for level in self.levels for p in level.gates.parameters()]


def _batch_first(t: torch.Tensor | None, single: bool) -> torch.Tensor | None:
    """`[members, units, batch, ...]` -> `[members, batch, units, ...]`, member dim dropped for a single model."""
    if t is None:
        return None
    t = t.transpose(1, 2)
    return t[0] if single else t
