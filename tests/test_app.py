"""Page logic with Streamlit's AppTest: every page renders, knobs change what is computed, chart data
is what the charts claim, bad links get a notice."""

import json
import re

import numpy as np
import pyarrow as pa
import pytest

from mtl_core.settings import knobs
from mtl_core.studies.lessons import LESSONS
from pages.kept import shelf

from conftest import PAGES, open_page



def chart_data(at) -> list:
    """The data behind every chart on the page, as DataFrames."""
    arrows = [data for chart in at.get("vega_lite_chart")
              for data in [chart.proto.data.data, *(ds.data.data for ds in chart.proto.datasets)] if data]
    return [pa.ipc.open_stream(data).read_pandas() for data in arrows]


def locker(at):
    """The browser's kept runs and live race (AppTest has no cookies: the session's token)."""
    return shelf().locker(at.session_state["browser_token"])


def find(frames, *columns):
    return next(f for f in frames if set(columns) <= set(f.columns))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(page):
    at = open_page(page)
    assert not at.exception, at.exception
    assert at.title


def test_data_page_shows_the_knob_and_the_measured_correlation():
    at = open_page("pages/data.py")
    at.slider(key="knob.corr").set_value(0.9).run()
    target, measured = [f for f in chart_data(at) if {"row", "col", "value"} <= set(f.columns)][:2]
    assert target[(target.row == "task 0") & (target.col == "task 1")].value.item() == pytest.approx(0.9)
    off = measured[(measured.row == "task 0") & (measured.col == "task 1")].value.item()
    assert 0 < off < 0.9  # measured, not echoed: the sinusoids pull it below p


def test_census_data_page_shows_the_real_correlation_beside_the_papers_and_hides_generator_knobs():
    at = open_page("pages/data.py", source="census-income:2")
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "0.2373" in text and "college degree" in text and "% positive" in text
    measured = find(chart_data(at), "row", "col", "value")
    assert abs(measured[(measured.row == "college degree") & (measured.col == "never married")].value.item()) == pytest.approx(0.24, abs=0.01)
    assert not [w for w in at.slider if w.key == "knob.corr"]   # synthetic-only knobs are not drawn
    table = at.dataframe[0].value   # the bundled census table, the paper's numbers beside ours
    assert len(table) == 7 and "Cross-Stitch" in set(table.model) and table["paper: best"].between(0.7, 0.9).all()


def test_playground_races_the_soft_sharing_baselines_on_census():
    at = open_page("pages/playground.py", source="census-income:1", samples="2000",
                   arch=["Cross-Stitch", "Tensor-Factorization", "L2-Constrained"])
    step(at)
    assert not at.exception, at.exception
    race = locker(at).race
    assert {arch: run.step for arch, run in race.runs.items()} == {"cross_stitch": 50, "tensor_factorization": 50, "l2_constrained": 50}
    loss = find(chart_data(at), "arch", "task", "split", "step", "loss")
    assert set(loss.task) == {"income > 50K", "never married"}


def test_bad_link_values_get_a_notice_and_fall_back():
    at = open_page("pages/playground.py", corr="7", arch="foo")
    warnings = " ".join(w.value for w in at.warning)
    assert "`corr` to `7`" in warnings and "from -1 to 1" in warnings
    assert "`arch` to `foo`" in warnings and "MMoE" in warnings
    assert at.slider(key="knob.corr").value == 0.5 and not at.exception


def test_lesson_links_lock_chosen_knobs():
    at = open_page("pages/playground.py", hide="arch,corr")
    assert at.multiselect(key="knob.arch").disabled and at.slider(key="knob.corr").disabled
    assert not at.number_input(key="knob.tasks").disabled


def step(at):
    next(b for b in at.button if b.label.startswith("Step")).click().run()


def test_playground_step_trains_and_draws_gates_that_sum_to_one():
    at = open_page("pages/playground.py", samples="5000", arch="MMoE")
    step(at)
    race = locker(at).race
    assert race.runs["mmoe"].step == 50
    frames = chart_data(at)
    gates = find(frames, "gate", "expert", "mean")
    assert len(gates) == 2 * 8  # 2 task gates x 8 experts
    assert gates.groupby("gate")["mean"].sum().round(5).eq(1).all()
    loss = find(frames, "arch", "task", "split", "step", "loss")
    assert set(loss.split) == {"train", "test"} and loss.step.max() == 50
    sparsity = find(frames, "expert", "zero_fraction", "near_zero_fraction")
    assert len(sparsity) == 8 and sparsity.zero_fraction.between(0, 1).all()


