"""One table of settings (mtl_core/settings/knobs.py): the pages' widgets and the command line's shared options
are derived from it, and neither grows a setting the table lacks without this test saying so."""

import re
from pathlib import Path

import pytest

from mtl_core.cli import build_parser, parse
from mtl_core.cli import settings as cli_settings
from mtl_core.config import ConfigError
from mtl_core.models.registry import REGISTRY
from mtl_core.settings import builders, knobs
from mtl_core.settings.knob import OWN_FILE
from mtl_core.settings.knobs import KNOBS

PAGES = Path(__file__).resolve().parent.parent / "pages"
# Options that say how a command runs or prints, not what trains.
RUN_OPTIONS = {"-h", "--json", "--csv", "--save", "--diagnostics", "--snapshot-every", "--arch", "--archs", "--match-params", "--correlations",
               "--seeds", "--first-seed"}
# Widgets that choose what a page shows (a run, a snapshot, a model to look into) or a class's own entries (its code, a
# name, its lesson and first seed, a prediction), not a setting of what trains.
VIEW_CHOICES = {("inside.py", "run"), ("inside.py", "timeline: snapshot at step"), ("playground.py", "look inside"),
                ("playground.py", "Draw the network"), ("start.py", "architecture"), ("class.py", "class code"),
                ("class.py", "your name (optional: only your teacher sees it)"), ("class.py", "lesson"),
                ("class.py", "first seed"), ("class.py", "your prediction")}
# The own-file knobs (knob.OWN_FILE), drawn by the Data page with the file's columns as their options.
OWN_FILE_WIDGETS = {("own_data.py", "User column (for GAUC: AUC per user, averaged)"),
                    ("own_data.py", "Input columns (what the model reads)"),
                    ("own_data.py", "Rows with a missing value in a chosen column")}
WIDGET = re.compile(r"\.(slider|number_input|select_slider|selectbox|multiselect|toggle|checkbox|radio|text_input|"
                    r"segmented_control|pills)\(\s*\"([^\"]+)\"")


def options(command: str) -> dict:
    parser = build_parser().commands[command]
    return {action.option_strings[0]: action for action in parser._actions if action.option_strings}


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_a_knob_with_a_flag_is_that_option_with_the_tables_default_and_help(command):
    given = options(command)
    for knob in KNOBS.values():
        if not knob.flag or (command == "sweep" and knob.name == "seed"):   # a sweep's seeds are --first-seed and --seeds
            continue
        action = given[knob.flag]
        assert action.default == knob.default, knob.name
        assert action.help.replace("%%", "%") == (knob.help or knob.label), knob.name
        if knob.name == "source":   # the table's sources, or csv:PATH / parquet:PATH for an own file
            assert action.choices is None and all(action.type(v) == v for v in knob.options if v != "file")
            assert action.type("csv:shop.csv") == "csv:shop.csv"
        elif knob.kind is str and knob.options and not knob.sequence:
            assert tuple(action.choices) == knob.options, knob.name


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_the_command_line_grows_no_setting_the_table_lacks(command):
    flags = {knob.flag for knob in KNOBS.values() if knob.flag}
    unexplained = set(options(command)) - flags - RUN_OPTIONS
    assert not unexplained, f"options with no knob: {sorted(unexplained)} (add them to the knob table)"


def test_no_page_draws_a_setting_outside_the_knob_panel():
    drawn = {(path.name, label) for path in PAGES.glob("*.py") if path.name != "panel.py"
             for _, label in WIDGET.findall(path.read_text())}
    assert drawn <= VIEW_CHOICES | OWN_FILE_WIDGETS, f"widgets that are not knobs: {sorted(drawn - VIEW_CHOICES - OWN_FILE_WIDGETS)}"
    assert drawn == VIEW_CHOICES | OWN_FILE_WIDGETS   # the lists name only widgets that still exist
    own = re.findall(r'_widget\(f?"([a-z_]+)', (PAGES / "own_data.py").read_text())
    assert own and all(KNOBS[name].section == OWN_FILE for name in own), own   # the own file's widgets are its knobs


@pytest.mark.parametrize("argv, arch, app", [
    ([], "mmoe", {}),
    (["--preset", "lesson"], "mmoe", knobs.defaults("lesson")),
    (["--data", "funnel"], "esmm", {"source": "funnel"}),
    (["--data", "census-income:2", "--weighting", "fixed"], "home", {"source": "census-income:2", "weighting": "fixed"}),
])
def test_the_command_line_builds_the_apps_configs_from_the_same_settings(argv, arch, app):
    """Left at their defaults, the command line's options build what the app builds: one path, defaults once."""
    given = cli_settings(parse(["train", "--arch", arch, *argv]))
    app = {**knobs.defaults(), **app, "arch": (REGISTRY[arch].label,)}
    assert builders.data_config(given, limits=False) == builders.data_config(app)
    assert builders.model_config(arch, given, limits=False) == builders.model_config(arch, app)
    assert builders.train_config(given, limits=False) == builders.train_config(app)


def test_the_command_lines_own_knobs_reach_the_configs():
    given = cli_settings(parse(["train", "--arch", "home", "--tasks", "4", "--groups", "0,0,1,1", "--binary", "1,3",
                                "--positive-rates", "0.05,0.2", "--expert-hidden", "64,32", "--activation", "relu",
                                "--no-self-gate", "--samples", "100000", "--weighting", "fixed", "--task-weights", "1,2,3,4"]))
    data = builders.data_config(given, limits=False)
    assert data.groups == (0, 0, 1, 1) and data.positive_rates == (0.5, 0.05, 0.5, 0.2) and data.samples == 100_000
    model = builders.model_config("home", given, limits=False)
    assert model.expert_hidden == (64, 32) and model.activation == "relu" and not model.self_gate and model.expert_norm
    assert builders.train_config(given, limits=False).task_weights == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ConfigError, match="training samples"):   # the classroom's range holds for the app's settings
        builders.data_config(given)
