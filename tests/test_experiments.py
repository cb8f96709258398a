"""The papers' studies run end to end on tiny grids and return the promised tables."""

from dataclasses import replace


from mtl_core import experiments
from mtl_core.cli import main
from mtl_core.data import DataConfig

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
