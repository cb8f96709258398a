"""The command line: JSON and table output, sweeps, one-line errors with exit code 2."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from mtl_core.cli import main

SMALL = ["--samples", "512", "--holdout", "128", "--features", "16", "--epochs", "2", "--device", "cpu"]


def test_train_json_has_the_promised_fields(capsys):
    assert main(["train", "--arch", "mmoe", "--tasks", "3", "--binary", "2", "--positive-rates", "0.1", "--json", *SMALL]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"arch", "params", "seconds", "device", "label_correlation", "tasks"} <= set(report)
    assert report["arch"] == "mmoe" and report["device"] == "cpu" and report["params"] > 0
    assert len(report["label_correlation"]) == 3 and len(report["label_correlation"][0]) == 3
    assert [t["type"] for t in report["tasks"]] == ["regression", "regression", "binary"]
    assert {"mse", "r2"} <= set(report["tasks"][0]["test"]) and {"auc", "gauc"} <= set(report["tasks"][2]["test"])


def test_gate_tricks_and_weightings_from_the_cli(capsys):
    args = ["train", "--arch", "mmoe", "--gate-temperature", "2", "--gate-dropout", "0.1", "--gate-init-scale", "0",
            "--gate-layer-norm", "--shared-input", "8", "--freeze-gates-after", "5", "--json", *SMALL]
    for weighting in ("gradnorm", "dwa", "pcgrad", "uncertainty"):
        assert main([*args, "--weighting", weighting]) == 0
        assert json.loads(capsys.readouterr().out)["arch"] == "mmoe"
    assert main([*args, "--weighting", "fixed", "--task-weights", "1,3"]) == 0


def test_train_table_and_home_switches(capsys):
    assert main(["train", "--arch", "home", "--tasks", "4", "--groups", "0,0,1,1", "--no-feature-gate", "--no-self-gate", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "home:" in out and "test metrics:" in out and "task 3" in out


def test_match_params_sizes_shared_bottom(capsys):
    main(["train", "--arch", "shared_bottom", "--match-params", "mmoe", "--json", *SMALL])
    sb = json.loads(capsys.readouterr().out)
    main(["train", "--arch", "mmoe", "--json", *SMALL])
    mmoe = json.loads(capsys.readouterr().out)
    assert abs(sb["params"] - mmoe["params"]) / mmoe["params"] < 0.05
    assert sb["config"]["model"]["bottom_hidden"][0] > 16


def test_sweep_rows_and_csv(tmp_path, capsys):
    path = tmp_path / "sweep.csv"
    assert main(["sweep", "--archs", "shared_bottom,mmoe", "--correlations", "0.5,1.0", "--seeds", "2", "--csv", str(path), *SMALL]) == 0
    rows = pd.read_csv(path)
    assert set(rows.arch) == {"shared_bottom", "mmoe"} and set(rows.correlation) == {0.5, 1.0} and set(rows.seed) == {0, 1}
    assert len(rows[rows.metric == "mse"]) == 2 * 2 * 2 * 2  # arch x correlation x seed x task


def test_train_on_census_reports_auc_per_task(capsys):
    assert main(["train", "--arch", "cross_stitch", "--data", "census-income:2", "--samples", "2000", "--holdout", "500",
                 "--epochs", "1", "--seed", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in report["tasks"]] == ["college degree", "never married"]
    assert all(0.5 < t["test"]["auc"] <= 1 for t in report["tasks"])
    assert report["config"]["data"] == {"group": 2, "samples": 2000, "holdout": 500, "seed": 3}


def test_census_experiment_prints_the_papers_table_shape(tmp_path):
    path = tmp_path / "census.csv"
    assert main(["experiment", "census", "--group", "1", "--archs", "shared_bottom,mmoe", "--seeds", "2", "--samples", "2000",
                 "--epochs", "1", "--csv", str(path)]) == 0
    summary = pd.read_csv(tmp_path / "census.summary.csv")
    assert list(summary.arch) == ["shared_bottom", "mmoe"]
    assert (summary.main_best >= summary.main_mean).all() and summary.paper_best.tolist() == [0.9361, 0.9410]
    assert len(pd.read_csv(path)) == 2 * 2   # arch x seed


BAD_ARGUMENTS = [
    (["train", "--arch", "foo"], "invalid choice: 'foo'"),
    (["train", "--correlation", "7"], "correlation"),
    (["train", "--tasks", "3", "--binary", "5"], "--binary names task(s) [5]"),
    (["train", "--features", "2", "--tasks", "3"], "features"),
    (["train", "--lr", "0"], "Learning rate must be in (0, 1]"),
    (["train", "--arch", "mmoe", "--match-params", "mmoe"], "--match-params sizes the bottoms of Shared-Bottom and Single-task"),
    (["sweep", "--archs", "mmoe,bogus"], "Unknown architecture(s): bogus"),
    (["train", "--batch-size", "abc"], "invalid int value"),
    (["sweep", "--data", "census-income:1"], "experiment census"),
    (["train", "--data", "census-income:1", "--samples", "300000"], "199,523"),
]


def test_a_bad_argument_gives_one_line_and_exit_2_from_the_shell():
    args, message = BAD_ARGUMENTS[2]
    done = subprocess.run([sys.executable, "-m", "mtl_core", *args], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert message in done.stderr


@pytest.mark.parametrize("args, message", BAD_ARGUMENTS)
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys):
    """In this process (a fresh interpreter per case cost 3 s each; the case above runs `python -m mtl_core`)."""
    try:
        code = main(args)
    except SystemExit as done:   # argparse's own errors
        code = done.code
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert message in stderr


def test_train_diagnostics_in_json(capsys):
    assert main(["train", "--arch", "ple", "--diagnostics", "--snapshot-every", "2", "--json", *SMALL]) == 0
    d = json.loads(capsys.readouterr().out)["diagnostics"]
    expert = d["experts"][0]
    assert {"level", "name", "kind", "zero_fraction", "near_zero_fraction", "mean", "std"} <= set(expert)
    gate = d["gates"][0]
    assert {"level", "name", "mean", "std"} <= set(gate) and abs(sum(gate["mean"].values()) - 1) < 1e-6
    assert d["snapshots"] == 2 and {"task_a", "task_b", "cosine", "step"} <= set(d["conflict"][0])


def test_the_readme_lesson_table_comes_from_the_bundled_checks(capsys):
    from mtl_core.studies.lessons import LESSONS

    assert main(["lessons", "--table"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines()[2:] if line.startswith("| ")]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [lesson.key for lesson in LESSONS]
    from mtl_core.studies.bundled import DATA

    checked = pd.read_csv(DATA / "lesson_check.csv").set_index("lesson")
    assert all(f"{checked.held[key]}/{checked.seeds[key]}" in row for key, row in zip(checked.index, rows))
