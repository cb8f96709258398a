"""The live race as a library (no browser): play, pause, step, pausing by itself, stop, live learning
rate, divergence, and a worker that dies; on the in-process backend and on worker processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtl_core.config import ConfigError
from mtl_core.live import InProcess, LocalProcesses, Race, Worker
from mtl_core.live.trainer import Released
from mtl_core.serve.records import DIAGNOSTICS, dumps, read_records
from mtl_core.settings import knobs

ROOT = Path(__file__).resolve().parent.parent


def settings(**changes):
    return {**knobs.defaults(), "samples": 2_000, "epochs": 20, **changes}   # 8 steps an epoch, 160 steps


def wait(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def backend():
    return InProcess()


def test_step_trains_every_model_to_the_same_step_and_records_it(backend):
    race = Race(backend, settings(arch=("Shared-Bottom", "MMoE", "PLE")), number=7)
    race.step(50)
    assert {r.step for r in race.runs.values()} == {50} and not race.playing
    assert {r.status for r in race.runs.values()} == {"paused"}
    ple = race.runs["ple"]
    assert ple.snapshots == 1 and set(ple.tables) <= set(DIAGNOSTICS) and ple.latest("gates")["step"].eq(50).all()
    assert [(s, split) for (task, split), (s, _) in ple.curves.items() if task == "task 0"] == [
        (list(range(10, 51, 10)), "train"), ([50], "test")]
    records = race.records()
    assert [r["id"] for r in records] == ["Shared-Bottom · seed 0 · race 7", "MMoE · seed 0 · race 7", "PLE · seed 0 · race 7"]
    assert read_records(dumps(records))  # what the page keeps passes the upload check
    race.close()


def test_play_runs_to_the_end_and_pause_stops_where_it_was(backend):
    race = Race(backend, settings())
    race.play()
    wait(lambda: race.runs["mmoe"].step >= 30)
    race.pause()
    paused_at = {a: r.step for a, r in race.runs.items()}
    assert not race.playing and len(set(paused_at.values())) == 1
    time.sleep(0.3)
    assert {a: r.step for a, r in race.runs.items()} == paused_at  # paused means paused
    race.play()
    wait(lambda: race.done)
    assert {r.status for r in race.runs.values()} == {"finished"} and race.runs["mmoe"].step == race.total_steps == 160
    wait(lambda: not race.playing)
    assert race.runs["mmoe"].metrics is not None and set(race.runs["mmoe"].metrics.split) == {"test"}
    race.close()


def test_the_pages_plan_for_the_races_held_not_only_those_playing():
    backend = InProcess()   # its own, so that no other test's race counts
    held = [Race(backend, settings()) for _ in range(2)]
    assert backend.held() == 2 and backend.playing() == 0   # a class that has opened the page but not pressed Play yet
    held[0].play()
    wait(lambda: backend.playing() == 1)
    assert backend.held() == 2
    for race in held:
        race.close()
    assert backend.held() == 0
    backend.close()


def test_a_race_pauses_itself_when_the_page_stops_drawing(backend, monkeypatch):
    monkeypatch.setattr(Worker, "PATIENCE", 0.3)
    race = Race(backend, settings(epochs=200))
    race.play()
    wait(lambda: race.runs["mmoe"].step > 0)
    wait(lambda: not race.playing, 10)  # nobody called alive(): the worker paused it
    step = race.runs["mmoe"].step
    time.sleep(0.3)
    assert race.runs["mmoe"].step == step < race.total_steps and race.runs["mmoe"].status == "paused"
    race.close()


def test_a_page_that_draws_again_plays_on_a_race_that_paused_itself_but_not_one_the_student_paused(backend, monkeypatch):
    monkeypatch.setattr(Worker, "PATIENCE", 0.3)   # a busy server held back the page's word past the patience
    race = Race(backend, settings(epochs=200))
    race.play()
    wait(lambda: not race.playing, 10)
    assert race.in_play   # the page keeps its timed redraws for it (deciding by `playing` left students with none)
    step = race.runs["mmoe"].step
    race.alive()   # the page draws again: the student had it playing
    assert race.playing
    wait(lambda: race.runs["mmoe"].step > step)
    race.pause()
    race.alive()
    assert not race.playing and not race.in_play
    race.close()


def test_a_race_the_worker_let_go_is_no_longer_held():
    backend = InProcess()
    race = Race(backend, settings())
    race.receive(Released(race.id, "it was idle for 15 minutes"))
    assert backend.held() == 0 and not race.active
    backend.close()


def test_the_learning_rate_applies_live(backend):
    race = Race(backend, settings(arch=("MMoE",)))
    race.step(10)
    assert race.runs["mmoe"].lr == 1e-3
    race.set_lr(0.01)
    race.step(10)
    assert race.runs["mmoe"].lr == 0.01 and race.runs["mmoe"].step == 20
    race.close()


def test_a_diverging_model_stops_with_its_message_and_the_race_goes_on(backend, monkeypatch):
    from mtl_core.data.synthetic import DataConfig, make_dataset

    def poisoned(config):
        dataset = make_dataset(config)
        dataset.train.y[:, 0] = float("nan")
        return dataset

    monkeypatch.setattr(DataConfig, "dataset", poisoned)
    race = Race(backend, settings())
    race.play()
    wait(lambda: not race.playing)
    assert {r.status for r in race.runs.values()} == {"diverged"}
    assert all("NaN or infinite at step" in r.message for r in race.runs.values())


def test_impossible_settings_are_refused_with_the_reason(backend):
    with pytest.raises(ConfigError, match="positive semi-definite"):
        Race(backend, settings(tasks=8, corr=-0.5))


def test_stop_lets_the_worker_free_the_race_and_keeps_the_runs(backend):
    race = Race(backend, settings())
    race.step(20)
    race.close()
    assert race.runs["mmoe"].step == 20 and len(race.records()) == 2
    assert race.id not in race.link.races


def test_a_killed_worker_process_leaves_a_message_the_runs_and_a_fresh_worker():
    backend = LocalProcesses(workers=1)
    race = Race(backend, settings(epochs=200))
    race.step(50)
    race.play()
    wait(lambda: race.runs["mmoe"].step > 60)
    os.kill(race.link.process.pid, signal.SIGKILL)
    wait(lambda: race.problem, 30)
    assert "crashed or was killed" in race.problem and "press Play" in race.problem
    assert not race.playing and race.runs["mmoe"].step >= 60 and race.runs["mmoe"].snapshots >= 1  # nothing recorded is lost
    assert [r["step"] for r in race.records()] == [r.step for r in race.runs.values()]
    again = Race(backend, settings(epochs=200))  # what the page does on the next Play
    assert again.link is not race.link and again.link.alive
    again.step(10)
    assert again.runs["mmoe"].step == 10
    again.close()


RAY_RACE = """
import time, ray
from mtl_core.live import Race, RayCluster
from mtl_core.serve.records import dumps, read_records
from mtl_core.settings import knobs
try:
    race = Race(RayCluster(None, workers=1), {**knobs.defaults(), "samples": 2_000, "epochs": 20})
    race.step(50)
    assert {r.step for r in race.runs.values()} == {50} and race.runs["mmoe"].snapshots == 1
    race.play()
    deadline = time.monotonic() + 120
    while not race.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert race.runs["mmoe"].step == race.total_steps and read_records(dumps(race.records()))
    race.close()
