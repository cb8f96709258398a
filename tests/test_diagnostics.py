"""Diagnostics on constructed cases where the answer is known."""

import math

import numpy as np
import pytest
import torch

from mtl_core.data.synthetic import DataConfig, make_dataset
from mtl_core.diagnostics.recorder import DiagnosticsRecorder, expert_occupancy, expert_reliance, expert_scale_spread, expert_statistics, gate_drift, gate_polarisation, gate_utilisation, gradient_conflict
from mtl_core.models import build_model, build_plan, LevelTrace, ModelConfig
from mtl_core.train.training import TrainConfig, TrainingRun

TASKS = ("a", "b")


def level(arch="mmoe", weights=None, outputs=None, batch=10, **kw):
    """A hand-made trace of one level: gate weights `[batch, gates, experts]`, outputs `[batch, experts, 4]`."""
    plan = build_plan(ModelConfig.for_arch(arch, **kw), TASKS, (0, 0)).levels[0]
    if weights is None:
        weights = torch.full((batch, plan.n_gates, plan.n_experts), 1 / plan.n_experts)
    if outputs is None:
        outputs = torch.randn(batch, plan.n_experts, 4)
    return [LevelTrace(plan, weights, None, outputs)]


def test_an_expert_that_outputs_only_zeros_has_sparsity_one():
    outputs = torch.randn(10, 3, 4).abs() + 1
    outputs[:, 1] = 0
    stats = expert_statistics(level(experts=3, outputs=outputs))
    assert stats.zero_fraction.tolist() == [0.0, 1.0, 0.0] and stats.near_zero_fraction.tolist() == [0.0, 1.0, 0.0]
    assert stats.loc[1, "std"] == 0 and stats.loc[1, "q50"] == 0


def test_a_unit_is_dead_only_when_it_is_zero_for_every_sample():
    outputs = torch.randn(10, 2, 4).abs() + 1
    outputs[:, 0, 0] = 0       # expert 0: unit 0 dead
    outputs[:5, 1, :] = 0      # expert 1: half its outputs 0, but every unit lives on the other samples
    stats = expert_statistics(level(experts=2, outputs=outputs))
    assert stats.dead_units.tolist() == [0.25, 0.0] and stats.zero_fraction.tolist() == [0.25, 0.5]


def test_near_zero_counts_small_swish_outputs_that_are_not_exactly_zero():
    outputs = torch.full((10, 2, 4), 0.001)
    outputs[:, 0] = 5
    stats = expert_statistics(level(experts=2, outputs=outputs))
    assert stats.zero_fraction.tolist() == [0, 0] and stats.near_zero_fraction.tolist() == [0, 1]


def test_scale_spread_is_ratio_of_output_stds():
    outputs = torch.randn(1000, 2, 4)
    outputs[:, 1] *= 10
    spread = expert_scale_spread(expert_statistics(level(experts=2, outputs=outputs))).std_max_over_min.item()
    assert 8 < spread < 12


def test_a_gate_forced_one_hot_is_fully_polarised_and_uniform_is_not():
    weights = torch.zeros(10, 2, 4)
    weights[:, 0, 2] = 1
    weights[:, 1] = 0.25
    pol = gate_polarisation(level(experts=4, weights=weights))
    one_hot, uniform = pol.iloc[0], pol.iloc[1]
    assert one_hot.polarised and one_hot.top_weight == 1 and one_hot.entropy == pytest.approx(0, abs=1e-9)
    assert one_hot.top_expert == "shared 2" and one_hot.sample_polarised == 1
    assert not uniform.polarised and uniform.entropy == pytest.approx(1)


def test_utilisation_mean_and_std_over_the_batch():
    weights = torch.zeros(4, 2, 2)
    weights[:2, :, 0], weights[2:, :, 1] = 1, 1
    util = gate_utilisation(level(experts=2, weights=weights))
    assert len(util) == 4 and util["mean"].tolist() == [0.5] * 4 and util["std"].tolist() == [0.5] * 4


def test_a_shared_expert_used_by_one_task_is_taken_over():
    weights = torch.zeros(10, 2, 2)
    weights[:, 0, 0] = 1          # task a: all on expert 0
    weights[:, 1, 1] = 1          # task b: all on expert 1
    occ = expert_occupancy(level(experts=2, weights=weights))
    assert occ.taken_over.all() and set(occ.top_share) == {1.0}
    balanced = expert_occupancy(level(experts=2))
    assert not balanced.taken_over.any() and set(balanced.share) == {0.5}


