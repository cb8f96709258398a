"""Batched building blocks: many small networks of one shape computed in one tensor op.

Layout everywhere inside the models: `[members, units, batch, features]`.
`members` are independent models trained together (a grid of seeds or correlations; 1 for a
single run); `units` are the experts of a level, the gates, or the towers. Each unit has its
own weights; one `torch.matmul` over the two leading dimensions computes them all.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def uniform_(tensor: torch.Tensor, fan_in: int, scale: float = 1.0) -> torch.Tensor:
    """nn.Linear's default initialisation U(-1/sqrt(fan_in), 1/sqrt(fan_in)), times `scale`."""
    bound = scale / math.sqrt(fan_in)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


class BatchedLinear(nn.Module):
    """`units` independent linear maps for each member.

    weight `[members, units, in, out]`, bias `[members, units, 1, out]`.
    forward: x `[members, units or 1, batch, in]` -> `[members, units, batch, out]`.
    A units-dimension of 1 means every unit reads the same input: then all units are one wide
    matmul `[batch, in] @ [in, units * out]` instead of `units` small ones.
    """

    def __init__(self, members: int, units: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(uniform_(torch.empty(members, units, in_features, out_features), in_features))
        self.bias = nn.Parameter(uniform_(torch.empty(members, units, 1, out_features), in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, units, fan_in, fan_out = self.weight.shape
        if x.shape[1] == 1 and units > 1:
            return wide_matmul(x, self.weight, self.bias)
        batch = x.shape[2]
        out = torch.baddbmm(self.bias.reshape(members * units, 1, fan_out),
                            x.expand(members, units, batch, fan_in).reshape(members * units, batch, fan_in),
                            self.weight.reshape(members * units, fan_in, fan_out))
        return out.view(members, units, batch, fan_out)


class TuckerLinear(nn.Module):
    """`units` linear maps whose weights are one Tucker-factorised tensor (Yang and Hospedales, ICLR 2017):

    W `[in, out, units]` = S x_1 U_in x_2 U_out x_3 U_units, core S `[r_in, r_out, r_units]`, factors
    U_in `[in, r_in]`, U_out `[out, r_out]`, U_units `[units, r_units]` (each with a members dimension);
    ranks are clamped to the sizes. Biases stay one per unit. Factors start with nn.Linear's uniform
    initialisation and the core is rescaled so the composed weights have nn.Linear's spread
    (std 1/sqrt(3 in)). forward: as BatchedLinear.
    """

    def __init__(self, members: int, units: int, in_features: int, out_features: int, ranks: tuple[int, int, int]):
        super().__init__()
        r_in, r_out, r_units = min(ranks[0], in_features), min(ranks[1], out_features), min(ranks[2], units)
        self.core = nn.Parameter(torch.randn(members, r_in, r_out, r_units))
        self.u_in = nn.Parameter(uniform_(torch.empty(members, in_features, r_in), r_in))
        self.u_out = nn.Parameter(uniform_(torch.empty(members, out_features, r_out), r_out))
        self.u_units = nn.Parameter(uniform_(torch.empty(members, units, r_units), r_units))
        self.bias = nn.Parameter(uniform_(torch.empty(members, units, 1, out_features), in_features))
        with torch.no_grad():
            std = self.weight.flatten(1).std(1)
            self.core.mul_((1 / math.sqrt(3 * in_features) / std)[:, None, None, None])

    @property
    def weight(self) -> torch.Tensor:
        """The composed weights `[members, units, in, out]`."""
        return torch.einsum("mabc,mia,mob,muc->muio", self.core, self.u_in, self.u_out, self.u_units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return units_matmul(x, self.weight) + self.bias


def wide_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Every unit reads the same input: x `[members, 1, batch, in]`, weight `[members, units, in, out]`,
    bias `[members, units, 1, out]` -> `[members, units, batch, out]` from one wide matmul (bias fused).

    The result is a transposed view of a contiguous `[members, batch, units, out]` tensor, the layout
    the per-sample gate mix reads without a copy.
    """
    members, units, fan_in, fan_out = weight.shape
    wide = weight.transpose(1, 2).reshape(members, fan_in, units * fan_out)
    if bias is None:
        out = torch.bmm(x[:, 0], wide)
    else:
        out = torch.baddbmm(bias.reshape(members, 1, units * fan_out), x[:, 0], wide)
    return out.view(members, -1, units, fan_out).transpose(1, 2)


def units_matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x `[members, units or 1, batch, in]` @ weight `[members, units, in, out]` -> `[members, units, batch, out]`,
    as one wide matmul when every unit reads the same input."""
    return wide_matmul(x, weight) if x.shape[1] == 1 and weight.shape[1] > 1 else torch.matmul(x, weight)


class BatchedNorm(nn.Module):
    """Batch normalisation per (member, unit, feature), statistics over the batch.

    The expert normalisation of HoME: every expert's output is put on a comparable scale.
    x `[members, units, batch, features]` -> same shape, as a view of a batch-major
    `[batch, members, units, features]` tensor (the layout the gate mix reads). Running statistics
    (unbiased variance, as nn.BatchNorm1d) for evaluation.

    Computed by one `F.batch_norm` over `[batch, members * units * features]` channels: its fused
    kernel is several times faster than reducing over the batch dimension in place.
    """

    def __init__(self, members: int, units: int, features: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(members, units, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, units, 1, features))
        self.register_buffer("running_mean", torch.zeros(members, units, 1, features))
        self.register_buffer("running_var", torch.ones(members, units, 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, units, batch, features = x.shape
        if self.training and batch == 1:  # one sample has no batch statistics: it normalises to the shift
            return self.bias.expand_as(x)
        channels = x.permute(2, 0, 1, 3).reshape(batch, members * units * features)
        out = F.batch_norm(channels, self.running_mean.view(-1), self.running_var.view(-1), self.weight.view(-1),
                           self.bias.view(-1), self.training, self.momentum, self.eps)
        return out.view(batch, members, units, features).permute(1, 2, 0, 3)


class FeatureGate(nn.Module):
    """HoME's feature gate: each unit sees its own re-weighted copy of the input.

    v_e = v * 2·sigmoid(v B_e C_e), B `[members, units, in, rank]`, C `[members, units, rank, in]`.
    The factor 2 keeps the gate's mean at 1; C starts at zero so the gate starts as the identity
    (LoRA-style). HoME's abstract gives neither the rank nor the placement; here every expert of a
    HoME model has a feature gate on its own input.
    x `[members, units or 1, batch, in]` -> `[members, units, batch, in]`.
    """

    def __init__(self, members: int, units: int, features: int, rank: int):
        super().__init__()
        rank = min(rank, features)
        self.down = nn.Parameter(uniform_(torch.empty(members, units, features, rank), features))
        self.up = nn.Parameter(torch.zeros(members, units, rank, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 * torch.sigmoid(torch.matmul(units_matmul(x, self.down), self.up))


def activation_fn(name: str):
    return {"relu": F.relu, "swish": F.silu}[name]


class MLPBank(nn.Module):
    """`units` MLPs of identical shape, one batched matmul per layer.

    sizes = (in, h1, ..., out). Every layer is Linear [-> BatchedNorm] -> activation, except that
    with `activate_last=False` the last layer is a plain linear output (towers). With `tucker_ranks`
    every layer's weights over the units are one Tucker-factorised tensor (TuckerLinear).
    x `[members, units or 1, batch, in]` -> `[members, units, batch, out]`.
    """

    def __init__(self, members: int, units: int, sizes: tuple[int, ...], activation: str = "relu",
                 norm: bool = False, activate_last: bool = True, tucker_ranks: tuple[int, int, int] | None = None):
        super().__init__()
        self.linears = nn.ModuleList(BatchedLinear(members, units, i, o) if tucker_ranks is None else
                                     TuckerLinear(members, units, i, o, tucker_ranks) for i, o in zip(sizes[:-1], sizes[1:]))
        n_act = len(self.linears) if activate_last else len(self.linears) - 1
        self.norms = nn.ModuleList(BatchedNorm(members, units, o) for o in sizes[1:n_act + 1]) if norm else None
        self.n_act = n_act
        self.act = activation_fn(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, linear in enumerate(self.linears):
            x = linear(x)
            if i < self.n_act:
                if self.norms is not None:
                    x = self.norms[i](x)
                x = self.act(x)
        return x
