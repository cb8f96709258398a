"""Architectures as routings of experts to gates (see routing.py), built by one model class."""

from __future__ import annotations

import torch

from .config import ModelConfig
from .model import LevelTrace, MultiTaskModel
from .registry import ARCHITECTURES, REGISTRY, SWITCHES, build_plan
from .routing import LevelPlan, RoutingPlan

__all__ = ["ARCHITECTURES", "REGISTRY", "SWITCHES", "LevelPlan", "LevelTrace", "ModelConfig", "MultiTaskModel",
           "RoutingPlan", "build_model", "build_plan", "count_parameters", "match_bottom_to", "stack_members"]


def build_model(config: ModelConfig, task_names: tuple[str, ...], task_groups: tuple[int, ...], features: int,
                seed: int = 0) -> MultiTaskModel:
    """A freshly initialised model; the same seed gives the same weights."""
    plan = build_plan(config, task_names, task_groups)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultiTaskModel(config, plan, features)


def count_parameters(config: ModelConfig, task_names, task_groups, features: int) -> int:
    with torch.device("meta"):
        return MultiTaskModel(config, build_plan(config, task_names, task_groups), features).num_parameters()


def match_bottom_to(config: ModelConfig, target: ModelConfig, task_names, task_groups, features: int) -> ModelConfig:
    """Shared-Bottom (or single-task) `config` with one-layer bottoms widened so its parameter count is
    closest to `target`'s (the MMoE paper's 113-unit bottom against 8 experts of 16 units)."""
    goal = count_parameters(target, task_names, task_groups, features)
    size = lambda width: count_parameters(config.with_(bottom_hidden=(width,)), task_names, task_groups, features)
    lo, hi = 1, 4096
    while lo < hi:  # smallest width with at least `goal` parameters
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if size(mid) < goal else (lo, mid)
    best = min((w for w in (lo - 1, lo) if w >= 1), key=lambda w: abs(size(w) - goal))
    return config.with_(bottom_hidden=(best,))


def stack_members(models: list[MultiTaskModel]) -> MultiTaskModel:
    """One model whose member m is `models[m]` (same architecture): parameters and buffers are
    concatenated along the member dimension, so training it trains each as if alone."""
    first = models[0]
    stacked = MultiTaskModel(first.config, first.plan, first.features, members=sum(m.members for m in models))
    states = [m.state_dict() for m in models]
    stacked.load_state_dict({k: torch.cat([s[k] for s in states]) for k in states[0]})
    return stacked
