"""The MMoE paper's soft-sharing baselines: L2-Constrained, Cross-Stitch and Tensor-Factorization.
Each is wired as its paper describes; the equality with the looped reference is in test_model.py."""

import math

import pytest
import torch

from mtl_core.data.synthetic import DataConfig
from mtl_core.models import build_model, ModelConfig
from mtl_core.models.reference import LoopedModel
from mtl_core.train.runs import train_grid
from mtl_core.train.training import TrainConfig, TrainingRun

from conftest import small_model

GROUPS = (0, 0, 0)


def column_distance(model) -> float:
    """Sum over task pairs of ||theta_i - theta_j||^2 over the columns' layers (member 0)."""
    total = 0.0
    for level in model.levels:
        for linear in level.experts.mlp.linears:
            for p in (linear.weight[0].detach(), linear.bias[0].detach()):
                flat = p.flatten(1)
                total += sum(float((flat[i] - flat[j]).pow(2).sum()) for i in range(len(flat)) for j in range(i + 1, len(flat)))
    return total


def test_l2_penalty_is_alpha_times_the_pairwise_distance_of_the_columns():
    model = small_model("l2_constrained", l2_alpha=0.3, expert_hidden=(6, 5))
    assert model.penalty().shape == (1,)
    assert math.isclose(float(model.penalty().detach()[0]), 0.3 * column_distance(model), rel_tol=1e-4)
    torch.testing.assert_close(model.penalty()[0], LoopedModel.from_batched(model).penalty(), rtol=1e-4, atol=1e-6)
    assert small_model("mmoe", groups=GROUPS).penalty() is None


def test_l2_penalty_pulls_the_columns_together_and_alpha_zero_is_the_single_task_model():
    data = DataConfig(tasks=3, correlation=0.5, samples=500, holdout=100)
    train = TrainConfig(epochs=3, batch_size=64, eval_every=0, log_every=1000)
    free = train_grid([data], ModelConfig.for_arch("l2_constrained", l2_alpha=0.0), train)
    single = train_grid([data], ModelConfig.for_arch("single_task"), train)
    assert abs(free.metrics.value.to_numpy() - single.metrics.value.to_numpy()).max() < 1e-6   # same plan and seed, no penalty
    fresh = lambda alpha: build_model(ModelConfig.for_arch("l2_constrained", l2_alpha=alpha), data.task_names, data.task_groups,
                                      data.features, seed=0)
    distances = {}
    for alpha in (0.0, 1.0):
        run = TrainingRun(fresh(alpha), data.dataset(), train)
        for _ in run.events():
            pass
        distances[alpha] = column_distance(run.model)
    assert distances[1.0] < 0.5 * distances[0.0]   # 24 Adam steps of 1e-3: the penalty has more than halved it


def test_cross_stitch_columns_read_their_own_stream_and_mix_with_input_independent_weights():
    model = small_model("cross_stitch", groups=GROUPS, levels=2)
    first, second = model.plan.levels
    assert first.static_gates and second.static_gates
    assert first.expert_stream == (0, 0, 0) and second.expert_stream == (0, 1, 2)   # column k reads task k's mix
    assert first.mask.all() and (first.own == torch.eye(3).bool().numpy()).all()
    _, trace = model(torch.randn(32, 20), trace=True)
    weights = trace[0].gate_weights                                      # [batch, gates, experts]
    torch.testing.assert_close(weights, weights[:1].expand_as(weights))  # the same for every sample
    torch.testing.assert_close(weights[0].diagonal(), torch.full((3,), 0.9))   # near the identity at the start
    torch.testing.assert_close(weights[0].sum(1), torch.ones(3))
    loss = model(torch.randn(8, 20)).pow(2).sum()
    loss.backward()
    assert model.levels[0].gates.weight.grad.abs().sum() > 0   # the cross-stitch units learn


def test_tensor_factorization_weights_have_the_tucker_ranks_and_linear_init_spread():
    model = small_model("tensor_factorization", groups=GROUPS, expert_hidden=(16,), tucker_ranks=(4, 3, 2))
    linear = model.levels[0].experts.mlp.linears[0]
    weight = linear.weight[0].detach()                                   # [tasks, in, out]
    assert weight.shape == (3, 20, 16)
    assert torch.linalg.matrix_rank(weight.reshape(3, -1)) == 2                      # task mode: rank r3
    assert torch.linalg.matrix_rank(weight.permute(1, 0, 2).reshape(20, -1)) == 4    # input mode: rank r1
    assert torch.linalg.matrix_rank(weight.permute(2, 0, 1).reshape(16, -1)) == 3    # output mode: rank r2
    assert math.isclose(float(weight.std()), 1 / math.sqrt(3 * 20), rel_tol=1e-3)
    single = small_model("single_task", groups=GROUPS, expert_hidden=(16,))
    assert model.num_parameters() < single.num_parameters()


@pytest.mark.parametrize("arch", ["l2_constrained", "cross_stitch", "tensor_factorization"])
def test_baselines_learn(arch):
    data = DataConfig(tasks=2, correlation=0.5, samples=2000, holdout=200, sinusoids=0)   # linear tasks: learnable in 5 epochs
    result = train_grid([data], ModelConfig.for_arch(arch), TrainConfig(epochs=5, batch_size=64, eval_every=0, log_every=1000))
    mse = result.metrics[(result.metrics.split == "test") & (result.metrics.metric == "mse")].value
    assert (mse < 0.5).all()   # far better than predicting the mean (MSE 1 on standardised labels); measured 0.03-0.25
