"""Page logic with Streamlit's AppTest: every page renders, knobs change what is computed, chart data
is what the charts claim, bad links get a notice."""

import json
import re
from pathlib import Path
from urllib.parse import parse_qs

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from pages.common import parse_upload

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["pages/start.py", "pages/data.py", "pages/playground.py", "pages/inside.py", "pages/sweep.py", "pages/ablation.py"]


def open_page(page, **query):
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(page).run()
    return at


def chart_data(at) -> list:
    """The data behind every chart on the page, as DataFrames."""
    return [pa.ipc.open_stream(ds.data.data).read_pandas() for chart in at.get("vega_lite_chart") for ds in chart.proto.datasets]


def find(frames, *columns):
    return next(f for f in frames if set(columns) <= set(f.columns))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(page):
    at = open_page(page)
    assert not at.exception, at.exception
    assert at.title


def test_data_page_shows_the_knob_and_the_measured_correlation():
    at = open_page("pages/data.py")
    at.slider(key="corr").set_value(0.9).run()
    target, measured = [f for f in chart_data(at) if {"row", "col", "value"} <= set(f.columns)][:2]
    assert target[(target.row == "task 0") & (target.col == "task 1")].value.item() == pytest.approx(0.9)
    off = measured[(measured.row == "task 0") & (measured.col == "task 1")].value.item()
    assert 0 < off < 0.9  # measured, not echoed: the sinusoids pull it below p


def test_bad_link_values_get_a_notice_and_fall_back():
    at = open_page("pages/playground.py", corr="7", arch="foo")
    warnings = " ".join(w.value for w in at.warning)
    assert "corr=7" in warnings and "between -1 and 1" in warnings
    assert "arch=foo" in warnings and "MMoE" in warnings
    assert at.slider(key="corr").value == 0.5 and not at.exception


def test_lesson_links_lock_chosen_knobs():
    at = open_page("pages/playground.py", hide="arch,corr")
    assert at.multiselect(key="arch").disabled and at.slider(key="corr").disabled
    assert not at.number_input(key="tasks").disabled


def step(at):
    next(b for b in at.button if b.label.startswith("Step")).click().run()


def test_playground_step_trains_and_draws_gates_that_sum_to_one():
    at = open_page("pages/playground.py", samples="5000", arch="MMoE")
    step(at)
    race = at.session_state["race"]
    assert race.runs["mmoe"].run.step == 50
    frames = chart_data(at)
    gates = find(frames, "gate", "expert", "mean")
    assert len(gates) == 2 * 8  # 2 task gates x 8 experts
    assert gates.groupby("gate")["mean"].sum().round(5).eq(1).all()
    loss = find(frames, "arch", "task", "split", "step", "loss")
    assert set(loss.split) == {"train", "test"} and loss.step.max() == 50
    assert not find(frames, "expert", "measure", "share").empty


def test_learning_rate_applies_live_and_data_knobs_restart_keeping_runs():
    at = open_page("pages/playground.py", samples="5000", arch="MMoE")
    step(at)
    first = at.session_state["race"]
    at.select_slider(key="lr").set_value(0.01).run()
    assert at.session_state["race"] is first and first.runs["mmoe"].run.lr == 0.01
    at.slider(key="corr").set_value(0.2).run()
    assert at.session_state["race"] is not first
    assert [r["arch"] for r in at.session_state["saved_runs"]] == ["mmoe"]  # nothing lost


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


def test_sweep_and_ablation_pages_load_the_bundled_results():
    at = open_page("pages/sweep.py")
    runs = find(chart_data(at), "arch", "correlation", "loss")
    assert set(runs.arch) == {"shared_bottom", "omoe", "mmoe"}
    at = open_page("pages/ablation.py")
    assert "HoME" in at.dataframe[0].value.arm.tolist()


def test_malformed_uploads_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_upload("{oops")
    with pytest.raises(ValueError, match="missing or has the wrong type for: id, arch"):
        parse_upload(json.dumps([{"history": []}]))
    with pytest.raises(ValueError, match="unknown architecture 'moe'"):
        parse_upload(json.dumps({"id": "x", "arch": "moe", "history": [], "metrics": [], "diagnostics": {}}))
    good = {"id": "x", "arch": "mmoe", "history": [], "metrics": [], "diagnostics": {}}
    assert parse_upload(json.dumps(good)) == [good]


def test_settings_files_are_checked_before_they_change_anything():
    from pages.common import parse_settings

    assert parse_settings('{"corr": 0.2, "arch": ["MMoE", "OMoE"], "groups": true}') == {
        "corr": 0.2, "arch": ["MMoE", "OMoE"], "groups": True}
    with pytest.raises(ValueError, match="'corr': 7 is not allowed; corr must be a correlation between -1 and 1"):
        parse_settings('{"corr": 7}')
    with pytest.raises(ValueError, match="Unknown setting 'colour'"):
        parse_settings('{"colour": "red"}')
    with pytest.raises(ValueError, match="'arch': 'MMoE' is not allowed"):
        parse_settings('{"arch": "MMoE"}')


def test_loaded_settings_set_the_knobs_on_the_next_run():
    at = open_page("pages/playground.py")
    at.session_state["pending_settings"] = {"corr": 0.2, "arch": ["OMoE"]}
    at.run()
    assert at.slider(key="corr").value == 0.2 and at.multiselect(key="arch").value == ["OMoE"]
    assert not at.exception


def test_every_lesson_link_opens_the_playground_with_its_preset():
    start = open_page("pages/start.py")
    links = [m for md in start.markdown for m in re.findall(r"\]\(/playground\?([^)]*)\)", md.value)]
    assert len(links) >= 5
    for link in links:
        query = parse_qs(link)
        at = AppTest.from_file(APP, default_timeout=120)
        for key, values in query.items():
            at.query_params[key] = values if len(values) > 1 else values[0]
        at.run()
        at.switch_page("pages/playground.py").run()
        assert not at.exception and not at.warning and not at.error, link
        chosen = list(at.multiselect(key="arch").value)  # display names, as in links
        assert chosen == query.get("arch", chosen), link  # the preset's architectures were taken
        if "corr" in query:
            assert at.slider(key="corr").value == float(query["corr"][0]), link
