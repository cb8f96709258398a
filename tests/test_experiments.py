"""The papers' studies run end to end on tiny grids and return the promised tables."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from mtl_core.cli import main
from mtl_core.data.synthetic import DataConfig
from mtl_core.studies import experiments

TINY = DataConfig(features=16, samples=512, holdout=256)
TRAIN = replace(experiments.PAPER_TRAIN, epochs=2, device="cpu")


def test_correlation_study_summarises_each_arch_and_correlation():
    study = experiments.correlation(archs=("shared_bottom", "mmoe"), correlations=(0.5, 1.0), seeds=2, data=TINY, train=TRAIN)
    assert len(study.runs) == 2 * 2 * 2 and set(study.runs.columns) == {"arch", "correlation", "seed", "loss", "rank"}
    assert set(study.summary["count"]) == {2} and (study.summary["min"] <= study.summary["max"]).all()


def test_trainability_flags_poor_runs_against_the_best():
    study = experiments.trainability(archs=("mmoe",), correlations=(0.5,), seeds=3, data=TINY, train=TRAIN)
    assert len(study.runs) == 3 and study.runs.poor.dtype == bool
    assert not study.runs.loc[study.runs.loss.idxmin(), "poor"]
    assert {"min", "median", "max", "poor"} <= set(study.summary.columns)


def test_home_ablation_reports_metrics_and_the_three_anomalies_per_arm():
    data = replace(experiments.HOME_DATA, features=16, samples=1024, holdout=512)
    study = experiments.home_ablation(seeds=1, data=data, train=TRAIN, model={"experts": 2, "expert_hidden": (8,)})
    assert list(study.summary.arm) == list(experiments.HOME_ARMS)
    for column in ("dense auc", "sparse auc", "sparse gauc", "model dead_expert_share", "model taken_over_share",
                   "sparse own_expert_weight"):
        assert column in study.summary.columns
    zero = study.summary.set_index("arm")["model zero_fraction"]
    assert zero["HoME"] == 0 and zero["all off"] > 0  # Swish never outputs exact zeros, ReLU does


def test_seesaw_gain_is_single_minus_mtl():
    study = experiments.seesaw(archs=("mmoe",), correlations=(0.5,), seeds=1, data=TINY, train=TRAIN)
    assert set(study.runs.arch) == {"mmoe"} and len(study.runs) == 2  # two tasks
    assert study.runs.gain.notna().all()


def test_experiment_cli_rejects_flags_that_do_not_apply(capsys):
    assert main(["experiment", "home-ablation", "--archs", "mmoe"]) == 2
    assert "--archs does not apply to the home-ablation experiment" in capsys.readouterr().err


def test_experiment_cli_csv(tmp_path, capsys):
    path = tmp_path / "c.csv"
    assert main(["experiment", "correlation", "--archs", "mmoe", "--correlations", "1.0", "--seeds", "1",
                 "--samples", "256", "--epochs", "1", "--device", "cpu", "--csv", str(path)]) == 0
    assert path.exists() and (tmp_path / "c.summary.csv").exists()


def test_keep_tasks_keeps_rows_names_and_the_chosen_label_columns():
    from mtl_core.data.synthetic import keep_tasks
    data = replace(TINY, tasks=3, groups=(0, 0, 1)).dataset()
    kept = keep_tasks(data, (0, 2))
    assert kept.config.task_names == ("task 0", "task 2") and kept.config.task_groups == (0, 1)
    assert (kept.train.y == data.train.y[:, [0, 2]]).all() and kept.train.x is data.train.x
    assert kept.label_correlation[0, 1] == data.label_correlation[0, 2]


def test_transfer_trains_every_leave_one_out_and_the_gains_add_up():
    data = replace(TINY, tasks=3, groups=(0, 0, 1))
    study = experiments.transfer(archs=("mmoe",), seeds=2, data=data, train=TRAIN, first_seed=4)
    runs = study.runs
    assert set(runs.setting) == {"single task", "all tasks", "without task 0", "without task 1", "without task 2"}
    assert set(runs.seed) == {4, 5} and not (runs[runs.setting == "without task 1"].task == "task 1").any()
    row = study.summary.set_index("task").loc["task 0"]
    loss = lambda setting: runs[(runs.setting == setting) & (runs.task == "task 0")].loss.mean()
    assert row.mtl_gain == pytest.approx(loss("single task") - loss("all tasks"))
    assert row["without_task 2"] == pytest.approx(loss("all tasks") - loss("without task 2"))
    assert pd.isna(row["without_task 0"])
    per_seed = runs[runs.task == "task 0"].pivot_table(index="seed", columns="setting", values="loss")
    assert row["hurt_by_task 2"] == (per_seed["all tasks"] > per_seed["without task 2"]).sum()   # seeds, not a mean


def test_the_negative_transfer_lesson_counts_the_seeds_a_task_was_hurt_on():
    from mtl_core.studies.lessons import hurt_on_most
    runs = pd.DataFrame([dict(arch="shared_bottom", setting=setting, seed=seed, task=task, loss=loss)
                         for seed, (with_1, alone) in enumerate([(2.0, 1.0), (2.0, 1.0), (1.0, 2.0)])
                         for setting, task, loss in (("all tasks", "task 0", with_1), ("all tasks", "task 1", 1.0),
                                                     ("without task 1", "task 0", alone), ("without task 0", "task 1", 1.0),
                                                     ("single task", "task 0", 1.0), ("single task", "task 1", 1.0))])
    verdict = hurt_on_most("task 0", "task 1")(runs)
    assert verdict.held and "on 2 of 3 seeds" in verdict.evidence
    assert not hurt_on_most("task 0", "task 1")(runs.assign(loss=lambda f: f.loss.where(f.setting != "all tasks", 0.5))).held


def test_gate_tricks_measures_every_arm_against_plain_mmoe():
    train = replace(experiments.GATE_TRAIN, epochs=2, snapshot_every=2)
    study = experiments.gate_tricks(seeds=2, data=TINY, train=train)
    assert list(study.summary.arm) == list(experiments.GATE_ARMS)
    assert {"test_mse", "entropy", "samples_polarised", "top_weight", "late_drift", "seeds_better_than_plain"} <= set(study.summary)
    summary = study.summary.set_index("arm")
    assert summary.loc["temperature 0.25", "entropy"] < summary.loc["temperature 4", "entropy"]
    runs = study.runs
    frozen = runs[(runs.arm == "freeze gates after 300 steps") & (runs.metric == "late_drift")]
    assert summary.loc["freeze gates after 300 steps", "late_drift"] == pytest.approx(frozen.value.mean())
    assert pd.isna(summary.loc["plain MMoE", "seeds_better_than_plain"])
    mse = runs[runs.metric == "test_mse"].pivot_table(index="seed", columns="arm", values="value")
    better = {arm: int((mse[arm] < mse["plain MMoE"]).sum()) for arm in mse if arm != "plain MMoE"}
    assert summary.seeds_better_than_plain.drop("plain MMoE").to_dict() == better   # counted per seed against plain


def test_frozen_gates_stop_drifting_and_plain_gates_do_not():
    """Trained past the freeze (300 steps) for twice as long: the late half's drift is exactly 0 when frozen."""
    train = replace(experiments.GATE_TRAIN, epochs=400, snapshot_every=100)   # 2 steps an epoch on TINY: 800 steps
    late = {arm: experiments.gate_trick_arm(arm, 1, TINY, train).set_index("metric").value["late_drift"]
            for arm in ("plain MMoE", "freeze gates after 300 steps")}
    assert late["freeze gates after 300 steps"] == 0 and late["plain MMoE"] > 0


