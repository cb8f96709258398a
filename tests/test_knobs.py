"""The knob table: typed values from links and files, notices for everything not used, rules between knobs."""

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from mtl_core.settings import builders, knobs, links, rules

from mtl_core.config import ConfigError
from mtl_core.settings.knob import SHOWN, shorten
from mtl_core.settings.knobs import KNOBS

from conftest import link_texts

PLAYGROUND = knobs.names(knobs.SECTIONS)
DATA_PAGE = knobs.names(["tasks"])
EXAMPLES = int(__import__("os").environ.get("MTL_FUZZ_EXAMPLES", "300"))


def read(query, allowed=PLAYGROUND):
    merged, _, notices = links.follow_link(knobs.defaults(), {k: v if isinstance(v, list) else [v] for k, v in query.items()}, allowed)
    return merged, notices


@pytest.mark.parametrize("knob", ["tasks", "seed", "experts", "epochs"])
@pytest.mark.parametrize("raw", ["inf", "-inf", "Infinity", "1e309", "NaN", "9" * 10_000, "2.5", "", " 3"])
def test_numbers_that_crashed_widgets_get_a_notice_and_keep_the_default(knob, raw):
    merged, notices = read({knob: raw})
    assert merged[knob] == KNOBS[knob].default
    assert [n.knob for n in notices] == [knob] and len(notices[0].value) <= SHOWN


@pytest.mark.parametrize("raw", ["0", "1", "yes", "", "TRUE ", "on"])
def test_toggles_take_true_or_false_only(raw):
    merged, notices = read({"groups": raw})
    assert merged["groups"] is False and "true or false" in notices[0].problem
    assert read({"groups": "TRUE"})[0]["groups"] is True


def test_home_switch_off_is_used_when_home_races_and_noticed_when_it_does_not():
    merged, notices = read({"norm": "false", "arch": ["HoME", "MMoE"]})
    assert merged["norm"] is False and not notices
    merged, notices = read({"norm": "false"})  # HoME not racing: the switch would do nothing
    assert merged["norm"] is True and "HoME" in notices[0].problem
    merged, notices = read({"norm": "0", "arch": "HoME"})
    assert merged["norm"] is True and notices[0].knob == "norm"


def test_rules_between_knobs_give_notices():
    merged, notices = read({"tasks": "2", "dense": ["0", "5"], "sparse": ["0", "1"]})
    assert merged["dense"] == (0,) and merged["sparse"] == (1,)
    assert {n.knob for n in notices} == {"dense", "sparse"}
    merged, notices = read({"tasks": "1", "groups": "true"})
    assert merged["groups"] is False and notices[0].knob == "groups"
    merged, notices = read({"rate": "0.2"})
    assert merged["rate"] == 0.05 and "sparse" in notices[0].problem
    merged, notices = read({"between": "0.3"})
    assert merged["between"] == 0.0 and "groups" in notices[0].problem
    merged, notices = read({"tasks": "3", "sparse": "2", "rate": "0.2", "groups": "true", "between": "0.3"})
    assert (merged["rate"], merged["between"], notices) == (0.2, 0.3, [])


def test_a_repeated_single_value_knob_is_refused():
    merged, notices = read({"corr": ["0.2", "0.3"]})
    assert merged["corr"] == 0.5 and "2 times" in notices[0].problem


def test_unknown_keys_and_other_pages_knobs_are_noticed():
    _, notices = read({"colour": "red", "arch": "MMoE"}, DATA_PAGE)
    assert {n.knob for n in notices} == {"colour", "arch"}
    reading = links.read_link({"hide": ["corr,nope"]}, DATA_PAGE)
    assert reading.hidden == ("corr",) and reading.notices[0].value == "nope"


