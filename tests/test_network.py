"""The network view's data come from the routing plan and the snapshot, nothing else."""

import numpy as np
import pandas as pd
import pytest
import torch

from mtl_core.diagnostics.recorder import expert_statistics, gate_utilisation
from mtl_core.models import ARCHITECTURES, build_model, build_plan, ModelConfig
from mtl_core.view import network

TASKS, GROUPS = ("a", "b", "c", "d"), (0, 0, 1, 1)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_unit_appears_once_and_mix_edges_follow_the_mask(arch):
    plan = build_plan(ModelConfig.for_arch(arch), TASKS, GROUPS)
    nodes, edges = network.layout(plan, TASKS)
    assert nodes.id.is_unique
    for number, level in enumerate(plan.levels, start=1):
        assert (nodes.role == "expert").sum() == sum(l.n_experts for l in plan.levels)
        mix = edges[(edges.kind == "mix") & edges.target.str.startswith(f"L{number} ")]
        drawn = {(g, e) for g, e in zip(mix.gate, mix.expert)}
        allowed = {(level.gate_names[g], level.expert_names[e]) for g, e in zip(*np.nonzero(level.mask))}
        assert drawn == allowed
        # without a snapshot every gate splits evenly over what it sees
        np.testing.assert_allclose(mix.groupby("target").weight.sum(), 1.0)
    assert (nodes.role == "output").sum() == len(TASKS)
    assert edges[["column", "row", "column2", "row2"]].notna().all().all()   # every edge joins two drawn nodes


def test_edge_widths_are_the_snapshots_mean_gate_weights():
    model = build_model(ModelConfig.for_arch("ple"), TASKS, GROUPS, features=20, seed=3)
    _, trace = model(torch.randn(64, 20), trace=True)
    trace = [type(t)(t.plan, t.gate_weights[None], None, t.expert_outputs[None]) for t in trace]   # a member dimension
    gates, experts = gate_utilisation(trace), expert_statistics(trace)
    nodes, edges = network.layout(model.plan, TASKS, gates, experts)
    mix = edges[edges.kind == "mix"].merge(gates, on=["gate", "expert"], suffixes=("", "_snapshot"))
    level = mix.target.str.slice(1, 2).astype(int)
    mix = mix[level == mix.level]
    assert len(mix) == len(gates)
    np.testing.assert_allclose(mix.weight, mix["mean"])
    shown = nodes[nodes.role == "expert"].merge(experts, left_on="label", right_on="expert")
    assert shown.zero_fraction_x.notna().all()


def test_one_frame_holds_nodes_and_edges():
    plan = build_plan(ModelConfig.for_arch("mmoe"), TASKS[:2], (0, 0))
    frame = network.frame(plan, TASKS[:2])
    assert set(frame.part) == {"node", "edge"} and isinstance(frame, pd.DataFrame)
