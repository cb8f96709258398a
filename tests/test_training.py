"""The streaming trainer: it learns, streams events, pauses, cancels, changes lr live, stops on NaN."""

import numpy as np
import pytest
import torch

from mtl_core.config import ConfigError
from mtl_core.data.synthetic import DataConfig, make_dataset
from mtl_core.models import build_model, ModelConfig, stack_members
from mtl_core.train.device import resolve_device
from mtl_core.train.training import Diverged, Evaluation, Finished, Progress, Snapshot, TrainConfig, TrainingRun

DATA = DataConfig(tasks=2, correlation=0.8, features=16, samples=1024, holdout=256, seed=0)


def run_for(arch="mmoe", data=DATA, seed=0, device="cpu", **train):
    dataset = make_dataset(data)
    model = build_model(ModelConfig.for_arch(arch, experts=4, expert_hidden=(8,)), data.task_names, data.task_groups,
                        data.features, seed=seed)
    return TrainingRun(model, dataset, TrainConfig(device=device, seed=seed, **{"epochs": 3, "log_every": 4, **train}))


def test_training_lowers_the_loss_and_streams_events():
    events = list(run_for(lr=0.01).events())
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[0].train_loss.shape == (1, 2)
    assert progress[-1].train_loss.mean() < progress[0].train_loss.mean()
    assert sum(isinstance(e, Evaluation) for e in events) == 2  # after epochs 1 and 2; the last is Finished
    final = events[-1]
    assert isinstance(final, Finished) and final.step == 12
    test = final.metrics[(final.metrics.split == "test") & (final.metrics.metric == "mse")]
    assert len(test) == 2 and (test.value < 1.0).all()  # better than predicting the mean


def test_same_seed_same_run_on_cpu():
    a = [e.train_loss for e in run_for(seed=5).events() if isinstance(e, Progress)]
    b = [e.train_loss for e in run_for(seed=5).events() if isinstance(e, Progress)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_holding_the_iterator_pauses_and_closing_cancels():
    run = run_for(epochs=50)
    events = run.events()
    next(events)
    step = run.step
    assert run.step == step  # nothing happens while we hold it
    events.close()
    assert run.step == step and run.step < run.total_steps


def test_learning_rate_changes_live():
    run = run_for()
    events = run.events()
    first = next(e for e in events if isinstance(e, Progress))
    run.lr = 0.01
    second = next(e for e in events if isinstance(e, Progress))
    assert first.lr == 1e-3 and second.lr == 0.01
    with pytest.raises(ConfigError, match="Learning rate must be in"):
        run.lr = 5


def test_nan_loss_stops_with_a_message_naming_the_step():
    dataset = make_dataset(DATA)
    dataset.train.y[7, 0] = np.nan
    model = build_model(ModelConfig("mmoe", experts=2, expert_hidden=(4,)), DATA.task_names, DATA.task_groups, 16)
    run = TrainingRun(model, dataset, TrainConfig(device="cpu", epochs=3, log_every=1))
    events = list(run.events())
    assert isinstance(events[-1], Diverged)
    assert not any(isinstance(e, Finished) for e in events)
    assert events[-1].step <= run.steps_per_epoch
    assert f"at step {events[-1].step}" in events[-1].message and "lower learning rate" in events[-1].message


def test_frozen_gates_stop_changing():
    run = run_for(freeze_gates_after=3)
    (gate,) = run.model.gate_parameters()
    events = run.events()
    next(events)  # step 4: frozen after step 3
    frozen = gate.detach().clone()
    list(events)
    assert torch.equal(gate, frozen) and run.step == 12


def test_uncertainty_weighting_exposes_learned_log_variances():
    events = list(run_for(weighting="uncertainty", lr=0.01).events())
    state = [e for e in events if isinstance(e, Progress)][-1].weighting
    assert state["log_variance"].shape == (1, 2) and not np.allclose(state["log_variance"], 0)


def test_binary_tasks_get_auc_and_gauc():
    data = DataConfig(tasks=2, features=16, samples=1024, holdout=512, task_types=("regression", "binary"),
                      positive_rates=(0.5, 0.2), seed=1)
    final = list(run_for(data=data).events())[-1]
    metrics = set(final.metrics[final.metrics.task == data.task_names[1]].metric)
    assert {"auc", "gauc"} <= metrics


def test_grid_member_equals_solo_run():
    """Members trained together give the same result as each trained alone with its seed.

    To float rounding, not bitwise: fused kernels (batch norm) vectorise across the members'
    channels, so the last bit of a gradient can differ and two epochs amplify it to ~1e-4 in the
    metrics (MSE ~1, R2 near 0). A wiring mistake (a member seeing another's data or gradient)
    moves them by far more than the tolerance."""
    configs = [DataConfig(tasks=2, correlation=p, features=16, samples=512, holdout=128, seed=s)
               for p, s in ((0.2, 1), (0.9, 2))]
    model_config = ModelConfig.for_arch("home", experts=2, expert_hidden=(8,))
    train = TrainConfig(device="cpu", epochs=2, log_every=100)

    def model(c):
        return build_model(model_config, c.task_names, c.task_groups, c.features, seed=c.seed)

    grid = TrainingRun(stack_members([model(c) for c in configs]), [make_dataset(c) for c in configs], train,
                       member_seeds=[c.seed for c in configs])
    grid_final = list(grid.events())[-1].metrics
    for m, c in enumerate(configs):
        solo_final = list(TrainingRun(model(c), make_dataset(c), train, member_seeds=[c.seed]).events())[-1].metrics
        got = grid_final[grid_final.member == m].value.to_numpy()
        np.testing.assert_allclose(got, solo_final.value.to_numpy(), rtol=1e-3, atol=5e-4)


def test_missing_device_is_a_clear_error():
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="Device 'cuda' is not available on this machine. Available: .*cpu"):
            resolve_device("cuda")
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_training_on_cuda_matches_cpu_closely():
    """The same seed on CUDA and on the CPU learns the same thing (up to float differences)."""
    finals = {}
    for device in ("cpu", "cuda"):
        run = run_for(arch="home", device=device, lr=0.01)
        assert run.device.type == device and next(run.model.parameters()).device.type == device
        finals[device] = list(run.events())[-1].metrics.value.to_numpy()
    np.testing.assert_allclose(finals["cuda"], finals["cpu"], rtol=0.05, atol=0.02)


def test_snapshots_only_when_asked_and_carry_the_trace():
    assert not any(isinstance(e, Snapshot) for e in run_for().events())
    snapshots = [e for e in run_for(arch="ple", snapshot_every=5, snapshot_samples=100).events() if isinstance(e, Snapshot)]
    assert [s.step for s in snapshots] == [5, 10, 12]
    first = snapshots[0].trace[0]
    assert first.gate_weights.shape == (1, 100, first.plan.n_gates, first.plan.n_experts)
    assert first.expert_outputs.device.type == "cpu"
