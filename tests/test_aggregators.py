"""The weightings through TorchJD (mtl_core/train/aggregators.py) and FAMO, each against its paper's definition on
constructed gradients where the definition can be computed by hand; the project's PCGrad against TorchJD's."""

import pytest
import torch
from torchjd import aggregation as jd

from mtl_core.train import aggregators
from mtl_core.train.weighting import FAMO, make_weighting, project_conflicting, WEIGHTINGS

G = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)   # two tasks in conflict: g1 . g2 = -22


def update(name: str, grads: torch.Tensor) -> torch.Tensor:
    """The shared parameters' update our weighting `name` makes from `grads [tasks, P]`."""
    agg = aggregators.aggregator(name, len(grads))
    return aggregators.weights(agg, grads) @ grads


def needs(name):
    return pytest.mark.skipif(name in aggregators.MISSING, reason=f"{name} {aggregators.MISSING.get(name)}")


def test_pcgrad_ours_and_torchjds_are_the_papers_algorithm_and_agree_given_the_same_order():
    """Yu et al., Algorithm 1: each g_i loses its part along every g_j it conflicts with, in a random order. With two
    tasks the order cannot matter; with three mutually conflicting tasks both draw their orders with torch.randperm,
    so seeded alike (our generator, TorchJD's global one) they project in the same order and agree exactly: where
    they differ in a run, it is only the order drawn."""
    g1, g2 = G
    by_hand = (g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g2 @ g1) / (g1 @ g1) * g1)
    ours = project_conflicting(G[None])[0][0].sum(0)
    assert torch.allclose(ours, by_hand) and torch.allclose(jd.PCGrad()(G), by_hand)
    three = torch.tensor([[1.0, 0.0], [-0.6, 0.8], [-0.6, -0.9]], dtype=torch.float64)
    assert (three @ three.T - torch.diag(torch.diag(three @ three.T)) < 0).sum() == 6   # every pair conflicts
    for seed in range(5):
        torch.manual_seed(seed)
        theirs = jd.PCGrad()(three)
        ours = project_conflicting(three[None], torch.Generator().manual_seed(seed))[0][0].sum(0)
        assert torch.allclose(ours, theirs, atol=1e-6), seed


def test_mgda_is_the_min_norm_point_of_the_hull():
    """Désidéri; Sener & Koltun: for two tasks the minimum-norm point α g1 + (1 − α) g2 has
    α = clip(((g2 − g1) . g2) / |g1 − g2|^2, 0, 1)."""
    g1, g2 = G
    alpha = torch.clamp((g2 - g1) @ g2 / (g1 - g2).square().sum(), 0, 1)
    assert torch.allclose(update("mgda", G), alpha * g1 + (1 - alpha) * g2, atol=1e-4)


@needs("upgrad")
def test_upgrad_averages_each_gradient_projected_onto_the_dual_cone():
    """Quinton & Rey: the mean of each g_i projected onto {x : g_j . x >= 0 for all j}. For two rows the projection of
    g1 is g1 minus its conflicting part along g2 (it then still agrees with g1, by Cauchy-Schwarz)."""
    g1, g2 = G
    project = lambda a, b: a - min(0.0, float(a @ b)) / (b @ b) * b
    # TorchJD solves the projection as a quadratic program with 1e-4 added to the Gramian's diagonal: close, not exact
    assert torch.allclose(update("upgrad", G), (project(g1, g2) + project(g2, g1)) / 2, atol=1e-3)
    agree = torch.tensor([[1.0, 0.2], [0.3, 1.0]], dtype=torch.float64)   # no conflict: the plain mean
    assert torch.allclose(update("upgrad", agree), agree.mean(0), atol=1e-3)


@needs("cagrad")
def test_cagrad_is_the_papers_update_in_the_ball_around_the_mean_gradient():
    """Liu et al.: d = g0 + c|g0| g_w / |g_w| with w minimising g_w . g0 + c |g0| |g_w| over the simplex (g0 the mean
    gradient, c = 0.4); d lies on the ball |d - g0| <= c |g0| and no point of the ball does better for the worst task."""
    g0, c = G.mean(0), 0.4
    a = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None]
    hull = a * G[0] + (1 - a) * G[1]
    gw = hull[torch.argmin(hull @ g0 + c * g0.norm() * hull.norm(dim=1))]
    d = update("cagrad", G)
    assert torch.allclose(d, g0 + c * g0.norm() / gw.norm() * gw, atol=1e-3)
    ball = g0 + c * g0.norm() * torch.nn.functional.normalize(torch.randn(5000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), dim=1)
    assert (ball @ G.T).min(1).values.max() <= (G @ d).min() + 1e-3


