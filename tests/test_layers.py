"""The batched building blocks equal a plain looped reference, and every unit learns."""

import torch
from torch import nn

from mtl_core.models.layers import BatchedLinear, BatchedNorm, FeatureGate, MLPBank


def looped_reference(bank: MLPBank, member: int, unit: int) -> nn.Sequential:
    """The same expert written the way most libraries do: nn.Linear modules, one per layer."""
    layers = []
    for i, linear in enumerate(bank.linears):
        ref = nn.Linear(*linear.weight.shape[2:])
        with torch.no_grad():
            ref.weight.copy_(linear.weight[member, unit].T)
            ref.bias.copy_(linear.bias[member, unit, 0])
        layers.append(ref)
        if i < bank.n_act:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def test_bank_equals_looped_reference():
    torch.manual_seed(0)
    bank = MLPBank(members=2, units=5, sizes=(12, 16, 8))
    x = torch.randn(2, 1, 64, 12)
    out = bank(x)  # [members, units, batch, out]
    assert out.shape == (2, 5, 64, 8)
    for m in range(2):
        for u in range(5):
            torch.testing.assert_close(out[m, u], looped_reference(bank, m, u)(x[m, 0]), rtol=1e-5, atol=1e-6)


def test_bank_with_per_unit_inputs_equals_reference():
    torch.manual_seed(1)
    bank = MLPBank(members=1, units=3, sizes=(6, 4, 1), activate_last=False)
    x = torch.randn(1, 3, 10, 6)
    out = bank(x)
    for u in range(3):
        torch.testing.assert_close(out[0, u], looped_reference(bank, 0, u)(x[0, u]), rtol=1e-5, atol=1e-6)


def test_every_expert_receives_gradient():
    torch.manual_seed(2)
    bank = MLPBank(members=2, units=8, sizes=(10, 16), activation="swish", norm=True)
    bank(torch.randn(2, 1, 32, 10)).sum().backward()
    for p in bank.parameters():
        per_unit = p.grad.abs().flatten(2).sum(-1)  # [members, units]
        assert (per_unit > 0).all()


def test_batched_norm_matches_batchnorm1d_per_unit():
    torch.manual_seed(3)
    norm = BatchedNorm(members=1, units=2, features=4)
    x = torch.randn(1, 2, 50, 4) * 3 + 1
    ref = nn.BatchNorm1d(4)
    for _ in range(3):
        out = norm(x)
        ref_out = ref(x[0, 1])
    torch.testing.assert_close(out[0, 1], ref_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(norm.running_mean[0, 1, 0], ref.running_mean)
    torch.testing.assert_close(norm.running_var[0, 1, 0], ref.running_var)
    norm.eval(), ref.eval()
    torch.testing.assert_close(norm(x)[0, 1], ref(x[0, 1]), rtol=1e-4, atol=1e-5)


def test_batched_norm_trains_on_a_batch_of_one():
    norm = BatchedNorm(members=2, units=3, features=4)  # an epoch's last batch can hold one sample
    out = norm(torch.randn(2, 3, 1, 4))
    torch.testing.assert_close(out, norm.bias.expand(2, 3, 1, 4))
    assert torch.isfinite(norm.running_var).all()


def test_feature_gate_starts_as_identity_and_learns():
    torch.manual_seed(4)
    gate = FeatureGate(members=1, units=3, features=10, rank=4)
    x = torch.randn(1, 1, 20, 10)
    torch.testing.assert_close(gate(x), x.expand(1, 3, 20, 10))
    gate(x).square().sum().backward()
    assert gate.up.grad.abs().sum() > 0


def test_batched_linear_shapes():
    layer = BatchedLinear(members=3, units=4, in_features=5, out_features=6)
    assert layer(torch.randn(3, 4, 7, 5)).shape == (3, 4, 7, 6)