def test_the_network_view_is_drawn_on_request_from_the_latest_snapshot():
    at = open_page("pages/playground.py", samples="5000", arch="MMoE")
    step(at)
    assert not any("part" in f.columns for f in chart_data(at))   # off by default: it costs a class chart updates
    at.toggle(key="draw_network").set_value(True).run()
    drawn = find(chart_data(at), "part", "kind", "weight", "gate", "expert")
    mix = drawn[drawn.kind == "mix"]
    gates = find(chart_data(at), "gate", "expert", "mean")
    assert len(mix) == 2 * 8
    np.testing.assert_allclose(mix.sort_values(["gate", "expert"]).weight, gates.sort_values(["gate", "expert"])["mean"])


def test_a_weighting_and_gate_tricks_from_a_link_train_and_are_charted():
    at = open_page("pages/playground.py", samples="5000", arch="MMoE", weighting="uncertainty", temp="0.25", gln="true")
    assert not at.warning, [w.value for w in at.warning]
    step(at)
    run = locker(at).race.runs["mmoe"]
    assert run.latest("weighting") is not None
    weights = find(chart_data(at), "member", "task", "name", "value", "step")
    assert set(weights.name) >= {"weight", "log_variance"} and weights.value.notna().all()
    polarisation = find(chart_data(at), "gate", "entropy", "top_weight")
    assert polarisation.entropy.between(0, 1).all()
    at.switch_page("pages/inside.py").run()
    assert not at.exception
    assert any("Loss weights (uncertainty)" in h.value for h in at.subheader)
    gradients = [f for f in chart_data(at) if "name" in f.columns and set(f.name) == {"grad_norm"}]
    assert gradients and (gradients[0].value > 0).all()


def test_the_playground_shows_the_weightings_study_with_its_claims():
    from mtl_core.studies.claims import claim

    at = open_page("pages/playground.py")
    study = next(e for e in at.expander if e.label.startswith("Does any weighting beat a tuned fixed weight?"))
    assert claim("tuned-weight").text() in study.info[0].value and claim("uncertainty-wins").text() in study.info[0].value
    table = study.dataframe[0].value
    assert {"setting", "model", "weighting", "MTL gain %", "beat tuned", "p", "tuned weight"} <= set(table.columns)
    assert set(table.model) == {"MMoE", "Shared-Bottom"} and (table.weighting == "tuned fixed").sum() == 6


def test_transfer_page_shows_the_bundled_study_and_runs_a_small_one():
    at = open_page("pages/transfer.py", tasks="3", samples="2000", epochs="1", seeds="1", transfer_arch="MMoE")
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    gains = find(chart_data(at), "arch", "task", "mtl_gain")
    assert set(gains.arch) == {"Shared-Bottom", "MMoE"}
    next(b for b in at.button if b.label == "Run the study").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe[-1].value   # your study's table, in words that fit 1280 px
    assert {"model", "alone", "MTL gain", "task 1 left out"} <= set(table.columns) and "mtl_gain" not in table.columns
    assert table.set_index("task").loc["task 0", "task 1 left out"].endswith(" of 1")   # a mean, then its count of seeds
    mine = at.session_state["transfer_runs"][1]
    assert set(mine.setting) == {"single task", "all tasks", "without task 0", "without task 1", "without task 2"}
    assert set(mine.seed) == {0}
    at.run()   # the next visit states the time at this server's measured speed
    said = " ".join(m.value for m in at.markdown)
    assert re.search(r"at the speed of the last such study on this server it should take about \d+ s", said), said[-600:]


def test_the_funnel_on_the_data_page_and_raced_on_the_playground():
    at = open_page("pages/data.py", source="funnel", bias="2.0")
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    counts = find(chart_data(at), "stage", "count")
    assert list(counts.stage) == ["impressions", "clicks", "conversions"] and counts["count"].is_monotonic_decreasing
    at = open_page("pages/playground.py", source="funnel", samples="5000", arch=["CVR on clicks", "ESMM", "ESMM-MMoE"])
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    step(at)
    step(at)
    quality = find(chart_data(at), "arch", "step", "space", "metric", "value")
    assert set(quality.arch) == {"cvr_on_clicks", "esmm", "esmm_mmoe"} and set(quality.space) == {"all", "clicked"}
    assert set(quality.step) == {50, 100} and quality.value.notna().all()
    from mtl_core.serve.records import dumps, read_records
    kept = read_records(dumps(locker(at).race.records()))   # a funnel run survives download and upload
    assert {"funnel", "gates", "weighting"} <= set(kept[1]["diagnostics"])


