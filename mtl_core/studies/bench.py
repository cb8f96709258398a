"""`python -m mtl_core bench`: speed as ratios measured in one run on one machine.

For two sizes (the MMoE paper's and a larger one) and every architecture: training steps per
second of the batched model, of the looped reference (models/reference.py) on the same data, their
ratio, and the achieved FLOP rate as a fraction of a plain `torch.mm` measured in the same run.
Then the classroom sweep grid done run after run and as stacked grids (runs.py), and the ratio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..data.synthetic import DataConfig
from ..models import build_model, ModelConfig
from ..models.reference import LoopedModel
from ..train.device import resolve_device
from ..train.memory import keep_freed_memory
from ..train.runs import sized_model_config, sweep, train_grid
from ..train.training import FUSED_ADAM_DEVICES, TrainConfig
from ..train.weighting import WEIGHTINGS

BENCH_ARCHS = ("single_task", "shared_bottom", "omoe", "mmoe", "cgc", "ple", "home")
SWEEP_ARCHS = ("shared_bottom", "omoe", "mmoe", "ple", "home")


@dataclass(frozen=True)
class Size:
    name: str
    features: int
    experts: int
    hidden: int
    tower: int
    tasks: int
    batch: int


SIZES = (Size("MMoE paper (d=100, 8x16, towers 8, 2 tasks, batch 256)", 100, 8, 16, 8, 2, 256),
         Size("larger (d=100, 16x128, towers 64, 6 tasks, batch 1024)", 100, 16, 128, 64, 6, 1024))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, seconds: float = 1.0) -> float:
    """FLOP/s of a dense square `torch.mm` on this device (the hardware ceiling we compare with)."""
    n = 4096 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
        if device.type == "cuda" and count % 20:
            continue
        _sync(device)
    _sync(device)
    return 2 * n ** 3 * count / (time.perf_counter() - start)


def _train_step(model, optimizer, x, y):
    loss = (model(x) - y).square().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def steps_per_second(model: torch.nn.Module, size: Size, device: torch.device, seconds: float) -> tuple[float, float]:
    """(training steps per second, FLOP per step) of `model` on random data resident on `device`."""
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type in FUSED_ADAM_DEVICES)
    x = torch.randn(16 * size.batch, size.features, device=device)
    y = torch.randn(16 * size.batch, size.tasks, device=device)
    batches = [(x[i:i + size.batch], y[i:i + size.batch]) for i in range(0, len(x), size.batch)]
    with FlopCounterMode(display=False) as counter:
        _train_step(model, optimizer, *batches[0])
    for b in batches[:3]:
        _train_step(model, optimizer, *b)
    _sync(device)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for b in batches:
            _train_step(model, optimizer, *b)
        steps += len(batches)
        _sync(device)
    return steps / (time.perf_counter() - start), counter.get_total_flops()


def bench_sizes(device: torch.device, seconds: float, peak: float) -> None:
    for size in SIZES:
        print(f"\n{size.name}")
        print(f"  {'arch':<14}{'batched steps/s':>16}{'looped steps/s':>16}{'ratio':>8}{'GFLOP/s':>10}{'of mm':>8}")
        tasks = tuple(f"task {k}" for k in range(size.tasks))
        groups = tuple(k * 2 // size.tasks for k in range(size.tasks))
        for arch in BENCH_ARCHS:
            config = ModelConfig.for_arch(arch, experts=size.experts, expert_hidden=(size.hidden,), tower_hidden=(size.tower,))
            model = build_model(config, tasks, groups, size.features)
            looped = LoopedModel.from_batched(model)
            fast, flops = steps_per_second(model, size, device, seconds)
            slow, _ = steps_per_second(looped, size, device, seconds)
            rate = fast * flops
            print(f"  {arch:<14}{fast:>16.0f}{slow:>16.0f}{fast / slow:>7.1f}x{rate / 1e9:>10.2f}{rate / peak:>8.1%}")


def bench_sweep(device: str, quick: bool) -> None:
    """The classroom sweep as stacked grids (runs.sweep) and run after run; the wall times and their
    ratio, then each architecture's training time both ways (data generation excluded), so the one
    that limits the ratio shows."""
    base = DataConfig(samples=2_000 if quick else 10_000, holdout=1_000)
    train = TrainConfig(epochs=2 if quick else 10, device=device, log_every=1_000, eval_every=0)
    correlations, seeds = (0.0, 0.25, 0.5, 0.75, 1.0), (0, 1, 2)
    archs = SWEEP_ARCHS[:2] if quick else SWEEP_ARCHS
    runs = len(archs) * len(correlations) * len(seeds)
    print(f"\nclassroom sweep: {len(archs)} archs x {len(correlations)} correlations x {len(seeds)} seeds = {runs} runs, "
          f"{base.samples} training samples, {train.epochs} epochs")
    stacked: dict[str, float] = {}
    start = time.perf_counter()
    sweep(archs, correlations, seeds, base, train, on_result=lambda arch, result: stacked.update({arch: result.seconds}))
    fast = time.perf_counter() - start
    one_by_one: dict[str, float] = {}
    start = time.perf_counter()
    for arch in archs:
        config = ModelConfig.for_arch(arch)
        if arch == "shared_bottom":  # as sweep() does: the bottom sized to MMoE's parameter count
            config = sized_model_config(config, base, "mmoe")
        one_by_one[arch] = sum(train_grid([replace(base, correlation=p, seed=s)], config, train).seconds
                               for p in correlations for s in seeds)
    slow = time.perf_counter() - start
    print(f"  one run after another: {slow:7.1f} s")
    print(f"  stacked grids:         {fast:7.1f} s")
    print(f"  speed-up:              {slow / fast:7.1f}x")
    print(f"  {'training time of':<18}{'one by one':>12}{'stacked':>10}{'ratio':>8}")
    for arch in archs:
        print(f"  {arch:<18}{one_by_one[arch]:>10.1f} s{stacked[arch]:>8.1f} s{one_by_one[arch] / stacked[arch]:>7.1f}x")


def bench_weightings(device: str, quick: bool) -> None:
    """Each loss weighting's training time per step on MMoE (the paper's sizes), relative to equal weighting, on 2 and 4
    tasks: the gradient-based ones take a backward pass per task on the shared experts, the TorchJD aggregators also
    solve for their weights (CAGrad and Nash-MTL with cvxpy), FAMO takes one backward."""
    steps = 30 if quick else 200
    print(f"\nloss weightings on MMoE, {steps} steps of batch 256: training time per step, and relative to equal")
    print(f"  {'weighting':<12}{'2 tasks':>10}{'ratio':>8}{'4 tasks':>10}{'ratio':>8}")
    times = {}
    train_grid([DataConfig(samples=2_560, holdout=100)], ModelConfig.for_arch("mmoe"),   # warm up: first-use costs out of the timings
               TrainConfig(steps=10, device=device, log_every=10_000, eval_every=0))
    for tasks in (2, 4):
        data = DataConfig(tasks=tasks, samples=steps * 256, holdout=100)
        for name in WEIGHTINGS:
            train = TrainConfig(steps=steps, device=device, log_every=10_000, eval_every=0, weighting=name,
                                task_weights=(1.0,) * tasks if name == "fixed" else None)
            times[name, tasks] = min(train_grid([data], ModelConfig.for_arch("mmoe"), train).seconds   # best of 3: a noisy machine
                                     for _ in range(3)) / steps
    for name in WEIGHTINGS:
        print(f"  {name:<12}" + "".join(f"{times[name, k] * 1e3:>8.1f}ms{times[name, k] / times['equal', k]:>7.1f}x" for k in (2, 4)))


def run_bench(device_name: str = "auto", quick: bool = False) -> None:
    device = resolve_device(device_name)
    keep_freed_memory()  # as TrainingRun does, for the batched and the looped models alike
    seconds = 0.3 if quick else 1.5
    peak = matmul_rate(device, seconds)
    print(f"device {device}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"dense matmul rate (torch.mm): {peak / 1e9:.1f} GFLOP/s")
    bench_sizes(device, seconds, peak)
    bench_sweep(str(device), quick)
    bench_weightings(str(device), quick)
