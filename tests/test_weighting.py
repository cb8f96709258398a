"""Each loss weighting on a constructed case where its effect is known."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mtl_core.data.synthetic import DataConfig
from mtl_core.diagnostics.recorder import gradient_conflict
from mtl_core.models import build_model, ModelConfig, stack_members
from mtl_core.train.training import TrainConfig, TrainingRun
from mtl_core.train.weighting import WEIGHTINGS, make_weighting, project_conflicting


class TwoTasksOneParameter(nn.Module):
    """L_k = a_k · θ on one shared parameter θ `[members=1, units=1, 2]`: task gradients are exactly a_k."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(1, 1, 2))

    def shared_parameters(self):
        return [(self.theta, [0])]


def test_pcgrad_removes_the_conflicting_component_of_opposite_gradients():
    model, a = TwoTasksOneParameter(), torch.tensor([[1.0, 0.0], [-1.0, 1.0]])   # a_0 · a_1 = -1 < 0
    losses = (model.theta[:, 0] * a[None]).sum(-1)   # [members=1, tasks=2]
    weighting = make_weighting("pcgrad", (False, False))
    weighting.backward(losses, model)
    g0 = a[0] - (a[0] @ a[1]) / (a[1] @ a[1]) * a[1]    # [0.5, 0.5]
    g1 = a[1] - (a[1] @ a[0]) / (a[0] @ a[0]) * a[0]    # [0, 1]
    torch.testing.assert_close(model.theta.grad[0, 0], g0 + g1)
    assert g0 @ a[1] == pytest.approx(0) and g1 @ a[0] == pytest.approx(0)   # no conflict left
    state = weighting.state()
    assert (state["conflict_share"] > 0).all() and (state["removed_share"] > 0).all()


def test_pcgrad_leaves_agreeing_gradients_alone():
    grads = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    projected, conflicts = project_conflicting(grads)
    torch.testing.assert_close(projected, grads)
    assert (conflicts == 0).all()


def regression_data(noise, samples=4000, seed=0):
    """Two tasks y_k = x·w + noise_k: one shared linear fit explains both up to their noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 4, generator=g)
    clean = x @ torch.tensor([1.0, -0.5, 0.3, 0.2])
    y = torch.stack([clean + n * torch.randn(samples, generator=g) for n in noise], -1)
    return x, y


def test_uncertainty_weighting_learns_each_task_noise_variance():
    x, y = regression_data(noise=(0.1, 1.0))
    predictor = nn.Linear(4, 2)
    weighting = make_weighting("uncertainty", (False, False))
    optimiser = torch.optim.Adam([*predictor.parameters(), *weighting.parameters()], lr=0.02)
    for step in range(1500):
        rows = torch.randint(0, len(x), (256,))
        losses = (predictor(x[rows]) - y[rows]).square().mean(0, keepdim=True)
        optimiser.zero_grad()
        weighting.backward(losses, predictor)
        optimiser.step()
    variance = np.exp(weighting.state()["log_variance"][0])
    assert variance == pytest.approx([0.01, 1.0], rel=0.3)   # σ_k² tracks the noise variance, 100x apart


def train(weighting, scale=10.0, steps=600):
    """Shared-Bottom on two tasks where task 1's labels are `scale` times task 0's (loss 100x larger)."""
    data = DataConfig(tasks=2, correlation=0.9, samples=4000, holdout=500, seed=0).dataset()
    data.train.y[:, 1] *= scale
    model = build_model(ModelConfig("shared_bottom"), data.config.task_names, (0, 0), features=data.train.x.shape[1], seed=0)
    run = TrainingRun(model, data, TrainConfig(lr=0.003, steps=steps, batch_size=128, weighting=weighting, eval_every=0))
    for _ in run.events():
        pass
    return run


def test_gradnorm_brings_together_gradient_norms_of_tasks_whose_losses_differ_100x():
    """Measured on 2,048 training rows: unweighted, task 1's gradient on the shared bottom is about 28x task 0's;
    GradNorm's weights cut that to about 3x (its target is equal norms times r^alpha, not exactly equal)."""
    equal, gradnorm = train("equal"), train("gradnorm")
    x, y = (t[:, :2048] for t in equal.splits["train"])
    weights = gradnorm.weighting.state()["weight"][0]
    norm_ratio = lambda run, w: np.divide(*(w * gradient_conflict(run.model, x, y, (False, False))[1][0])[::-1])
    assert norm_ratio(equal, 1) > 10                      # unweighted, the large task dominates the shared bottom
    assert weights[0] > 5 * weights[1] and weights.sum() == pytest.approx(2, rel=0.02)
    assert norm_ratio(gradnorm, weights) < norm_ratio(equal, 1) / 4


def test_dwa_gives_more_weight_to_the_task_whose_loss_fell_less():
    weighting = make_weighting("dwa", (False, False))
    model = TwoTasksOneParameter()
    for epoch_losses in ([1.0, 1.0], [0.5, 0.9], [0.25, 0.8]):
        weighting.backward((model.theta[:, 0].sum() * 0 + torch.tensor([epoch_losses])), model)
        assert weighting.state()["weight"][0] == pytest.approx([1, 1]) or epoch_losses[0] == 0.25
        weighting.new_epoch()
    w = weighting.state()["weight"][0]
    ratio = np.array([0.25 / 0.5, 0.8 / 0.9])
    assert w == pytest.approx(2 * np.exp(ratio / 2) / np.exp(ratio / 2).sum())
    assert w[1] > w[0] and w.sum() == pytest.approx(2)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_every_weighting_trains_a_stacked_mmoe_and_reports_its_weights(weighting):
    data = DataConfig(tasks=2, samples=600, holdout=200, seed=0).dataset()
    model = stack_members([build_model(ModelConfig("mmoe", experts=3, shared_input=8), data.config.task_names, (0, 0),
                                       features=data.train.x.shape[1], seed=s) for s in (0, 1)])
    config = TrainConfig(steps=30, batch_size=64, weighting=weighting, eval_every=0,
                         task_weights=(1.0, 2.0) if weighting == "fixed" else None)
    events = list(TrainingRun(model, [data, data], config).events())
    weights = events[-2].weighting["weight"]
    assert weights.shape == (2, 2) and np.isfinite(weights).all() and (weights > 0).all()
    if weighting in ("equal", "fixed", "pcgrad"):   # these never move the weights
        np.testing.assert_array_equal(weights, [[1.0, 2.0]] * 2 if weighting == "fixed" else np.ones((2, 2)))
    assert math.isfinite(events[-1].metrics.value.mean())
