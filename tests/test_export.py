"""A model exported as plain PyTorch (mtl_core/models/export.py) computes, in a fresh interpreter that cannot import
mtl_core, what the model computes: every architecture, and the options that change a forward pass."""

import json
import subprocess
import sys

import torch
from conftest import small_model

from mtl_core.models import ARCHITECTURES
from mtl_core.models.export import export, write

VARIANTS = [(arch, {}) for arch in ARCHITECTURES] + [
    ("mmoe", dict(gate_layer_norm=True, gate_temperature=0.5, shared_input=8)),
    ("ple", dict(expert_hidden=(12, 6), tower_hidden=(4, 3), activation="swish")),
    ("home", dict(expert_norm=False, self_gate=False)),
    ("cgc", dict(self_gate=True, feature_gate=True, expert_norm=True)),
]
CHECK = """
import importlib.util, json, sys, torch
try:
    import mtl_core
    raise SystemExit("mtl_core is importable here")
except ImportError:
    pass
found = {}
for folder in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("exported_" + str(len(found)), folder + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x, expected = torch.load(folder + "/check.pt")
    with torch.no_grad():
        found[folder] = float((module.load(folder)(x) - expected).abs().max())
print(json.dumps(found))
"""


def trained_looking(model):
    """Every parameter and norm statistic moved away from its initial value (a zero up-projection, unit variances
    and identity-like gates would hide a wrong formula)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator) * 0.3
                tensor.copy_(tensor.abs() + 0.5 if "running_var" in name else tensor + noise)
    return model.eval()


def test_every_architecture_exported_predicts_what_it_predicts_without_mtl_core(tmp_path):
    folders = []
    for n, (arch, changes) in enumerate(VARIANTS):
        model = trained_looking(small_model(arch, **changes))
        x = torch.randn(64, 20, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            expected = model(x)
        names = tuple(f"task {k}" for k in range(model.tasks))
        folder = write(export(model, names, ("regression",) * model.tasks, {}, ""), tmp_path / f"{n}-{arch}")
        torch.save((x, expected), folder / "check.pt")
        folders.append(str(folder))
    checked = subprocess.run([sys.executable, "-I", "-c", CHECK, *folders], capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stderr[-3000:]
    gaps = json.loads(checked.stdout)
    assert max(gaps.values()) < 1e-4, {f: g for f, g in gaps.items() if g >= 1e-4}


def test_a_trained_model_saved_from_the_command_line_reproduces_its_test_predictions(tmp_path):
    """`train --save DIR` writes the four files and its model.py runs alone; a saved ESCM2-DR (a third, imputation
    tower) predicts the funnel's test split as the trained model does; preprocessing.json says what goes in and out,
    for census income the features in order with the numeric columns' training statistics."""
    from mtl_core.data.census import CensusConfig
    from mtl_core.data.described import preprocessing
    from mtl_core.cli import main, parse, save_model, settings, train_report
    from mtl_core.settings import builders
    from mtl_core.train.runs import train_grid

    assert main(["train", "--arch", "mmoe", "--samples", "300", "--holdout", "100", "--steps", "5", "--device", "cpu",
                 "--save", str(tmp_path / "cli")]) == 0
    assert {p.name for p in (tmp_path / "cli").iterdir()} == {"model.py", "weights.safetensors", "preprocessing.json", "README.md"}
    ran = subprocess.run([sys.executable, "-I", "model.py"], cwd=tmp_path / "cli", capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and "'task 0':" in ran.stdout, ran.stderr[-2000:]   # standalone: python model.py
    folders = []
    for arch, data in (("escm2_dr", ["--data", "funnel", "--features", "16"]),):
        s = settings(parse(["train", "--arch", arch, *data, "--samples", "1000", "--holdout", "300", "--steps", "10"]))
        result = train_grid([builders.data_config(s, limits=False)], builders.model_config(arch, s, limits=False),
                            builders.train_config(s, limits=False))
        folder = tmp_path / arch
        save_model(result, train_report(result), str(folder))
        x = torch.as_tensor(result.datasets[0].test.x)
        with torch.no_grad():
            torch.save((x, result.model.eval()(x)), folder / "check.pt")
        folders.append(str(folder))
    checked = subprocess.run([sys.executable, "-I", "-c", CHECK, *folders], capture_output=True, text=True, timeout=300)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert max(json.loads(checked.stdout).values()) < 1e-4
    about = json.loads((tmp_path / "escm2_dr" / "preprocessing.json").read_text())
    assert [o["task"] for o in about["outputs"]] == ["click", "conversion", "imputation"]
    census = preprocessing(CensusConfig(group=1, samples=1000, holdout=300))["inputs"]
    assert census["features"][:2] == ["age", "wage_per_hour"] and len(census["features"]) == 502   # the encoded width
    assert set(census["numeric"]["age"]) == {"mean", "std"} and "sex=Female" in census["features"]


PREDICT = """
import importlib.util, sys, torch
x = torch.load(sys.argv[1])
for n, folder in enumerate(sys.argv[2:]):
    spec = importlib.util.spec_from_file_location(f"exported_{n}", folder + "/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        torch.save(module.load(folder)(x), folder + "/predictions.pt")
"""


def test_a_finished_race_offers_each_model_as_a_zip_whose_model_gives_the_runs_test_metrics(tmp_path):
    """The Playground's download of a finished model: unzipped, its model.py (run without mtl_core) predicts the test
    split with the MSE the race recorded for each task."""
    import io
    import zipfile

    from conftest import open_page

    from mtl_core.serve.exported import model_zip
    from mtl_core.settings import builders, knobs
    from pages.kept import shelf

    at = open_page("pages/playground.py", {"samples": "2000", "epochs": "1", "arch": ["Shared-Bottom", "MMoE", "HoME"]})
    race = shelf().locker(at.session_state["browser_token"]).race
    race.step(race.total_steps)
    at.run()
    assert {b.label for b in at.get("download_button")} >= {f"Download {name} as plain PyTorch (zip)" for name in
                                                             ("Shared-Bottom", "MMoE", "HoME")}
    test = builders.data_config({**knobs.defaults(), **race.settings}).dataset().test
    torch.save(torch.as_tensor(test.x), tmp_path / "x.pt")
    folders = {}
    for record in race.records():
        with zipfile.ZipFile(io.BytesIO(model_zip(record))) as archive:
            archive.extractall(tmp_path / record["arch"])
        folders[record["arch"]] = tmp_path / record["arch"] / f"mtl-playground-{record['arch']}"
    out = subprocess.run([sys.executable, "-I", "-c", PREDICT, str(tmp_path / "x.pt"), *map(str, folders.values())],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    for record in race.records():
        mse = ((torch.load(folders[record["arch"]] / "predictions.pt") - torch.as_tensor(test.y)) ** 2).mean(0)
        recorded = {row["task"]: row["value"] for row in record["metrics"] if row["metric"] == "mse"}
        assert torch.allclose(mse, torch.tensor([recorded[t] for t in ("task 0", "task 1")]), rtol=1e-4), (record["arch"], mse, recorded)


def test_a_run_files_weights_travel_with_it_and_weights_that_do_not_fit_are_refused():
    import base64

    import pytest

    from mtl_core.serve.exported import model_zip
    from mtl_core.serve.records import RecordError, dumps, read_records, run_record
    from mtl_core.settings import knobs

    def record(weights):
        return run_record("MMoE · seed 0 · race 1", "mmoe", "finished", 0, {"arch": ["MMoE"]}, [], None, [], {}, weights)

    junk = record(b"not safetensors at all")
    (kept,) = read_records(dumps([junk]))
    assert kept["weights"] == junk["weights"]   # a run file keeps its model
    with pytest.raises(ValueError, match="do not fit its network"):
        model_zip({**kept, "settings": knobs.defaults()})
    for bad in ("<script>", 5, "A" * 8_000_004):
        with pytest.raises(RecordError, match="'weights' must be"):
            read_records(dumps([{**junk, "weights": bad}]))
    assert "weights" not in read_records(dumps([record(None)]))[0]
    assert base64.b64decode(junk["weights"]) == b"not safetensors at all"