def test_the_sharing_gap_is_a_median_ratio_and_the_transfer_counts_come_from_the_bundled_runs():
    rows = pd.DataFrame([dict(arch=a, correlation=p, seed=s, task=t, metric="mse", value=v * (1 + s))
                         for a, v in (("shared_bottom", 0.3), ("mmoe", 0.1)) for p in (0.2, 1.0) for s in range(3)
                         for t in ("task 0", "task 1")])
    assert experiments.sharing_gap(rows).tolist() == pytest.approx([3.0, 3.0])
    # The transfer page's counts come from the same bundled runs.
    summary = experiments.transfer_summary(pd.read_csv(Path(__file__).resolve().parent.parent / "data" / "transfer.csv"),
                                           ["task 0", "task 1", "task 2"])
    assert summary.set_index("arch").loc["shared_bottom", "helped"].tolist() == [5, 7, 5]


def _weighting_rows(losses: dict) -> pd.DataFrame:
    """Study rows from {(arch, weighting, split): [[task 0, task 1] per seed]} on one setting."""
    return pd.DataFrame([dict(setting="s", arch=arch, weighting=weighting, seed=seed, split=split, task=f"task {k}",
                              metric="loss", value=value)
                         for (arch, weighting, split), per_seed in losses.items()
                         for seed, pair in enumerate(per_seed) for k, value in enumerate(pair)])


