"""Where do MMoE's gates polarise? The search behind `experiments.GATE_DATA` / `GATE_TRAIN`.

    python -m bench.polarisation          # about 2 minutes on 2 cores

Plain MMoE (8 experts of 16) on the paper's generator at 20,000 samples, 15 epochs, 3 seeds stacked, in
settings from the paper's own towards harder training; per setting, at the end of training: the gates'
normalised entropy (1 = uniform, 0 = one expert per sample), the share of samples whose top expert gets
over 0.9 of the weight, the top share of the gates' mean weights, and the test MSE.
"""

from __future__ import annotations

import time
from dataclasses import replace

from mtl_core.data.synthetic import DataConfig
from mtl_core.models import ModelConfig
from mtl_core.train.runs import train_grid
from mtl_core.train.training import TrainConfig

DATA = DataConfig(samples=20_000, holdout=2_000)
TRAIN = TrainConfig(lr=1e-3, batch_size=256, epochs=15, log_every=10_000, eval_every=0)
MMOE = ModelConfig("mmoe")
SETTINGS = {   # name -> (data, model, training)
    "paper, p = 0.5": (replace(DATA, correlation=0.5), MMOE, TRAIN),
    "p = 0, 4 experts": (replace(DATA, correlation=0.0), MMOE.with_(experts=4), TRAIN),
    "p = 0.5, lr 1e-2": (replace(DATA, correlation=0.5), MMOE, replace(TRAIN, lr=1e-2)),
    "p = 0, 4 experts, lr 1e-2": (replace(DATA, correlation=0.0), MMOE.with_(experts=4), replace(TRAIN, lr=1e-2)),
    "p = 0.5, lr 3e-2": (replace(DATA, correlation=0.5), MMOE, replace(TRAIN, lr=3e-2)),
    "p = 0.5, lr 3e-2, 30 epochs": (replace(DATA, correlation=0.5), MMOE, replace(TRAIN, lr=3e-2, epochs=30)),
    "p = 0.5, lr 1e-1": (replace(DATA, correlation=0.5), MMOE, replace(TRAIN, lr=1e-1)),
}


def main() -> None:
    print(f"{'setting':<30} {'entropy':>8} {'samples to one expert':>22} {'top share':>10} {'test MSE':>9} {'s':>4}")
    for name, (data, model, train) in SETTINGS.items():
        started = time.perf_counter()
        result = train_grid([replace(data, seed=s) for s in range(3)], model, train, diagnostics=True)
        polarisation = result.diagnostics.frame("polarisation")
        last = polarisation[polarisation.step == polarisation.step.max()]
        mse = result.metrics[(result.metrics.split == "test") & (result.metrics.metric == "mse")].value.mean()
        print(f"{name:<30} {last.entropy.mean():>8.3f} {last.sample_polarised.mean():>22.0%} {last.top_weight.mean():>10.3f} "
              f"{mse:>9.4f} {time.perf_counter() - started:>4.0f}", flush=True)


if __name__ == "__main__":
    main()
