"""Every architecture as a routing of experts to gates, level by level.

A `RoutingPlan` is plain data: which experts a level has, which input stream each expert and
each gate reads, which experts each gate may weigh (the mask), and which experts a gate's module
owns (for the self-gate). The outputs of a level's gates are the next level's input streams;
level 1 reads one stream, the input x. The app draws `LevelPlan.mask` as the picture of an
architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


@dataclass(frozen=True)
class LevelPlan:
    """One level of experts and the gates over them.

    expert_names/kinds/stream: `[experts]`; kind is "shared", "group" or "task".
    gate_names/kinds/stream: `[gates]`; kind is "task" (feeds one task), "group" (feeds a task
    group's next level) or "shared" (feeds shared experts, or every tower as in OMoE).
    mask, own: `[gates, experts]` booleans; own ⊆ mask.
    hidden: layer sizes of this level's experts.
    static_gates: the gates' weights do not depend on the input (learned constants per gate, e.g. a
    cross-stitch unit); otherwise each gate computes its weights from its input stream.
    """

    expert_names: tuple[str, ...]
    expert_kinds: tuple[str, ...]
    expert_stream: tuple[int, ...]
    gate_names: tuple[str, ...]
    gate_kinds: tuple[str, ...]
    gate_stream: tuple[int, ...]
    mask: np.ndarray
    own: np.ndarray
    hidden: tuple[int, ...]
    static_gates: bool = False

    @property
    def n_experts(self) -> int:
        return len(self.expert_names)

    @property
    def n_gates(self) -> int:
        return len(self.gate_names)


@dataclass(frozen=True)
class RoutingPlan:
    """The levels, and which last-level gate output feeds each task's tower: `tower_stream [tasks]`."""

    arch: str
    levels: tuple[LevelPlan, ...]
    tower_stream: tuple[int, ...]


class _Level:
    """Collects experts and gates while a plan is written."""

    def __init__(self, hidden: tuple[int, ...], static_gates: bool = False):
        self.hidden, self.static_gates = hidden, static_gates
        self.experts: list[tuple[str, str, int]] = []
        self.gates: list[tuple[str, str, int, list[int], list[int]]] = []

    def add_experts(self, count: int, name: str, kind: str, stream: int) -> list[int]:
        """`count` experts called "shared 0", "shared 1", ... or, when owned, "task 1 · 0" (just "task 1" alone)."""
        first = len(self.experts)
        for i in range(count):
            label = f"{name} {i}" if kind == "shared" else f"{name} · {i}" if count > 1 else name
            self.experts.append((label, kind, stream))
        return list(range(first, first + count))

    def add_gate(self, name: str, kind: str, stream: int, sees: list[int], own: list[int] = ()) -> None:
        self.gates.append((name, kind, stream, list(sees), list(own)))

    def build(self) -> LevelPlan:
        n_e, n_g = len(self.experts), len(self.gates)
        mask, own = np.zeros((n_g, n_e), bool), np.zeros((n_g, n_e), bool)
        for g, (_, _, _, sees, owned) in enumerate(self.gates):
            mask[g, sees] = True
            own[g, owned] = True
        return LevelPlan(
            expert_names=tuple(e[0] for e in self.experts), expert_kinds=tuple(e[1] for e in self.experts),
            expert_stream=tuple(e[2] for e in self.experts), gate_names=tuple(g[0] for g in self.gates),
            gate_kinds=tuple(g[1] for g in self.gates), gate_stream=tuple(g[2] for g in self.gates), mask=mask, own=own, hidden=self.hidden,
            static_gates=self.static_gates)


def single_task_plan(config, tasks, groups):
    level = _Level(config.bottom_hidden or config.expert_hidden)
    for k, task in enumerate(tasks):
        own = level.add_experts(1, f"{task} bottom", "task", 0)
        level.add_gate(task, "task", 0, own, own)
    return [level], range(len(tasks))


def cross_stitch_plan(config, tasks, groups):
    """Cross-stitch networks (Misra et al., CVPR 2016): one column per task, `levels` hidden layers deep.
    At each level task k's column (an expert owned by task k) reads task k's stream, and task k's
    cross-stitch unit mixes every column's output with weights that do not depend on the input (static
    gates, a softmax of learned logits, started near the identity: see gates.GateBank). Misra et al. leave
    the mixing weights unconstrained; keeping them convex lets every gate chart read them the same way."""
    K, levels = len(tasks), []
    for j in range(config.levels):
        level = _Level(config.expert_hidden, static_gates=True)
        columns = [level.add_experts(1, task, "task", 0 if j == 0 else k) for k, task in enumerate(tasks)]
        for k, task in enumerate(tasks):
            level.add_gate(task, "task", 0 if j == 0 else k, list(range(K)), columns[k])
        levels.append(level)
    return levels, range(K)