def test_funnel_models_without_the_funnel_get_a_notice():
    at = open_page("pages/playground.py", arch=["ESMM", "MMoE"])
    assert any("`arch`" in w.value and "funnel" in w.value for w in at.warning)
    assert at.multiselect(key="knob.arch").value == ["MMoE"]


def test_learning_rate_applies_live_and_data_knobs_restart_keeping_runs():
    at = open_page("pages/playground.py", samples="5000", arch="MMoE")
    step(at)
    first = locker(at).race
    at.select_slider(key="knob.lr").set_value(0.01).run()
    assert locker(at).race is first and first.lr == 0.01
    at.slider(key="knob.corr").set_value(0.2).run()
    assert locker(at).race is not first
    assert [r["arch"] for r in json.loads(locker(at).dump())] == ["mmoe"]  # nothing lost


def test_inside_page_charts_a_kept_run_and_its_timeline():
    at = open_page("pages/playground.py", samples="5000", arch="PLE")
    step(at)
    step(at)
    at.switch_page("pages/inside.py").run()
    assert not at.exception
    assert at.select_slider[0].options == ["50", "100"]  # the timeline: one snapshot per 50 steps
    util = find(chart_data(at), "gate", "expert", "expert_kind", "mean", "std")
    assert set(util.level) == {1, 2}
    assert not find(chart_data(at), "task_a", "task_b", "cosine").empty
    drawn = find(chart_data(at), "part", "kind", "weight", "gate", "expert")   # the network view at step 100
    mix = drawn[drawn.kind == "mix"].set_index(["source", "target"]).weight
    np.testing.assert_allclose(mix.groupby(level="target").sum(), 1.0, rtol=1e-5)   # each gate's weights, as recorded
    at.select_slider[0].set_value("50").run()   # scrub back: the same drawing, the weights of step 50
    earlier = find(chart_data(at), "part", "kind", "weight", "gate", "expert")
    assert not np.allclose(earlier[earlier.kind == "mix"].set_index(["source", "target"]).weight.loc[mix.index], mix)


def test_sweep_and_ablation_pages_load_the_bundled_results():
    at = open_page("pages/sweep.py")
    runs = find(chart_data(at), "arch", "correlation", "loss")
    assert set(runs.arch) == {"shared_bottom", "omoe", "mmoe"}
    at = open_page("pages/ablation.py")
    assert "HoME" in at.dataframe[0].value.arm.tolist()


def test_the_bundled_tables_speak_in_labels_and_the_ablation_never_compares_home_with_itself():
    at = open_page("pages/sweep.py")
    tables = [frame.value for frame in at.dataframe]
    assert all("shared_bottom" not in frame.to_string() and "mean_rank" not in frame.columns for frame in tables)
    assert any("Wilcoxon p" in frame.columns and "MMoE" in frame.model.tolist() for frame in tables)   # seed by seed
    at = open_page("pages/ablation.py")
    run = lambda: next(b for b in at.button if b.label == "Run against the pinned baseline")
    assert run().disabled                                   # every component on: nothing to compare against
    at.toggle(key="knob.fgate").set_value(False).run()
    assert not run().disabled and not at.exception


def test_the_ablation_states_its_time_from_this_servers_speed_and_trains_the_baseline_once():
    at = open_page("pages/ablation.py", samples="2000", fgate="false")
    said = lambda: " ".join(m.value for m in at.markdown)
    assert "Trains full HoME on this data, then your setting" in said() and "2-core machine" in said()
    next(b for b in at.button if b.label == "Run against the pinned baseline").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert list(at.session_state["ablation_result"].arm) == ["HoME", "w/o feature gate"]
    at.run()   # the baseline is kept for this data: one arm left, at the speed just measured
    assert re.search(r"Trains your setting against the full HoME already trained on this data .* at the speed of the "
                     r"last such run on this server about \d+ s", said()), said()[-600:]


