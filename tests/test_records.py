"""Run records: what a page keeps, and the whole check an uploaded file passes before any run is used."""

import copy
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from mtl_core.data.synthetic import DataConfig, make_dataset
from mtl_core.diagnostics.recorder import DiagnosticsRecorder
from mtl_core.models import build_model, ModelConfig
from mtl_core.serve.records import DIAGNOSTICS, dumps, read_records, RecordError, run_record
from mtl_core.train.training import Evaluation, Finished, TrainConfig, TrainingRun

EXAMPLES = int(os.environ.get("MTL_FUZZ_EXAMPLES", "300"))


@pytest.fixture(scope="module")
def record():
    """A real record: PLE (two levels, shared experts, task gates) trained 40 steps, snapshots every 20."""
    data = DataConfig(samples=1_000, holdout=200, task_types=("regression", "binary"))
    run = TrainingRun(build_model(ModelConfig.for_arch("ple", experts=2), data.task_names, data.task_groups, data.features),
                      make_dataset(data), TrainConfig(steps=40, snapshot_every=20, snapshot_samples=64, eval_every=20))
    recorder, history, metrics = DiagnosticsRecorder(run), [], None
    for event in run.events():
        recorder.observe(event)
        if isinstance(event, (Evaluation, Finished)):
            metrics = event.metrics[event.metrics.split == "test"]
            history += [dict(arch="ple", task=r.task, split="test", step=event.step, loss=r.value)
                        for r in metrics[metrics.metric.isin(["mse", "logloss"])].itertuples()]
    return run_record("PLE · seed 0 · race 1", "ple", "finished", run.step, {"corr": 0.5}, history, metrics,
                      run.datasets[0].positive_rate.tolist(), {name: recorder.frame(name) for name in recorder.tables})


def test_a_record_survives_download_and_upload(record):
    (back,) = read_records(dumps([record]))
    assert back == json.loads(dumps(record))
    assert set(back["diagnostics"]) == set(DIAGNOSTICS) - {"funnel"}   # only a funnel race has that one (test_app.py)
    assert back["positive_rate"][0] is None  # NaN for the regression task travels as null


def test_a_file_from_before_dead_units_and_the_self_gate_share_still_loads(record):
    old = copy.deepcopy(record)
    for table, column in (("experts", "dead_units"), ("reliance", "self_gate")):
        for row in old["diagnostics"][table]:
            del row[column]
    (back,) = read_records(json.dumps(old))
    assert {row["dead_units"] for row in back["diagnostics"]["experts"]} == {None}
    assert {row["self_gate"] for row in back["diagnostics"]["reliance"]} == {None}
    assert all(0 <= row["dead_units"] <= 1 for row in record["diagnostics"]["experts"])   # a new record has them


def mutate(record, path, value):
    r = copy.deepcopy(record)
    target = r
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(r)


DELETE = object()
CASES = [  # the run files that crashed 'Inside the experts', and their kin
    (("diagnostics", "gates"), "abc", "must be a list"),
    (("diagnostics", "gates", 0, "mean"), DELETE, "no column 'mean'"),
    (("diagnostics", "gates", 0, "step"), DELETE, "no column 'step'"),
    (("diagnostics", "experts"), DELETE, "without the table"),
    (("diagnostics", "experts", 0, "step"), 999, "does not cover every snapshot"),
    (("step",), 10, "after its last step"),
    (("diagnostics", "gates", 0, "mean"), "0.5", "'mean'"),
    (("diagnostics", "nope"), [], "unknown diagnostics"),
    (("step",), -1, "'step'"),
    (("metrics", 0, "value"), "NaN", "'value'"),
    (("history", 0, "loss"), [1], "'loss'"),
    (("arch",), "moe", "'arch'"),
    (("id",), "", "'id'"),
    (("id",), "x" * 500, "'id'"),
    (("history",), [{"arch": "ple", "task": "task 0", "split": "train", "step": 1, "loss": 1.0}] * 200_001, "200,001 rows"),
]


@pytest.mark.parametrize("path, value, message", CASES)
def test_bad_run_files_are_refused_with_where_and_what(record, path, value, message):
    with pytest.raises(RecordError, match=message):
        read_records(mutate(record, path, value))


def test_non_finite_numbers_nesting_and_size_are_refused(record):
    with pytest.raises(ValueError, match="not a number"):
        read_records(dumps(record).replace('"loss": ', '"loss": NaN, "x": ', 1))
    with pytest.raises(ValueError, match="nests"):
        read_records("[" * 10_000 + "]" * 10_000)
    with pytest.raises(ValueError, match="not valid JSON"):
        read_records("{oops")
    with pytest.raises(RecordError, match="no runs"):
        read_records("[]")


@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_any_mutation_of_a_record_is_checked_whole(record, data):
    """Change one value anywhere in a real record to something odd: the file is accepted with every
    column the pages read intact, or refused with a RecordError/ValueError, never anything else."""
    r = copy.deepcopy(record)
    target, path = r, []
    while isinstance(target, (dict, list)) and target and data.draw(st.booleans(), "deeper"):
        key = data.draw(st.sampled_from(sorted(target) if isinstance(target, dict) else range(min(len(target), 3))), "key")
        path.append(key)
        if not isinstance(target[key], (dict, list)):
            break
        target = target[key]
    odd = data.draw(st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                              st.text(max_size=100), st.just([]), st.just({}), st.just("abc")), "value")
    if path:
        parent = r
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = odd
    try:
        (checked,) = read_records(json.dumps(r))
    except ValueError:
        return
    for name, rows in checked["diagnostics"].items():
        for row in rows:
            assert all(ok(row[column]) for column, ok in DIAGNOSTICS[name].items())
