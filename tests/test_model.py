"""The model's contract: predictions and trace shapes, gates that obey their masks, sizes, seeds."""

import math
import pytest
import torch

from mtl_core.config import ConfigError
from mtl_core.models import (ARCHITECTURES, ModelConfig, count_parameters, match_bottom_to,
                             stack_members)
from mtl_core.models.gates import softmax_experts
from mtl_core.models.registry import REGISTRY

from conftest import TASKS, small_model

GROUPS = (0, 0, 1)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_trace_shapes_and_gates_obey_mask(arch):
    model = small_model(arch)
    predictions, trace = model(torch.randn(40, 20), trace=True)
    assert predictions.shape == (40, 3 + (REGISTRY[arch].funnel == "dr"))   # ESCM2-DR: one imputation tower more
    for level in trace:
        gates, experts = level.plan.n_gates, level.plan.n_experts
        assert level.gate_weights.shape == (40, gates, experts)
        assert level.expert_outputs.shape == (40, experts, level.plan.hidden[-1])
        forbidden = ~torch.as_tensor(level.plan.mask)
        assert (level.gate_weights[:, forbidden] == 0).all()
        torch.testing.assert_close(level.gate_weights.sum(-1), torch.ones(40, gates))


def test_without_trace_returns_only_predictions():
    out = small_model("mmoe")(torch.randn(4, 20))
    assert isinstance(out, torch.Tensor) and out.shape == (4, 3)


def test_home_self_gate_weights_cover_only_own_experts():
    model = small_model("home")
    _, trace = model(torch.randn(16, 20), trace=True)
    for level in trace:
        not_own = ~torch.as_tensor(level.plan.own)
        assert level.self_gate_weights is not None
        assert (level.self_gate_weights[:, not_own] == 0).all()


def test_gate_temperature_and_init_scale():
    x = torch.randn(64, 20)
    _, trace = small_model("mmoe", gate_init_scale=0.0)(x, trace=True)
    torch.testing.assert_close(trace[0].gate_weights, torch.full_like(trace[0].gate_weights, 1 / 8))
    sharp = small_model("mmoe", gate_temperature=0.05)(x, trace=True)[1][0].gate_weights.max(-1).values.mean()
    soft = small_model("mmoe", gate_temperature=1.0)(x, trace=True)[1][0].gate_weights.max(-1).values.mean()
    assert sharp > soft


def test_gate_temperature_above_one_narrows_the_gaps():
    x = torch.randn(64, 20)
    top = lambda t: small_model("mmoe", gate_init_scale=5.0, gate_temperature=t)(x, trace=True)[1][0].gate_weights.max(-1).values.mean()
    assert top(4.0) < top(1.0) < top(0.25)


def test_gate_layer_norm_bounds_the_logits_scale():
    """Huge gate weights polarise a plain gate; standardised logits keep every weight above e^-sqrt(n-1)/n."""
    x = torch.randn(64, 20)
    plain, normed = small_model("mmoe", gate_init_scale=100.0), small_model("mmoe", gate_init_scale=100.0, gate_layer_norm=True)
    assert plain(x, trace=True)[1][0].gate_weights.max(-1).values.mean() > 0.9
    weights = normed(x, trace=True)[1][0].gate_weights
    assert weights.min() > math.exp(-math.sqrt(7)) / 8 / math.e and weights.max(-1).values.mean() < 0.5
    torch.testing.assert_close(weights.sum(-1), torch.ones(64, 3))


def test_shared_input_layer_feeds_every_expert_and_is_shared():
    model = small_model("mmoe", shared_input=12)
    assert model.levels[0].experts.mlp.linears[0].weight.shape[-2] == 12
    assert model(torch.randn(5, 20)).shape == (5, 3)
    shared = model.shared_parameters()
    assert {id(p) for p, _ in shared} >= {id(p) for p in model.shared_input.parameters()}
    assert small_model("single_task").shared_parameters() == []


def test_gate_dropout_drops_and_renormalises_only_in_training():
    model = small_model("mmoe", gate_dropout=0.5)
    x = torch.randn(200, 20)
    weights = model(x, trace=True)[1][0].gate_weights
    assert (weights == 0).float().mean() > 0.3
    torch.testing.assert_close(weights.sum(-1), torch.ones(200, 3))
    model.eval()
    assert (model(x, trace=True)[1][0].gate_weights > 0).all()