def test_the_presentation_layout_puts_curves_and_gates_side_by_side_and_folds_the_words():
    at = open_page("pages/playground.py", arch=["Shared-Bottom", "MMoE"], present="true")
    assert at.session_state["settings"]["present"] and not at.exception
    intro = lambda where: sum("Pick one or several architectures" in m.value for m in where.markdown)
    about = next(e for e in at.expander if e.label == "About these charts")
    assert intro(at) == intro(about) == 1   # the introduction is folded away into "About these charts"
    next(b for b in at.button if b.label.startswith("Step")).click().run()
    drawn = at.get("vega_lite_chart")   # curves (a panel per task), gates, sparsity on the first screen
    assert len(drawn) == 4 and not at.exception
    assert [d.proto.spec.count('"facet"') for d in drawn[:2]] == [0, 0]   # single views: each as wide as its column
    at.toggle(key="knob.present").set_value(False).run()
    assert intro(at) == 1
    at = open_page("pages/playground.py", present="yes")   # a bad value: a notice, the usual layout
    assert not at.exception and any("present" in w.value and "true or false" in w.value for w in at.warning)
    assert intro(at) == 1
    assert not any(e.label == "About these charts" for e in at.expander)


def test_loaded_settings_set_the_knobs_on_the_next_run():
    at = open_page("pages/playground.py")
    at.session_state["settings"] = {**at.session_state["settings"], "corr": 0.2, "arch": ("OMoE",)}
    at.run()
    assert at.slider(key="knob.corr").value == 0.2 and at.multiselect(key="knob.arch").value == ["OMoE"]
    assert not at.exception


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.key for lesson in LESSONS])
def test_every_lesson_opens_its_page_with_its_preset(lesson):
    at = open_page("pages/start.py")
    next(b for b in at.button if b.key == f"lesson {lesson.key}").click().run()
    assert not at.exception and not at.warning and not at.error, lesson.key
    assert at.title[0].value == {"playground": "Playground", "sweep": "Correlation sweep", "transfer": "Does sharing help each task?"}[lesson.page]
    assert at.session_state["settings"] == lesson.full_settings() and at.session_state["lesson"] == lesson.key
    assert any(lesson.question in i.value for i in at.info)  # the lesson's banner asks its question
    for key, values in lesson.link().items():  # the widgets show the preset
        knob = knobs.KNOBS.get(key)
        if knob is not None and knob.multi:
            assert at.multiselect(key=f"knob.{key}").value == list(knob.parse(values))


def test_a_finished_lesson_race_is_checked_on_the_page():
    lesson = next(lesson for lesson in LESSONS if lesson.key == "learning-rate")
    at = open_page("pages/start.py")
    next(b for b in at.button if b.key == f"lesson {lesson.key}").click().run()
    race = locker(at).race
    race.step(200)
    race.set_lr(0.1)
    race.step(race.total_steps)
    at.switch_page("pages/playground.py").run()
    verdict = lessons_check_text(at)
    assert ("Your run shows it" in verdict) == lesson.check(race.runs).held


def lessons_check_text(at) -> str:
    return " ".join(element.value for element in [*at.success, *at.warning])


def test_the_sweep_page_runs_a_sweep_of_several_architectures_in_its_worker():
    at = open_page("pages/sweep.py", samples="2000", epochs="1", seeds="1", sweep_arch=["Shared-Bottom", "MMoE"], sweep_corr="0.5")
    next(b for b in at.button if b.label == "Run the sweep").click().run()   # one study per architecture, one Stop button each
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert set(at.session_state["sweep_runs"][1].arch) == {"shared_bottom", "mmoe"}
    assert not [b for b in at.button if b.label == "Stop the study"]   # gone once the studies are done


def test_a_store_that_cannot_be_reached_is_said_on_the_page(monkeypatch):
    """A PostgreSQL store that is down: the page says so (no traceback) and opens once it is back."""
    from pages import kept as browsers
    kept = list(browsers._SHELF)
    browsers._SHELF.clear()
    monkeypatch.setenv("MTL_STORE", "postgresql://mtl@localhost:1/none")
    try:
        at = open_page("pages/inside.py")
        assert not at.exception
        assert any("Could not reach the PostgreSQL store" in e.value for e in at.error), [e.value for e in at.error]
    finally:
        browsers._SHELF[:] = kept