finally:
    ray.shutdown()
"""


def test_a_race_trains_on_ray_actors():
    """The Ray backend against a local Ray instance (CI installs Ray; elsewhere this skips without it), in a
    process of its own: twice (once in CI) the suite ended with exit code 1 and no report some tests after this
    one had run in it, as a Ray driver ends its process when its core worker loses the raylet."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install ray)")
    done = subprocess.run([sys.executable, "-c", RAY_RACE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_a_study_runs_as_a_job_on_its_own_worker(backend):
    from mtl_core.data.synthetic import DataConfig
    from mtl_core.live import run_job
    from mtl_core.train.training import TrainConfig

    rows = run_job(backend, "sweep", archs=["mmoe"], correlations=[0.5, 1.0], seeds=range(2),
                   base=DataConfig(samples=500, holdout=100), train_config=TrainConfig(steps=5, eval_every=0))
    assert set(rows.correlation) == {0.5, 1.0} and set(rows.seed) == {0, 1}
    assert backend.jobs is not None and backend.jobs not in backend.links
    with pytest.raises(ConfigError, match="Unknown architecture"):
        run_job(backend, "sweep", archs=["nope"], correlations=[0.5], seeds=range(1), base=DataConfig(samples=500, holdout=100),
                train_config=TrainConfig(steps=5))


def test_a_funnel_race_charts_its_final_evaluation(backend):
    """The CVR-quality chart reads the funnel table: it has every evaluation, the last one (a Finished event) too."""
    import pandas as pd

    race = Race(backend, settings(source="funnel", arch=("ESMM",), epochs=8))   # 64 steps: evaluated at 50 and at the end
    race.play()
    wait(lambda: race.done and not race.playing)
    assert sorted(set(pd.concat(race.runs["esmm"].tables["funnel"]).step)) == [50, 64] == [50, race.total_steps]
    (record,) = read_records(dumps(race.records()))
    assert {row["step"] for row in record["diagnostics"]["funnel"]} == {50, 64}
    race.close()
