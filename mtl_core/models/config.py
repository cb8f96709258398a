"""Model settings: which architecture, how big, and which expert / gate options."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import check
from .registry import ARCHITECTURES, REGISTRY

ACTIVATIONS = ("relu", "swish")


@dataclass(frozen=True)
class ModelConfig:
    """One architecture and its sizes.

    Expert counts mean, per architecture:
      experts        shared experts (OMoE, MMoE; per level in CGC/PLE; global experts in HoME)
      task_experts   experts owned by one task (CGC, PLE, HoME's task level)
      group_experts  experts owned by one task group (HoME)
    Every expert of the model has the layer sizes `expert_hidden`; the bottoms of Shared-Bottom
    and of the single-task baseline have `bottom_hidden` (default: `expert_hidden`), so they can be
    widened to match an MoE model's parameter count (`match_bottom_to`).

    `expert_norm` (per-expert batch normalisation), `activation`, `feature_gate` and
    `self_gate` are expert-bank / gate options usable by any architecture where they make sense;
    `levels` counts PLE's levels and Cross-Stitch's layers; `l2_alpha` and `tucker_ranks` belong to the
    L2-Constrained and Tensor-Factorization baselines;
    `gate_*` are the practitioner's gate tricks (gates.GateBank); `shared_input` puts one
    shared layer (its width) between the input and the first level, as the MMoE practice notes suggest;
    `ModelConfig.for_arch("home")` switches on HoME's four components (its registry entry's switches).
    `hierarchy_mask` only matters for HoME: off, every gate sees every expert of its level.
    """

    arch: str = "mmoe"
    experts: int = 8
    task_experts: int = 1
    group_experts: int = 2
    levels: int = 2
    expert_hidden: tuple[int, ...] = (16,)
    bottom_hidden: tuple[int, ...] | None = None
    tower_hidden: tuple[int, ...] = (8,)
    activation: str = "relu"
    expert_norm: bool = False
    feature_gate: bool = False
    feature_gate_rank: int = 8
    self_gate: bool = False
    hierarchy_mask: bool = True
    gate_temperature: float = 1.0
    gate_dropout: float = 0.0
    gate_init_scale: float = 1.0
    gate_layer_norm: bool = False
    shared_input: int = 0                        # width of a shared ReLU layer between the input and the experts (0 = none)
    l2_alpha: float = 0.01                       # l2_constrained: weight of the penalty between task columns
    tucker_ranks: tuple[int, int, int] = (32, 8, 2)   # tensor_factorization: ranks over (inputs, outputs, tasks)

    def __post_init__(self) -> None:
        check(self.arch in ARCHITECTURES, f"Unknown architecture '{self.arch}'. Choose one of: {', '.join(ARCHITECTURES)}.")
        check(1 <= self.experts <= 64, f"experts must be between 1 and 64, got {self.experts}.")
        check(0 <= self.task_experts <= 16, f"task_experts must be between 0 and 16, got {self.task_experts}.")
        check(0 <= self.group_experts <= 16, f"group_experts must be between 0 and 16, got {self.group_experts}.")
        check(1 <= self.levels <= 3, f"PLE levels must be 1, 2 or 3, got {self.levels}.")
        for name in ("expert_hidden", "tower_hidden") + (("bottom_hidden",) if self.bottom_hidden is not None else ()):
            sizes = getattr(self, name)
            check(len(sizes) >= 1 and all(isinstance(s, int) and 1 <= s <= 4096 for s in sizes),
                  f"{name} must be one or more layer sizes between 1 and 4096, got {sizes}.")
        check(self.activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}, got '{self.activation}'.")
        check(self.feature_gate_rank >= 1, f"feature_gate_rank must be at least 1, got {self.feature_gate_rank}.")
        check(not self.self_gate or self.arch in ("cgc", "ple", "home"),
              f"self_gate mixes a module's own experts, so it needs task- or group-specific experts (cgc, ple, home); '{self.arch}' has none.")
        check(self.arch not in ("cgc", "ple") or self.task_experts >= 1 or self.experts >= 1,
              "CGC/PLE need at least one expert.")
        check(self.l2_alpha >= 0, f"l2_alpha must be 0 or more, got {self.l2_alpha}.")
        check(len(self.tucker_ranks) == 3 and all(isinstance(r, int) and r >= 1 for r in self.tucker_ranks),
              f"tucker_ranks are three whole numbers of at least 1 (inputs, outputs, tasks), got {self.tucker_ranks}.")
        check(self.gate_temperature > 0, f"gate_temperature must be positive, got {self.gate_temperature}.")
        check(0 <= self.gate_dropout < 1, f"gate_dropout is a probability in [0, 1), got {self.gate_dropout}.")
        check(0 <= self.shared_input <= 4096, f"shared_input is a layer width between 0 (none) and 4096, got {self.shared_input}.")
        check(self.gate_init_scale >= 0, f"gate_init_scale must be 0 or more (0 = uniform gates at start), got {self.gate_init_scale}.")

    @classmethod
    def for_arch(cls, arch: str, **overrides) -> "ModelConfig":
        """Defaults for `arch`: its switches (registry.Switch, e.g. HoME's four components) on, with the fields
        each sets with it; any override wins."""
        defaults = {}
        for switch in REGISTRY[arch].switches if arch in REGISTRY else ():
            on = overrides.get(switch.field, True)
            defaults[switch.field] = on
            defaults.update({name: values[0] if on else values[1] for name, values in switch.pairs})
        return cls(arch=arch, **{**defaults, **overrides})

    def with_(self, **changes) -> "ModelConfig":
        return replace(self, **changes)
