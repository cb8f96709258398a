"""One-hot inputs or learned embeddings for census income's categorical columns? Measured on MMoE.

    python -m bench.census_encoding       # about 2 minutes on 2 cores

Both train the same MMoE (8 experts of 16, towers of 8, Adam 1e-3, batch 1024, 3 epochs, seed 0) on all
199,523 training rows of group 1 and report the test AUC of both tasks, seconds per epoch and the bytes
the inputs take. The embedding variant gives every categorical column a learned table of 4 numbers per
category (an embedding shared by all tasks), concatenated with the standardised numeric columns.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from mtl_core.data import census
from mtl_core.models import build_model, ModelConfig
from mtl_core.train.metrics import auc
from mtl_core.train.training import task_losses

EPOCHS, BATCH, DIM = 3, 1024, 4


def codes(group: int):
    """Integer codes `[rows, categorical]`, numeric `[rows, numeric]`, labels, part."""
    frame = census.read()
    y = census.labels(frame, group)
    inputs = frame.drop(columns=[source for _, source in census.GROUPS[group]] + ["part"])
    train = (frame.part == "train").to_numpy()
    numeric = inputs[list(census.NUMERIC)].to_numpy(np.float64)
    numeric = ((numeric - numeric[train].mean(0)) / numeric[train].std(0)).astype(np.float32)
    categorical = [c for c in inputs.columns if c not in census.NUMERIC]
    return (np.stack([inputs[c].cat.codes.to_numpy(np.int64) + 1 for c in categorical], 1),   # 0: missing
            [len(inputs[c].cat.categories) + 1 for c in categorical], numeric, y, frame.part.to_numpy(str))


class Embedded(nn.Module):
    def __init__(self, sizes, numeric: int, tasks):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, DIM) for n in sizes)
        self.model = build_model(ModelConfig.for_arch("mmoe"), tasks, (0, 0), numeric + DIM * len(sizes), seed=0)

    def forward(self, cats, nums):
        return self.model(torch.cat([nums, *(t(cats[:, i]) for i, t in enumerate(self.tables))], 1))


def train(model, inputs, y, rows, test_rows):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(EPOCHS):
        order = rows[torch.randperm(len(rows), generator=generator)]
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            loss = task_losses(model(*(t[batch] for t in inputs))[None], y[batch][None], torch.tensor([True, True])).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = (time.perf_counter() - started) / EPOCHS
    model.eval()
    with torch.no_grad():
        out = model(*(t[test_rows] for t in inputs)).numpy()
    return [auc(y[test_rows, k].numpy(), out[:, k]) for k in range(2)], seconds


def main() -> None:
    torch.manual_seed(0)
    config = census.CensusConfig(group=1)
    x, y, part, _ = census._encoded(1)
    train_rows, _, test_rows = (torch.as_tensor(r) for r in census.split_rows(part, config.samples, config.holdout))
    y = torch.as_tensor(y)
    onehot = build_model(ModelConfig.for_arch("mmoe"), config.task_names, (0, 0), x.shape[1], seed=0)
    one = train(onehot, (torch.as_tensor(x),), y, train_rows, test_rows)
    cats, sizes, nums, _, _ = codes(1)
    embedded = Embedded(sizes, nums.shape[1], config.task_names)
    emb = train(embedded, (torch.as_tensor(cats), torch.as_tensor(nums)), y, train_rows, test_rows)
    print(pd.DataFrame([
        dict(inputs="one-hot", width=x.shape[1], input_MB=x.nbytes / 1e6, params=sum(p.numel() for p in onehot.parameters()),
             auc_income=one[0][0], auc_never_married=one[0][1], s_per_epoch=one[1]),
        dict(inputs=f"embeddings ({DIM} per category)", width=nums.shape[1] + DIM * len(sizes), input_MB=(cats.nbytes + nums.nbytes) / 1e6,
             params=sum(p.numel() for p in embedded.parameters()), auc_income=emb[0][0], auc_never_married=emb[0][1], s_per_epoch=emb[1]),
    ]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