def test_the_weightings_study_tunes_the_fixed_weight_on_validation_and_counts_seeds_against_it():
    from mtl_core.studies import weightings as study

    single = [[1.0, 1.0]] * 3
    rows = _weighting_rows({
        ("single_task", "equal", "validation"): single, ("single_task", "equal", "test"): single,
        ("mmoe", "equal", "validation"): [[0.9, 0.9]] * 3, ("mmoe", "equal", "test"): [[0.9, 0.9]] * 3,
        # best on validation, worse than equal on test: the tuned weight is chosen on validation all the same
        ("mmoe", "fixed 3", "validation"): [[0.5, 0.9]] * 3, ("mmoe", "fixed 3", "test"): [[0.95, 0.95]] * 3,
        ("mmoe", "fixed 0.3", "validation"): [[0.9, 0.8]] * 3, ("mmoe", "fixed 0.3", "test"): [[0.5, 0.5]] * 3,
        ("mmoe", "famo", "validation"): [[0.9, 0.9]] * 3, ("mmoe", "famo", "test"): [[0.8, 1.0], [1.0, 1.0], [0.8, 0.8]],
    })
    assert study.tuned(rows)[("s", "mmoe")] == "fixed 3"
    gains = study.gains(rows).set_index(["weighting", "seed", "task"]).gain
    assert gains[("famo", 0, "task 0")] == pytest.approx(0.2) and gains[("famo", 1, "task 1")] == pytest.approx(0.0)
    summary = study.summary(rows).set_index("weighting")
    assert "fixed 0.3" not in summary.index and summary.loc["tuned fixed", "tuned"] == "fixed 3"
    assert summary.loc["tuned fixed", "gain"] == pytest.approx(0.05)
    famo = summary.loc["famo"]   # gains 0.1, 0.0, 0.2 against the tuned weight's 0.05 and equal's 0.1
    assert (famo.beat_tuned, famo.beat_equal, famo.seeds) == (2, 1, 3)
    assert famo["gain task 0"] == pytest.approx(0.2 / 3 + 0.2 / 3) and famo.tasks == "task 0, task 1"


def test_the_weightings_study_trains_every_arm_on_the_same_seeds(monkeypatch):
    from mtl_core.studies import weightings as study

    tiny = {**study.SETTINGS["sparse task"], "samples": 2_000, "holdout": 500, "epochs": 1, "experts": 2, "device": "cpu"}
    monkeypatch.setattr(study, "SETTINGS", {"tiny": tiny})
    result = study.weightings(seeds=2, archs=("mmoe",), compared=("mgda",))
    assert set(result.runs.weighting) == {"equal", "mgda", *(f"fixed {w:g}" for w in study.FIXED_GRID if w != 1)}
    assert set(result.runs.arch) == {"single_task", "mmoe"} and set(result.runs.seed) == {0, 1}
    assert set(result.runs[result.runs.task == "task 1"].metric) == {"loss", "auc"}   # task 1 is binary
    assert list(result.summary.weighting).count("tuned fixed") == 1 and set(result.summary.seeds) == {2}
