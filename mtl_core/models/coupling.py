"""Penalties that couple the task columns' parameters: soft sharing as a term of the loss.

A routing decides which expert feeds which task; soft sharing keeps every task's column its own and
instead pulls the columns' weights together. That is not a routing, so it is a plug-in of its own:
an architecture's entry in the registry names its penalty, and the trainer adds it to the loss.
"""

from __future__ import annotations

import torch


def l2_between_columns(model) -> torch.Tensor:
    """The MMoE paper's L2-Constrained baseline (after Duong et al., ACL 2015): alpha * sum over task
    pairs i < j of ||theta_i - theta_j||^2, over every layer (weights and biases) of the task columns,
    i.e. the experts of each level. With K > 2 tasks the pairwise sum is our choice (the MMoE paper, Ma et al., KDD 2018, section 6, describes two tasks).
    Returns `[members]`, computed as K * sum_i ||theta_i||^2 - ||sum_i theta_i||^2."""
    total = 0.0
    for level in model.levels:
        for linear in level.experts.mlp.linears:
            for parameter in (linear.weight, linear.bias):
                columns = parameter.flatten(2)  # [members, units, n]
                total = total + columns.shape[1] * columns.pow(2).sum((1, 2)) - columns.sum(1).pow(2).sum(-1)
    return model.config.l2_alpha * total
