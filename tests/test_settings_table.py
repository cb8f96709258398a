"""One table of settings (mtl_core/settings/knobs.py): the pages' widgets and the command line's shared options
are derived from it, and neither grows a setting the table lacks without this test saying so."""

import re
from pathlib import Path

import pytest

from mtl_core.cli import build_parser
from mtl_core.models.registry import SWITCHES
from mtl_core.settings.knobs import KNOBS

PAGES = Path(__file__).resolve().parent.parent / "pages"
# Options that say how a command runs or prints, not what trains.
RUN_OPTIONS = {"-h", "--json", "--csv", "--diagnostics", "--snapshot-every", "--arch", "--archs", "--match-params", "--correlations",
               "--seeds", "--first-seed"}
# Settings of the command line that have no knob yet: richer than the app's (layer lists, explicit groups, per-task rates, a
# cosine matrix, Tucker's three ranks) or not in the app at all. Moving one into the table removes it from here.
WITHOUT_KNOB = {"--groups", "--cosine", "--binary", "--positive-rates", "--samples", "--holdout", "--features", "--users",
                "--task-experts", "--group-experts", "--levels", "--expert-hidden", "--tower-hidden", "--activation",
                "--feature-gate-rank", "--tucker-ranks", "--steps", "--task-weights"}
# Widgets that choose what a page shows (a run, a snapshot, a model to look into), not a setting.
VIEW_CHOICES = {("inside.py", "run"), ("inside.py", "timeline: snapshot at step"), ("playground.py", "look inside"),
                ("playground.py", "Draw the network"), ("start.py", "architecture")}
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
        if knob.kind is str:
            assert tuple(action.choices) == knob.options, knob.name


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_the_command_line_grows_no_setting_the_table_lacks(command):
    flags = {knob.flag for knob in KNOBS.values() if knob.flag}
    switches = {f"--{switch.field.replace('_', '-')}" for switch in SWITCHES}   # the registry's, one per switch
    unexplained = set(options(command)) - flags - switches - RUN_OPTIONS - WITHOUT_KNOB
    assert not unexplained, f"options with no knob: {sorted(unexplained)} (add them to the knob table)"


def test_no_page_draws_a_setting_outside_the_knob_panel():
    drawn = {(path.name, label) for path in PAGES.glob("*.py") if path.name != "panel.py"
             for _, label in WIDGET.findall(path.read_text())}
    assert drawn <= VIEW_CHOICES, f"widgets that are not knobs: {sorted(drawn - VIEW_CHOICES)}"
    assert drawn == VIEW_CHOICES   # the list names only widgets that still exist