def test_settings_files_must_have_the_types():
    assert links.read_file('{"corr": 0.2, "arch": ["MMoE", "OMoE"], "groups": true, "tasks": 3}') == {
        "corr": 0.2, "arch": ("MMoE", "OMoE"), "groups": True, "tasks": 3}
    for bad in ('{"corr": "0.5"}', '{"samples": "10000"}', '{"lr": "0.1"}', '{"groups": "yes"}', '{"tasks": true}',
                '{"tasks": 2.0}', '{"arch": "MMoE"}', '{"corr": NaN}', '{"colour": 1}', '[1]', '{"arch": ["MMoE", "MMoE"]}'):
        with pytest.raises(ValueError):
            links.read_file(bad)
    with pytest.raises(ValueError, match="nests 5000 levels"):
        links.read_file("[" * 5_000 + "]" * 5_000)
    with pytest.raises(ValueError, match="at most"):
        links.read_file(json.dumps({"x": "y" * 20_000}))


def test_every_problem_of_a_file_is_named():
    with pytest.raises(ValueError) as error:
        links.read_file('{"corr": "0.5", "tasks": true}')
    assert "'corr'" in str(error.value) and "'tasks'" in str(error.value)


def test_link_round_trip_and_configs():
    s = {**knobs.defaults(), "tasks": 4, "corr": 0.25, "groups": True, "between": -0.1, "sparse": (3,), "dense": (0,),
         "rate": 0.1, "arch": ("HoME", "PLE"), "norm": False, "lr": 0.01}
    link = links.to_link(s, PLAYGROUND)
    merged, notices = read(link)
    assert not notices and merged == s
    data = builders.data_config(s)
    assert data.groups == (0, 0, 1, 1) and data.task_types == ("binary", "regression", "regression", "binary")
    assert builders.archs(s) == ["home", "ple"] and builders.model_config("home", s).expert_norm is False
    assert builders.train_config(s).lr == 0.01


# ------------------------------------------------------------------ generated cases

link_values = st.dictionaries(st.sampled_from([*KNOBS, "hide", "colour"]),
                              st.lists(st.one_of(*[link_texts(k) for k in KNOBS.values()]), min_size=0, max_size=3), max_size=8)


@settings(max_examples=EXAMPLES, deadline=None)
@given(query=link_values, allowed=st.sampled_from([PLAYGROUND, DATA_PAGE]))
def test_any_link_gives_valid_settings_and_a_notice_for_every_value_not_used(query, allowed):
    reading = links.read_link(query, allowed)
    merged, dropped = rules.apply(knobs.defaults(), reading.values)
    for name, value in merged.items():
        assert KNOBS[name].check(value) == value  # every setting has its type and range
    noticed = {n.knob for n in reading.notices + dropped}
    for key, texts in query.items():
        if key == "hide":
            continue
        used = key in reading.values and merged[key] == reading.values[key]
        assert used or key in noticed or key not in KNOBS and shorten(key) in noticed, (key, texts)
    for n in reading.notices + dropped:
        assert len(n.value) <= SHOWN and "\n" not in n.value
    try:
        builders.data_config(merged)
    except ConfigError:
        pass  # a clear message for impossible combinations (e.g. 8 tasks all at p = -0.5)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                                     st.text(max_size=20)),
                           lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=10)


@settings(max_examples=EXAMPLES, deadline=None)
@given(values=st.dictionaries(st.sampled_from([*KNOBS, "colour"]), json_values, max_size=6))
def test_any_settings_file_is_taken_whole_with_types_or_refused_whole(values):
    try:
        read_values = links.read_file(json.dumps(values))
    except ValueError:
        return
    for name, value in read_values.items():
        assert KNOBS[name].check(value) == value
        assert type(value) is not str or KNOBS[name].kind is str  # never "0.5" for a number
    assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in read_values.values())


def test_a_preset_sets_its_knobs_and_a_link_names_only_what_differs():
    lesson = knobs.defaults("lesson")
    assert (lesson["experts"], lesson["hidden"], lesson["samples"], lesson["epochs"]) == (16, 8, 20_000, 20)
    merged, notices = read({"preset": "lesson", "corr": "0.2"})
    assert not notices and merged == {**lesson, "corr": 0.2}
    assert links.to_link(merged, PLAYGROUND) == {"preset": ["lesson"], "corr": ["0.2"]}
    switched = knobs.with_preset({**merged, "tasks": 3}, "paper")
    assert switched["experts"] == 8 and switched["tasks"] == 3 and switched["corr"] == 0.2  # only the preset's knobs move
    _, notices = read({"preset": "fancy"})
    assert notices[0].knob == "preset" and "lesson" in notices[0].problem