@pytest.mark.parametrize("shape", [(1, 2, 256, 8), (15, 2, 256, 12), (4, 3, 1024, 16)])  # torch's path, ours, torch's
def test_softmax_experts_equals_torch_softmax_with_masks(shape):
    torch.manual_seed(5)
    logits = (torch.randn(shape) * 5).masked_fill(torch.rand(shape) < 0.3, float("-inf"))
    logits[..., 0] = 1.0  # every row keeps an allowed expert
    logits.requires_grad_(True)
    ours = softmax_experts(logits)
    grad = torch.randn(shape)
    (ours_grad,) = torch.autograd.grad(ours, logits, grad)
    ref = torch.softmax(logits, dim=-1)
    (ref_grad,) = torch.autograd.grad(ref, logits, grad)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours_grad, ref_grad)


@pytest.mark.parametrize("arch, sizes", [("mmoe", dict(experts=1)), ("cgc", dict(experts=1, task_experts=0)),
                                         ("ple", dict(experts=1, task_experts=0)),
                                         ("home", dict(experts=1, group_experts=0, self_gate=False))])
def test_gates_that_share_one_expert_pass_it_to_every_task(arch, sizes):
    model = small_model(arch, **sizes)
    x = torch.randn(8, 20)
    predictions, trace = model(x, trace=True)
    assert predictions.shape == (8, len(TASKS))
    assert (trace[0].gate_weights == 1).all()  # every gate of the first level sees one expert


def test_fixed_routing_has_no_gate_parameters():
    assert small_model("shared_bottom").gate_parameters() == []
    assert small_model("single_task").gate_parameters() == []
    assert len(small_model("mmoe").gate_parameters()) == 1


def test_mmoe_paper_parameter_count_and_matched_bottom():
    # d=100, 8 experts x 16, towers of 8, two tasks: experts 8*(100*16+16), gates 2*100*8, towers 2*(16*8+8+8+1)
    mmoe = ModelConfig("mmoe")
    assert count_parameters(mmoe, ("t0", "t1"), (0, 0), 100) == 8 * 1616 + 1600 + 2 * 145
    sb = match_bottom_to(ModelConfig("shared_bottom"), mmoe, ("t0", "t1"), (0, 0), 100)
    assert abs(count_parameters(sb, ("t0", "t1"), (0, 0), 100) - 14818) <= 117 // 2 + 1


def test_same_seed_same_weights():
    a, b, c = small_model("home", seed=3), small_model("home", seed=3), small_model("home", seed=4)
    x = torch.randn(8, 20)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))


@pytest.mark.parametrize("arch", ["mmoe", "ple", "home"])
def test_stacked_members_equal_solo_models(arch):
    solos = [small_model(arch, seed=s) for s in (0, 1, 2)]
    stacked = stack_members(solos)
    x = torch.randn(3, 16, 20)
    out, trace = stacked(x, trace=True)
    assert out.shape == (3, 16, 3) and trace[0].gate_weights.shape[0] == 3
    for m, solo in enumerate(solos):
        torch.testing.assert_close(out[m], solo(x[m]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(arch="moe"), "Unknown architecture 'moe'"),
    (dict(experts=0), "experts must be between 1 and 64"),
    (dict(levels=4), "PLE levels must be 1, 2 or 3"),
    (dict(expert_hidden=()), "expert_hidden must be one or more layer sizes"),
    (dict(gate_dropout=1.0), "gate_dropout is a probability"),
    (dict(gate_temperature=0), "gate_temperature must be positive"),
    (dict(arch="mmoe", self_gate=True), "self_gate mixes a module's own experts"),
    (dict(activation="tanh"), "activation must be one of relu, swish"),
])
def test_invalid_model_configs_say_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)


def test_home_expert_norm_switch_sets_activation():
    assert ModelConfig.for_arch("home").activation == "swish"
    off = ModelConfig.for_arch("home", expert_norm=False)
    assert off.activation == "relu" and not off.expert_norm and off.feature_gate and off.self_gate


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_batched_model_equals_looped_reference(arch):
    """The whole model, batched, equals one module per expert/gate/tower with Python loops."""
    from mtl_core.models.reference import LoopedModel

    model = small_model(arch, seed=7)
    x = torch.randn(64, 20)
    torch.testing.assert_close(model(x), LoopedModel.from_batched(model)(x), rtol=1e-4, atol=1e-5)
