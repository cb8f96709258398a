"""A straightforward reference: the same routing plan written the way most libraries write MMoE,
with one `nn.Module` per expert, gate and tower and Python loops over them.

It exists to be measured against (the benchmark's baseline) and to check the batched model:
`LoopedModel.from_batched(model)` copies a one-member `MultiTaskModel`'s weights, and then both
compute the same predictions.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .layers import activation_fn
from .model import MultiTaskModel
from .registry import REGISTRY
from .routing import RoutingPlan


class LoopedTucker(nn.Module):
    """One layer's Tucker factors; `weight(k)` composes unit k's `[out, in]` weights in a Python loop over
    the task rank: W_k = sum_c U_units[k, c] * U_in @ S[:, :, c] @ U_out^T."""

    def __init__(self, units: int, in_features: int, out_features: int, ranks: tuple[int, int, int]):
        super().__init__()
        r_in, r_out, r_units = min(ranks[0], in_features), min(ranks[1], out_features), min(ranks[2], units)
        self.core = nn.Parameter(torch.empty(r_in, r_out, r_units))
        self.u_in, self.u_out = nn.Parameter(torch.empty(in_features, r_in)), nn.Parameter(torch.empty(out_features, r_out))
        self.u_units = nn.Parameter(torch.empty(units, r_units))

    def weight(self, k: int) -> torch.Tensor:
        return sum(self.u_units[k, c] * self.u_in @ self.core[:, :, c] @ self.u_out.T for c in range(self.core.shape[2])).T


class TuckerColumnLinear(nn.Module):
    """Unit k's layer of a Tucker-factorised bank: its own bias, weights from the shared factors."""

    def __init__(self, tucker: LoopedTucker, k: int, out_features: int):
        super().__init__()
        self.tucker, self.k = [tucker], k  # a list: the factors are registered once, by the model
        self.bias = nn.Parameter(torch.empty(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.tucker[0].weight(self.k), self.bias)


class StaticGate(nn.Module):
    """A gate whose logits are learned constants (cross-stitch): x `[batch, in]` -> `[batch, allowed]`."""

    def __init__(self, allowed: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(allowed))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


class LoopedExpert(nn.Module):
    def __init__(self, sizes: tuple[int, ...], config: ModelConfig, tuckers: nn.ModuleList | None = None, k: int = 0):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(sizes[0], min(config.feature_gate_rank, sizes[0]), bias=False),
                                  nn.Linear(min(config.feature_gate_rank, sizes[0]), sizes[0], bias=False)) \
            if config.feature_gate else None
        self.linears = nn.ModuleList(nn.Linear(i, o) if tuckers is None else TuckerColumnLinear(tuckers[n], k, o)
                                     for n, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])))
        self.norms = nn.ModuleList(nn.BatchNorm1d(o) for o in sizes[1:]) if config.expert_norm else None
        self.act = activation_fn(config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            x = x * 2 * torch.sigmoid(self.gate(x))
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = self.act(x)
        return x


class LoopedModel(nn.Module):
    """x `[batch, features]` -> `[batch, tasks]`, one module call per expert, gate and tower."""

    def __init__(self, config: ModelConfig, plan: RoutingPlan, features: int):
        super().__init__()
        self.config, self.plan = config, plan
        self.experts, self.gates, self.self_gates = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.tuckers = nn.ModuleList()
        width = features
        for level in plan.levels:
            sizes = (width, *level.hidden)
            tuckers = nn.ModuleList(LoopedTucker(level.n_experts, i, o, config.tucker_ranks) for i, o in zip(sizes[:-1], sizes[1:])) \
                if REGISTRY[config.arch].factorised else None
            self.tuckers.append(tuckers if tuckers is not None else nn.ModuleList())
            self.experts.append(nn.ModuleList(LoopedExpert(sizes, config, tuckers, k) for k in range(level.n_experts)))
            self.gates.append(nn.ModuleList(StaticGate(int(row.sum())) if level.static_gates else
                                            nn.Linear(width, int(row.sum()), bias=False) for row in level.mask))
            self.self_gates.append(nn.ModuleList(nn.Linear(width, max(int(row.sum()), 1), bias=False) for row in level.own)
                                   if config.self_gate else None)
            width = level.hidden[-1]
        self.towers = nn.ModuleList(
            nn.Sequential(*[m for i, o in zip((width, *config.tower_hidden), config.tower_hidden) for m in (nn.Linear(i, o), nn.ReLU())],
                          nn.Linear(config.tower_hidden[-1], 1))
            for _ in plan.tower_stream)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        streams = [x]
        for level, experts, gates, self_gates in zip(self.plan.levels, self.experts, self.gates, self.self_gates):
            outputs = [expert(streams[s]) for expert, s in zip(experts, level.expert_stream)]
            mixes = []
            for g, (gate, s) in enumerate(zip(gates, level.gate_stream)):
                chosen = [outputs[e] for e in level.mask[g].nonzero()[0]]
                weights = torch.softmax(gate(streams[s]) / self.config.gate_temperature, dim=-1)
                mix = sum(w[:, None] * out for w, out in zip(weights.unbind(-1), chosen))
                own = [outputs[e] for e in level.own[g].nonzero()[0]]
                if self_gates is not None and own:
                    logits = self_gates[g](streams[s])
                    self_weights = torch.sigmoid(logits) if len(own) == 1 else torch.softmax(logits, dim=-1)
                    mix = mix + sum(w[:, None] * out for w, out in zip(self_weights.unbind(-1), own))
                mixes.append(mix)
            streams = mixes
        return torch.cat([tower(streams[s]) for tower, s in zip(self.towers, self.plan.tower_stream)], dim=-1)

    def penalty(self) -> torch.Tensor | None:
        """L2-Constrained's penalty, task pair by task pair: alpha * sum_{i<j} ||theta_i - theta_j||^2."""
        if REGISTRY[self.config.arch].penalty is None:
            return None
        total = 0.0
        for experts in self.experts:
            for i in range(len(experts)):
                for j in range(i + 1, len(experts)):
                    for a, b in zip(experts[i].linears, experts[j].linears):
                        total = total + (a.weight - b.weight).pow(2).sum() + (a.bias - b.bias).pow(2).sum()
        return self.config.l2_alpha * total

    @classmethod
    def from_batched(cls, model: MultiTaskModel) -> "LoopedModel":
        """A looped copy of member 0 of `model`, weight for weight."""
        looped = cls(model.config, model.plan, model.features)
        with torch.no_grad():
            for level, lp, experts, gates, self_gates, tuckers in zip(model.levels, model.plan.levels, looped.experts, looped.gates,
                                                                      looped.self_gates, looped.tuckers):
                for tucker, batched in zip(tuckers, level.experts.mlp.linears):
                    for name in ("core", "u_in", "u_out", "u_units"):
                        getattr(tucker, name).copy_(getattr(batched, name)[0])
                for e, expert in enumerate(experts):
                    for i, linear in enumerate(expert.linears):
                        if isinstance(linear, nn.Linear):
                            linear.weight.copy_(level.experts.mlp.linears[i].weight[0, e].T)
                        linear.bias.copy_(level.experts.mlp.linears[i].bias[0, e, 0])
                        if expert.norms is not None:
                            expert.norms[i].weight.copy_(level.experts.mlp.norms[i].weight[0, e, 0])
                            expert.norms[i].bias.copy_(level.experts.mlp.norms[i].bias[0, e, 0])
                    if expert.gate is not None:
                        expert.gate[0].weight.copy_(level.experts.feature_gate.down[0, e].T)
                        expert.gate[1].weight.copy_(level.experts.feature_gate.up[0, e].T)
                for g, gate in enumerate(gates):
                    allowed = lp.mask[g].nonzero()[0]
                    if isinstance(gate, StaticGate):
                        gate.logits.copy_(level.gates.weight[0, g, 0, allowed])
                    elif level.gates.weight is not None:
                        gate.weight.copy_(level.gates.weight[0, g][:, allowed].T)
                    else:
                        gate.weight.zero_()
                    if self_gates is not None and lp.own[g].any():
                        self_gates[g].weight.copy_(level.gates.self_weight[0, g][:, lp.own[g].nonzero()[0]].T)
            for k, tower in enumerate(looped.towers):
                linears = [m for m in tower if isinstance(m, nn.Linear)]
                for i, linear in enumerate(linears):
                    linear.weight.copy_(model.towers.linears[i].weight[0, k].T)
                    linear.bias.copy_(model.towers.linears[i].bias[0, k, 0])
        return looped