def shared_bottom_plan(config, tasks, groups):
    level = _Level(config.bottom_hidden or config.expert_hidden)
    bottom = level.add_experts(1, "shared bottom", "shared", 0)
    level.add_gate("all tasks", "shared", 0, bottom)
    return [level], [0] * len(tasks)


def omoe_plan(config, tasks, groups):
    level = _Level(config.expert_hidden)
    shared = level.add_experts(config.experts, "shared", "shared", 0)
    level.add_gate("all tasks", "shared", 0, shared)
    return [level], [0] * len(tasks)


def mmoe_plan(config, tasks, groups):
    level = _Level(config.expert_hidden)
    shared = level.add_experts(config.experts, "shared", "shared", 0)
    for task in tasks:
        level.add_gate(task, "task", 0, shared)
    return [level], range(len(tasks))


def with_imputation_tower(plan):
    """`plan` with one more tower, on the last task's stream: ESCM²-DR's imputation tower beside the
    conversion tower (training.funnel_losses, head "dr"). The model then outputs one logit more than tasks."""
    def imputed(config, tasks, groups):
        levels, tower_stream = plan(config, tasks, groups)
        tower_stream = list(tower_stream)
        return levels, [*tower_stream, tower_stream[-1]]
    return imputed


def ple_plan(config, tasks, groups):
    """CGC is PLE with one level. At level j, task k's experts and gate read task k's level j-1
    output; shared experts and the shared gate read the shared output (stream K). Non-last levels
    have a shared gate over all experts of the level; the last level has none (Tang et al., RecSys 2020, eqs. 6-7)."""
    n_levels = 1 if config.arch == "cgc" else config.levels
    K, levels = len(tasks), []
    for j in range(n_levels):
        level = _Level(config.expert_hidden)
        shared_stream = 0 if j == 0 else K
        task_experts = [level.add_experts(config.task_experts, task, "task", 0 if j == 0 else k)
                        for k, task in enumerate(tasks)]
        shared = level.add_experts(config.experts, "shared", "shared", shared_stream)
        for k, task in enumerate(tasks):
            level.add_gate(task, "task", 0 if j == 0 else k, task_experts[k] + shared, task_experts[k])
        if j < n_levels - 1:
            level.add_gate("shared", "shared", shared_stream, list(range(len(level.experts))), shared)
        levels.append(level)
    return levels, range(K)


def home_plan(config, tasks, groups):
    """HoME (Wang et al., KDD 2025; its wiring beyond the abstract is unconfirmed, these are our choices):

    meta level: global experts + `group_experts` per task group; a gate per group over the global
      experts and its own group's, and a global gate over all meta experts. Output streams:
      group 0..G-1, then global (stream G).
    task level: global experts read the global stream; a group's experts and its tasks' experts read
      that group's stream (streams are fed separately, not concatenated). Task k's gate reads its
      group's stream and sees the global experts, its group's experts and its own.
    The hierarchy mask is that "and its own group's": switched off, every gate sees every expert of
    its level (the experts and their inputs stay the same, so the ablation changes only the mask).
    """
    n_groups = max(groups) + 1
    meta = _Level(config.expert_hidden)
    glob = meta.add_experts(config.experts, "global", "shared", 0)
    group_experts = [meta.add_experts(config.group_experts, f"group {g}", "group", 0) for g in range(n_groups)]
    everything = list(range(len(meta.experts)))
    for g in range(n_groups):
        meta.add_gate(f"group {g}", "group", 0, glob + group_experts[g] if config.hierarchy_mask else everything, group_experts[g])
    meta.add_gate("global", "shared", 0, everything, glob)

    task = _Level(config.expert_hidden)
    glob = task.add_experts(config.experts, "global", "shared", n_groups)
    group_experts = [task.add_experts(config.group_experts, f"group {g}", "group", g) for g in range(n_groups)]
    own = [task.add_experts(config.task_experts, name, "task", groups[k]) for k, name in enumerate(tasks)]
    everything = list(range(len(task.experts)))
    for k, name in enumerate(tasks):
        sees = glob + group_experts[groups[k]] + own[k] if config.hierarchy_mask else everything
        task.add_gate(name, "task", groups[k], sees, own[k])
    return [meta, task], range(len(tasks))
