"""Masked softmax gates of one level, all computed in one tensor op."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .layers import uniform_, units_matmul


def softmax_experts(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension (the experts), -inf for forbidden experts.

    PyTorch's CPU softmax is slow when that dimension is shorter than 16 (measured, forward and
    backward: 590 us for 8,192 rows of 8 experts against 94 us for rows of 16). From 2,048 such rows
    on (stacked gates) exp and a sum are faster (210 us), so we use them there. The max is detached:
    softmax does not change when all logits shift, so the shift needs no gradient.
    """
    experts = logits.shape[-1]
    if logits.device.type != "cpu" or experts >= 16 or logits.numel() < 2048 * experts:
        return torch.softmax(logits, dim=-1)
    exp = (logits - logits.detach().amax(-1, keepdim=True)).exp()
    return exp / exp.sum(-1, keepdim=True)


class GateBank(nn.Module):
    """The gates of one level: logits from each gate's input stream, a mask, a softmax.

    mask, own: `[gates, experts]`. A gate whose mask allows one expert always gives it weight 1;
    when every gate is like that (Shared-Bottom, single-task) the bank has no parameters.
    Practitioners' options against gate polarisation: softmax `temperature`, gate `dropout`
    (during training each allowed expert is dropped with probability q and the rest renormalised;
    a gate never loses all its experts), `init_scale` times nn.Linear's default initialisation
    (0 = uniform gates at the start), `layer_norm`: each gate's logits are standardised over the experts it
    may see (zero mean, unit variance, no learned gain) before the temperature, so their scale cannot run
    away and no gate puts more than about e^√(n−1) times the weight on one expert as on the others (practitioners
    apply it to the gate input or to the logits; the logits are chosen because that bounds the polarisation
    itself). Gates have no bias, as in the MMoE paper. The temperature divides the logits: above 1 it
    narrows the gaps between the weights, below 1 it widens them.

    With `static`, a gate's weights do not depend on its input: its logits are learned constants
    `[members, gates, 1, experts]`, started so that the experts the gate owns get 0.9 of the weight and
    the others share 0.1 (Misra et al.'s cross-stitch initialisation, near the identity).

    With `self_gate`, a second gate weighs only the experts the gate's module owns (sigmoid when it
    owns one, softmax over them otherwise); its weights are added to the gated mix as a residual
    (HoME, Wang et al., KDD 2025; the additive variant is our choice: the abstract does not say).
    """

    def __init__(self, members: int, in_features: int, mask: np.ndarray, own: np.ndarray, temperature: float = 1.0,
                 dropout: float = 0.0, init_scale: float = 1.0, self_gate: bool = False, static: bool = False,
                 layer_norm: bool = False):
        super().__init__()
        self.temperature, self.dropout, self.layer_norm = temperature, dropout, layer_norm
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.bool)[None, :, None, :], persistent=False)  # [1, G, 1, E]
        self.register_buffer("own", torch.as_tensor(own, dtype=torch.bool)[None, :, None, :], persistent=False)
        gates, experts = mask.shape
        self.learned = bool((mask.sum(1) > 1).any())
        self.masks_anything = not bool(mask.all())
        self.static = static
        if not self.learned:
            self.weight = None
        elif static:
            self.weight = nn.Parameter(_near_identity(mask, own).expand(members, -1, -1, -1).clone())
        else:
            self.weight = nn.Parameter(uniform_(torch.empty(members, gates, in_features, experts), in_features, init_scale))
        self.self_weight = nn.Parameter(uniform_(torch.empty(members, gates, in_features, experts), in_features, init_scale)) \
            if self_gate else None
        self.register_buffer("own_is_single", torch.as_tensor(own.sum(1) == 1)[None, :, None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x `[members, gates or 1, batch, in]` -> (weights, self_weights), each `[members, gates, batch, experts]`.

        weights are zero where the mask forbids and sum to 1 over experts; self_weights is None
        without a self-gate.
        """
        members, batch = x.shape[0], x.shape[2]
        if self.weight is None:
            weights = self.mask.to(x.dtype).expand(members, -1, batch, -1)
        else:
            logits = self.weight.expand(-1, -1, batch, -1) if self.static else units_matmul(x, self.weight)
            if self.layer_norm:
                logits = _standardise(logits, self.mask)
            if self.temperature != 1:
                logits = logits / self.temperature
            mask = self.mask
            if self.training and self.dropout > 0:
                kept = mask & (torch.rand(members, mask.shape[1], batch, mask.shape[3], device=x.device) >= self.dropout)
                mask = torch.where(kept.any(-1, keepdim=True), kept, mask)
            if self.masks_anything or self.training and self.dropout > 0:
                logits = logits.masked_fill(~mask, float("-inf"))
            weights = softmax_experts(logits)
        return weights, self._self_weights(x)

    def _self_weights(self, x: torch.Tensor) -> torch.Tensor | None:
        if self.self_weight is None:
            return None
        logits = units_matmul(x, self.self_weight)
        softmax = softmax_experts(logits.masked_fill(~self.own, float("-inf"))).nan_to_num(0.0)
        sigmoid = torch.sigmoid(logits) * self.own
        return torch.where(self.own_is_single, sigmoid, softmax)


def _standardise(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """logits `[members, gates, batch, experts]` to zero mean and unit variance over the experts `mask` allows."""
    allowed = mask.to(logits.dtype)
    count = allowed.sum(-1, keepdim=True)
    mean = (logits * allowed).sum(-1, keepdim=True) / count
    variance = ((logits - mean).square() * allowed).sum(-1, keepdim=True) / count
    return (logits - mean) * torch.rsqrt(variance + 1e-5)


def _near_identity(mask: np.ndarray, own: np.ndarray, kept: float = 0.9) -> torch.Tensor:
    """Static gate logits `[1, gates, 1, experts]`: softmax gives a gate's own experts `kept` of the weight
    and its other allowed experts the rest, equally; forbidden experts are masked later."""
    owned, others = own.sum(1, keepdims=True), (mask & ~own).sum(1, keepdims=True)
    weights = np.where(own, kept / np.maximum(owned, 1), (1 - kept) / np.maximum(others, 1))
    return torch.as_tensor(np.log(weights), dtype=torch.float32)[None, :, None, :]
