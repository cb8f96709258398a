"""The network view's data: a routing plan laid out as a graph, weighted by a snapshot.

Columns from left to right: the input, then per level its experts and its gates, then the towers and
the task outputs. Nodes are the input, every expert, every gate, every tower and output; edges are
  stream  what an expert or a tower reads: the input or a previous level's gate output, as the plan wires
          it (a gate reads the same stream as the experts it owns; that edge is not drawn, to keep the
          picture readable);
  mix     a gate weighing an expert it may see (the plan's mask): `weight` is the gate's mean weight on
          that expert in the snapshot, or uniform over the experts it sees without one.
Experts carry `zero_fraction` and `std` from the snapshot (NaN without one). Nothing here is drawn:
`charts.network_chart` draws `frame(...)`, nodes and edges in one table (one dataset, so a page can
build the chart's spec once and send only new numbers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.routing import RoutingPlan


def layout(plan: RoutingPlan, task_names: tuple[str, ...], gates: pd.DataFrame | None = None,
           experts: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nodes: id, label, role, kind, column, row, zero_fraction, std; edges: source, target, kind, weight,
    gate, expert, column, row, column2, row2) for `plan`, weighted by one snapshot's `gates` (level, gate,
    expert, mean) and `experts` (level, expert, zero_fraction, std) tables when given."""
    nodes, edges = _records(plan, task_names, gates, experts)
    return pd.DataFrame(nodes), pd.DataFrame(edges)


def _records(plan: RoutingPlan, task_names: tuple[str, ...], gates: pd.DataFrame | None,
             experts: pd.DataFrame | None) -> tuple[list[dict], list[dict]]:
    """`layout` as plain rows (a live race redraws this every few ticks: plain Python is 5x cheaper than pandas)."""
    nodes, edges = [_node("input", "input x", "input", "input", 0, 0, 1)], []
    weights = {} if gates is None else {(r.level, r.gate, r.expert): r.mean for r in gates.itertuples()}
    stats = {} if experts is None else {(r.level, r.expert): r for r in experts.itertuples()}
    streams = ["input"]   # node ids of the current streams (the input, then a level's gate outputs)
    for number, level in enumerate(plan.levels, start=1):
        expert_ids = [f"L{number} expert {e}" for e in range(level.n_experts)]
        gate_ids = [f"L{number} gate {g}" for g in range(level.n_gates)]
        for e, name in enumerate(level.expert_names):
            stat = stats.get((number, name))
            nodes.append(_node(expert_ids[e], name, "expert", level.expert_kinds[e], 2 * number - 1, e, level.n_experts,
                               stat.zero_fraction if stat is not None else np.nan, stat.std if stat is not None else np.nan))
            edges.append(_edge(streams[level.expert_stream[e]], expert_ids[e], "stream"))
        for g, name in enumerate(level.gate_names):
            nodes.append(_node(gate_ids[g], name, "gate", level.gate_kinds[g], 2 * number, g, level.n_gates))
            seen = np.flatnonzero(level.mask[g])
            for e in seen:
                weight = weights.get((number, name, level.expert_names[e]), 1 / len(seen) if gates is None else 0.0)
                edges.append(_edge(expert_ids[e], gate_ids[g], "mix", weight, name, level.expert_names[e]))
        streams = gate_ids
    column = 2 * len(plan.levels) + 1
    for k, task in enumerate(task_names):
        nodes.append(_node(f"tower {k}", f"tower: {task}", "tower", "task", column, k, len(task_names)))
        nodes.append(_node(f"output {k}", task, "output", "task", column + 1, k, len(task_names)))
        edges.append(_edge(streams[plan.tower_stream[k]], f"tower {k}", "stream"))
        edges.append(_edge(f"tower {k}", f"output {k}", "stream"))
    where = {n["id"]: (n["column"], n["row"]) for n in nodes}
    for e in edges:
        (e["column"], e["row"]), (e["column2"], e["row2"]) = where[e["source"]], where[e["target"]]
    return nodes, edges


def _node(id_: str, label: str, role: str, kind: str, column: int, index: int, count: int,
          zero_fraction: float = np.nan, std: float = np.nan) -> dict:
    """A node; `row` centres a column's `count` nodes around 0 (one unit apart)."""
    return dict(id=id_, label=label, role=role, kind=kind, column=column, row=index - (count - 1) / 2,
                zero_fraction=zero_fraction, std=std)


def _edge(source: str, target: str, kind: str, weight: float = np.nan, gate: str = "", expert: str = "") -> dict:
    return dict(source=source, target=target, kind=kind, weight=float(weight), gate=gate, expert=expert)


def frame(plan: RoutingPlan, task_names: tuple[str, ...], gates: pd.DataFrame | None = None,
          experts: pd.DataFrame | None = None) -> pd.DataFrame:
    """`layout`'s nodes and edges in one table, told apart by `part` ("node" or "edge")."""
    nodes, edges = _records(plan, task_names, gates, experts)
    return pd.DataFrame([*({**row, "part": "node"} for row in nodes), *({**row, "part": "edge"} for row in edges)])