def test_an_own_file_makes_tasks_on_the_data_page_and_races_on_the_playground():
    """The file kept in this browser's locker: its columns, the labels chosen, the measured correlation; a link that
    names another browser's file uses this browser's own; the Playground races on it and the runs say their tasks."""
    from streamlit.testing.v1 import AppTest

    from conftest import APP
    from mtl_core.data.census import EXAMPLE

    fresh = open_page("pages/data.py", source="file")
    assert not fresh.exception and any("No file yet" in i.value for i in fresh.info)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["browser_token"] = token = "own-file-browser-token-1"
    shelf().locker(token).keep_file(EXAMPLE.name, EXAMPLE.read_bytes())
    at.query_params["source"], at.query_params["file"] = "file", "f" * 32   # someone else's file: never carried
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception, at.exception
    assert any("a link never carries a file" in w.value for w in at.warning)
    assert "4,000 rows, 13 columns" in " ".join(m.value for m in at.markdown)
    at.multiselect(key="own.labels").set_value(["income_over_50k", "never_married", "weeks_worked"]).run()
    assert [s.value for s in at.selectbox if s.key.startswith("own.label_types")] == ["binary", "binary", "regression"]
    measured = find(chart_data(at), "row", "col", "value")
    pair = measured[(measured.row == "income_over_50k") & (measured.col == "weeks_worked")].value.item()
    assert 0.15 < pair < 0.35   # earners work more weeks
    assert "3,200 train" in " ".join(m.value for m in at.markdown)

    at.switch_page("pages/playground.py")
    at.run()
    assert not at.exception, at.exception
    race = locker(at).race
    assert race.total_steps == 13 * 10   # 3,200 training rows in batches of 256, 10 epochs
    race.step(race.total_steps)
    at.run()
    records = race.records()
    assert {tuple(r["settings"]["label_types"]) for r in records} == {("binary", "binary", "regression")}
    aucs = {r["arch"]: {m["task"]: m["value"] for m in r["metrics"] if m["metric"] == "auc"} for r in records}
    assert all(a["never_married"] > 0.8 for a in aucs.values()), aucs
    assert {b.label for b in at.get("download_button")} >= {"Download MMoE as plain PyTorch (zip)"}


def test_a_link_races_three_weightings_on_one_architecture_side_by_side():
    """MMoE with equal, UPGrad and PCGrad on the same data and seed: three runs, each trained with its weighting (their
    loss weights differ), each kept with the settings it trained with, the curves coloured per entry."""
    at = open_page("pages/playground.py", {"arch": ["MMoE"], "weightings": ["equal", "upgrad", "pcgrad"], "samples": ["2000"],
                                           "epochs": ["1"]})
    assert not at.exception, at.exception
    race = locker(at).race
    assert list(race.runs) == ["mmoe+equal", "mmoe+upgrad", "mmoe+pcgrad"]
    race.step(race.total_steps)
    at.run()
    assert not at.exception, at.exception
    records = {r["id"]: r for r in race.records()}
    assert {r["arch"] for r in records.values()} == {"mmoe"}
    assert sorted(r["settings"]["weighting"] for r in records.values()) == ["equal", "pcgrad", "upgrad"]
    assert "MMoE · upgrad · seed 0 · race 1" in records
    weights = {key: run.latest("weighting") for key, run in race.runs.items()}
    value = lambda key: weights[key][weights[key].name == "weight"].value
    assert (value("mmoe+equal") == 1).all() and not (value("mmoe+upgrad") == 1).all()
    curves = find(chart_data(at), "arch", "task", "split", "step", "loss")
    assert set(curves.arch) == {"mmoe+equal", "mmoe+upgrad", "mmoe+pcgrad"}
    assert not [s for s in at.selectbox if s.key == "knob.weighting"]   # each model's weighting is its entry's


def test_a_lesson_whose_models_the_student_changed_says_it_cannot_check_them():
    """The learning-rate lesson's check reads its architecture's run; raced as weightings ("arch+weighting") there is
    no such run: the page says the run is not the lesson's setting, not a traceback."""
    lesson = next(lesson for lesson in LESSONS if lesson.key == "learning-rate")
    at = open_page("pages/start.py")
    next(b for b in at.button if b.key == f"lesson {lesson.key}").click().run()
    at.multiselect(key="knob.weightings").set_value(["equal", "pcgrad"]).run()
    race = locker(at).race
    assert all("+" in key for key in race.runs)
    race.step(race.total_steps)
    at.run()
    assert not at.exception, at.exception
    assert any("not the lesson's setting any more" in c.value for c in at.caption)