def test_a_page_without_knobs_keeps_the_students_settings():
    mine = {**knobs.defaults("lesson"), "samples": 50_000, "corr": 0.3}
    assert links.link_base(mine, {}, ()) == mine


def test_a_sweep_is_synthetic_whatever_data_the_student_chose_elsewhere():
    from mtl_core.data.synthetic import DataConfig
    settings = {**knobs.defaults(), "source": "census-income:1"}
    assert isinstance(builders.data_config(settings), knobs.CensusConfig)
    assert isinstance(builders.sweep_args(settings)["base"], DataConfig)


def test_gate_tricks_and_weightings_reach_the_configs_and_the_link():
    s = {**knobs.defaults(), "tasks": 3, "arch": ("MMoE",), "temp": 4.0, "gdrop": 0.1, "ginit": 0.0, "gln": True,
         "freeze": 300, "shared_in": 32, "weighting": "fixed", "tw": 10.0}
    merged, notices = read(links.to_link(s, PLAYGROUND))
    assert not notices and merged == s
    model = builders.model_config("mmoe", s)
    assert (model.gate_temperature, model.gate_dropout, model.gate_init_scale, model.gate_layer_norm, model.shared_input) == \
        (4.0, 0.1, 0.0, True, 32)
    train = builders.train_config(s)
    assert train.weighting == "fixed" and train.task_weights == (10.0, 1.0, 1.0) and train.freeze_gates_after == 300
    assert builders.train_config({**s, "weighting": "gradnorm", "gn_alpha": 0.5, "freeze": 0}).gradnorm_alpha == 0.5
    assert builders.train_config({**s, "freeze": 0}).freeze_gates_after is None
    sweep = builders.sweep_args(s)   # the sweep studies the paper's plain models whatever the Playground's tricks
    assert sweep["train_config"].weighting == "equal" and sweep["train_config"].freeze_gates_after is None


@pytest.mark.parametrize("query, knob", [({"temp": ["2"], "arch": ["Shared-Bottom"]}, "temp"),
                                         ({"tw": ["10"]}, "tw"),
                                         ({"gn_alpha": ["0.5"], "weighting": ["pcgrad"]}, "gn_alpha"),
                                         ({"weighting": ["magic"]}, "weighting"),
                                         ({"gdrop": ["0.9"]}, "gdrop"),
                                         ({"tasks": ["1"], "weighting": ["gradnorm"]}, "weighting"),
                                         ({"tasks": ["1"], "weighting": ["pcgrad"]}, "weighting"),
                                         ({"tasks": ["1"], "weighting": ["dwa"]}, "weighting"),
                                         ({"ginit": ["0"], "arch": ["Cross-Stitch"]}, "ginit"),
                                         ({"epochs": ["３"]}, "epochs"),          # a full-width digit
                                         ({"seed": ["１２"]}, "seed"),
                                         ({"corr": ["1e-400"]}, "corr"),        # would round to 0.0
                                         ({"noise": ["-1e-999"]}, "noise")])
def test_a_trick_that_cannot_apply_or_does_not_fit_gets_a_notice(query, knob):
    merged, notices = read(query)
    assert [n.knob for n in notices] == [knob]


def test_a_weighting_left_over_from_more_tasks_trains_one_task_as_equal():
    s = {**knobs.defaults(), "tasks": 1, "weighting": "gradnorm"}   # the student chose gradnorm, then one task
    assert builders.train_config(s).weighting == "equal"
    assert builders.train_config({**s, "tasks": 2}).weighting == "gradnorm"


def test_ginit_still_applies_beside_cross_stitch_when_another_gate_learns_from_the_input():
    merged, notices = read({"ginit": ["0"], "arch": ["Cross-Stitch", "MMoE"]})
    assert not notices and merged["ginit"] == 0.0


def test_zero_written_as_zero_is_still_zero():
    merged, notices = read({"corr": ["0e5"], "noise": ["0.000"]})
    assert not notices and merged["corr"] == 0.0 and merged["noise"] == 0.0