def test_reliance_splits_own_group_shared_weight():
    (lvl,) = level("cgc", experts=2, task_experts=1)
    weights = torch.zeros(5, 2, lvl.plan.n_experts)
    visible = torch.as_tensor(lvl.plan.mask, dtype=torch.float32)
    weights[:] = visible / visible.sum(1, keepdim=True)   # uniform over own + 2 shared
    rel = expert_reliance([LevelTrace(lvl.plan, weights, None, lvl.expert_outputs)], {"a": 0.5, "b": 0.02})
    assert rel.own.tolist() == pytest.approx([1 / 3, 1 / 3]) and rel.shared.tolist() == pytest.approx([2 / 3, 2 / 3])
    assert rel.positive_rate.tolist() == [0.5, 0.02]
    assert rel.self_gate.tolist() == [0, 0]


def test_reliance_counts_the_self_gates_weights_in_the_mix():
    (lvl,) = level("cgc", experts=2, task_experts=1)
    visible = torch.as_tensor(lvl.plan.mask, dtype=torch.float32)
    weights = (visible / visible.sum(1, keepdim=True)).expand(5, -1, -1)   # 1/3 on the own expert, 2/3 on the shared
    own = torch.as_tensor(lvl.plan.own, dtype=torch.float32).expand(5, -1, -1)   # the self-gate adds 1 on the own expert
    rel = expert_reliance([LevelTrace(lvl.plan, weights, own, lvl.expert_outputs)])
    assert rel.own.tolist() == pytest.approx([2 / 3, 2 / 3]) and rel.shared.tolist() == pytest.approx([1 / 3, 1 / 3])
    assert rel.self_gate.tolist() == pytest.approx([0.5, 0.5])   # (1/3 + 1) / 2 own, of which 1 / 2 through the self-gate


def test_drift_is_zero_for_the_same_gates_and_bounded_by_ln2():
    same = level(experts=2)
    assert gate_drift(same, same).js_divergence.abs().max() < 1e-12
    a, b = torch.zeros(3, 2, 2), torch.zeros(3, 2, 2)
    a[..., 0], b[..., 1] = 1, 1
    drift = gate_drift(level(experts=2, weights=a), level(experts=2, weights=b)).js_divergence
    assert drift.tolist() == pytest.approx([math.log(2)] * 2)


def twin_towers():
    """A Shared-Bottom on two tasks whose towers are the same: any difference between the tasks' gradients
    comes from their targets."""
    model = build_model(ModelConfig("shared_bottom"), TASKS, (0, 0), features=8, seed=0)
    with torch.no_grad():
        for linear in model.towers.linears:
            linear.weight[:, 1] = linear.weight[:, 0]
            linear.bias[:, 1] = linear.bias[:, 0]
    return model


def test_identical_task_gradients_give_conflict_one():
    model = twin_towers()
    x, y = torch.randn(1, 64, 8), torch.randn(1, 64, 1).expand(1, 64, 2)
    cos, norms = gradient_conflict(model, x, y, (False, False))
    assert cos.shape == (1, 2, 2) and cos[0, 0, 1] == pytest.approx(1, abs=1e-6)
    assert norms.shape == (1, 2) and norms[0, 0] == pytest.approx(norms[0, 1], rel=1e-6) and norms[0, 0] > 0


def test_opposite_targets_give_conflict_near_minus_one():
    """Same towers, predictions near 0, targets y and -y: the tasks pull the shared bottom in opposite directions."""
    model = twin_towers()
    with torch.no_grad():
        model.towers.linears[-1].weight.mul_(1e-3)
        model.towers.linears[-1].bias.zero_()
    x = torch.randn(1, 256, 8)
    y = torch.stack([x[..., 0], -x[..., 0]], -1)
    assert gradient_conflict(model, x, y, (False, False))[0][0, 0, 1] < -0.99


def test_no_shared_experts_gives_nan_conflict():
    model = build_model(ModelConfig("single_task"), TASKS, (0, 0), features=8)
    assert all(np.isnan(a).all() for a in gradient_conflict(model, torch.randn(1, 8, 8), torch.randn(1, 8, 2), (False, False)))


def test_recorder_builds_time_series_from_snapshots():
    data = DataConfig(tasks=2, features=16, samples=512, holdout=128, task_types=("regression", "binary"),
                      positive_rates=(0.5, 0.1))
    model = build_model(ModelConfig.for_arch("home", experts=2, expert_hidden=(8,)), data.task_names, data.task_groups, 16)
    run = TrainingRun(model, make_dataset(data), TrainConfig(device="cpu", epochs=4, snapshot_every=2, snapshot_samples=64))
    recorder = DiagnosticsRecorder(run)
    for event in run.events():
        recorder.observe(event)
    steps = sorted(recorder.frame("gates").step.unique())
    assert steps == [2, 4, 6, 8]
    assert set(recorder.frame("drift").step) == {4, 6, 8}
    assert set(recorder.frame("conflict").columns) >= {"task_a", "task_b", "cosine", "step"}
    rel = recorder.frame("reliance")
    assert rel[rel.task == "task 1"].positive_rate.iloc[0] == pytest.approx(0.1, abs=0.01)