@needs("nashmtl")
def test_nash_mtl_weights_solve_the_bargaining_condition():
    """Navon et al.: α with (G Gᵀ α)_i = 1 / α_i for every task, up to the scale TorchJD normalises to."""
    w = aggregators.weights(aggregators.aggregator("nashmtl", 2), G.float()).double()
    products = (G @ G.T @ w) * w
    assert (w > 0).all() and torch.allclose(products, products.mean().expand(2), rtol=1e-2)


def test_imtl_g_makes_the_updates_projections_on_every_task_equal():
    """Liu et al. (IMTL-G): weights summing to 1 such that d . g_i / |g_i| is the same for every task."""
    w = aggregators.weights(aggregators.aggregator("imtlg", 2), G)
    projections = torch.nn.functional.normalize(G, dim=1) @ (w @ G)
    assert w.sum() == pytest.approx(1) and torch.allclose(projections[0], projections[1], rtol=1e-4)


def test_aligned_mtl_adds_the_gradients_aligned_to_the_smallest_singular_value():
    """Senushkin et al.: G = U S Vᵀ becomes σ_min U Vᵀ (every singular value the smallest), and the update is the mean of
    its rows."""
    u, s, vh = torch.linalg.svd(G, full_matrices=False)
    assert torch.allclose(update("alignedmtl", G), (s.min() * u @ vh).mean(0), atol=1e-4)


def test_gradvac_first_step_is_pcgrad_and_leaves_agreeing_gradients_alone():
    """Wang et al.: each pair is moved to the cosine target φ̂, an average starting at 0: on the first step a conflicting
    pair is moved to cosine 0, which is PCGrad's projection; a pair above its target is left as it is."""
    assert torch.allclose(update("gradvac", G), jd.PCGrad()(G), atol=1e-5)
    agree = torch.tensor([[1.0, 0.2], [0.3, 1.0]], dtype=torch.float64)
    assert torch.allclose(update("gradvac", agree), agree.sum(0), atol=1e-6)


def test_rlw_draws_positive_weights_that_sum_to_one_every_step():
    """Lin et al.: a softmax of standard normal draws, redrawn each step."""
    agg = aggregators.aggregator("rlw", 3)
    draws = torch.stack([aggregators.weights(agg, G[[0, 1, 0]]) for _ in range(50)])
    assert (draws > 0).all() and torch.allclose(draws.sum(1), torch.ones(50, dtype=G.dtype)) and draws.std(0).min() > 0.05


def test_famo_weights_the_gradients_by_z_over_the_loss_and_moves_weight_to_the_task_whose_loss_stalls():
    """Liu et al. (FAMO), Algorithm 1: the model's gradient is Σ_k c z_k ∇L_k / L_k with c = 1 / Σ_k z_k / L_k; the logits
    descend Jzᵀ δ with δ the decrease of each log loss, so a task whose loss falls less gets more weight."""
    famo = FAMO(tasks=2)
    theta = torch.nn.Parameter(torch.tensor([2.0, 3.0]))
    model = type("M", (torch.nn.Module,), {"shared_parameters": lambda self: []})()
    for step in range(30):
        theta.grad = None
        task_losses = torch.stack([theta[0] ** 2 * 0.9 ** step, theta[1] ** 2])[None]   # task 0 keeps falling, task 1 stalls
        famo.backward(task_losses, model)
        z = torch.softmax(famo.logits[0], 0)
        losses = task_losses.detach()[0]
        c = 1 / (z / losses).sum()
        expected = c * z / losses * torch.stack([2 * theta[0] * 0.9 ** step, 2 * theta[1]]).detach()
        assert torch.allclose(theta.grad, expected, rtol=1e-4)
        assert torch.allclose(famo.weights()[0], c * z / losses, rtol=1e-4)
    assert z[1] > 0.55 > 0.45 > z[0]


def test_every_weighting_trains_a_model_and_reports_a_weight_per_task():
    from conftest import small_model

    model = small_model("mmoe")
    for name in WEIGHTINGS:
        weighting = make_weighting(name, (False, True, False), task_weights=(1.0, 2.0, 1.0))
        model.zero_grad()
        x = torch.randn(32, 20)
        task_losses = model(x).square().mean(0)[None]
        weighting.backward(task_losses, model)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad), name
        assert weighting.state()["weight"].shape == (1, 3), name
