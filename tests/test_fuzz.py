"""Links and files as a careless or hostile user makes them, through the real pages (AppTest): every page
renders without an exception, every value not used gets a notice that echoes it shortened and as code,
and nothing in the session is lost. `MTL_FUZZ_EXAMPLES=N` runs more generated cases (see README)."""

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mtl_core.settings import knobs, links

from mtl_core.serve.records import dumps
from mtl_core.settings.knob import SHOWN, shorten
from mtl_core.settings.knobs import KNOBS
from pages.kept import shelf

from conftest import PAGES, link_texts, open_page

PAGE_EXAMPLES = max(1, int(os.environ.get("MTL_FUZZ_EXAMPLES", "300")) // 12)
CODE = re.compile(r"(`+) ?(.*?) ?\1")


def notices(at) -> list[str]:
    return [w.value for w in at.warning]


def echoed(notice: str) -> list[str]:
    """The user's texts a notice echoes: inside code spans, nothing outside them."""
    return [m.group(2) for m in CODE.finditer(notice)]


def assert_sane(at):
    assert not at.exception, at.exception
    assert not [e for e in at.error if "did not expect" in e.value], [e.value for e in at.error]
    if "settings" in at.session_state:
        for name, value in at.session_state["settings"].items():
            assert KNOBS[name].check(value) == value, name
    for n in notices(at):
        assert all(len(text) <= SHOWN for text in echoed(n)), n
        assert "](" not in CODE.sub("", n) and "<" not in CODE.sub("", n), n  # no link, image or HTML outside code


CRASHERS = ["inf", "-inf", "Infinity", "1e309", "9" * 10_000]


@pytest.mark.parametrize("page", ["pages/playground.py", "pages/data.py"])
@pytest.mark.parametrize("raw", CRASHERS)
def test_numbers_that_crashed_pages_get_notices(page, raw):
    query = {"tasks": raw, "seed": raw} | ({"experts": raw, "epochs": raw} if "playground" in page else {})
    at = open_page(page, query)
    assert_sane(at)
    assert len(notices(at)) == len(query)
    assert at.number_input(key="knob.tasks").value == 2 and at.number_input(key="knob.seed").value == 0


def test_a_link_cannot_inject_markdown_links_or_images():
    at = open_page("pages/data.py", {"tasks": "[log in](http://evil.example/x)", "seed": "![x](http://evil.example/a.png)",
                                     "noise": "x" * 10_000})
    assert_sane(at)
    assert len(notices(at)) == 3
    assert any("`[log in](http://evil.example/x)`" in n for n in notices(at))
    assert any(echoed(n)[1].endswith("…") and len(echoed(n)[1]) == SHOWN for n in notices(at) if "noise" in n)


def test_silent_fallbacks_now_speak():
    at = open_page("pages/playground.py", {"norm": "0", "groups": "yes", "dense": ["0", "5"], "sparse": "0", "corr": ["0.2", "0.3"],
                                           "rate": "0.2", "arch": "HoME"})
    assert_sane(at)
    said = " ".join(notices(at))
    for key in ("norm", "groups", "dense", "sparse", "corr", "rate"):
        assert f"`{key}`" in said, key
    assert at.toggle(key="knob.norm").value is True and at.slider(key="knob.corr").value == 0.5
    at = open_page("pages/playground.py", {"tasks": "1", "groups": "true"})
    assert "`groups`" in " ".join(notices(at))


def test_a_refused_settings_file_changes_nothing_and_a_good_one_sets_the_knobs():
    at = open_page("pages/playground.py", {"corr": "0.2"})
    before = dict(at.session_state["settings"])
    for bad in ('{"corr": "0.5"}', '{"samples": "10000"}', '{"lr": "0.1"}', '{"groups": "yes"}', '{"tasks": true}',
                "[" * 20_000 + "]" * 20_000, '{"rate": 0.2}'):
        at.sidebar.file_uploader[0].upload("s.json", bad.encode(), "application/json").run()
        assert_sane(at)
        assert at.session_state["settings"] == before
        assert "Your settings were kept" in at.sidebar.error[0].value
    at.sidebar.file_uploader[0].upload("s.json", b'{"corr": 0.9, "arch": ["OMoE"]}', "application/json").run()
    assert at.slider(key="knob.corr").value == 0.9 and at.multiselect(key="knob.arch").value == ["OMoE"]
    assert_sane(at)


def kept(at):
    return shelf().locker(at.session_state["browser_token"])


def test_uploaded_runs_are_checked_renamed_not_replaced_and_downloadable_at_once(record_file):
    at = open_page("pages/inside.py")
    download = lambda: next(b for b in at.sidebar.get("download_button"))
    assert download().proto.disabled
    at.sidebar.file_uploader[0].upload("runs.json", record_file, "application/json").run()
    assert_sane(at)
    assert not download().proto.disabled  # the runs just loaded can be downloaded in the same run
    at.sidebar.file_uploader[0].upload("again.json", record_file, "application/json").run()
    assert [r.id for r in kept(at).index()] == ["PLE · seed 0 · race 1", "PLE · seed 0 · race 1 (2)"]
    bad = json.loads(record_file)
    bad[0]["diagnostics"]["gates"] = "abc"
    at.sidebar.file_uploader[0].upload("bad.json", json.dumps(bad).encode(), "application/json").run()
    assert "Nothing in your session was changed" in at.sidebar.error[0].value and len(kept(at).index()) == 2
    assert_sane(at)


@pytest.fixture(scope="module")
def record_file():
    at = open_page("pages/playground.py", {"samples": "2000", "arch": "PLE"})
    next(b for b in at.button if b.label.startswith("Step")).click().run()
    (record,) = json.loads(kept(at).dump())
    return dumps([{**record, "id": "PLE · seed 0 · race 1"}]).encode()


# ------------------------------------------------------------------ generated links through the pages

link = st.dictionaries(st.sampled_from([*KNOBS, "hide", "nope"]), st.lists(st.one_of(*map(link_texts, KNOBS.values())), min_size=1,
                                                                           max_size=2), max_size=6)


@settings(max_examples=PAGE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(page=st.sampled_from(PAGES), query=link)
def test_any_link_renders_any_page_with_notices(page, query):
    at = open_page(page, query)
    assert_sane(at)
    said = " ".join(notices(at))
    for key, texts in query.items():  # every value is used as given, or named in a notice
        if key in PAGE_KNOBS[page]:
            used = KNOBS[key].check(KNOBS[key].parse(texts)) == at.session_state["settings"][key] if _parses(key, texts) else False
            assert used or f"`{key}`" in said, (key, texts, said)
        elif key != "hide":
            assert f"`{shorten(key)}`" in said, (key, said)


PAGE_KNOBS = {page: knobs.PAGE_KNOBS.get(page.removeprefix("pages/").removesuffix(".py"), ()) for page in PAGES}


def _parses(key, texts) -> bool:
    try:
        KNOBS[key].parse(texts)
        return True
    except ValueError:
        return False


# ------------------------------------------------------------------ run files whose embedded settings were edited

def json_values(knob):
    """A JSON value for a knob: its default, another allowed one, or junk of any JSON type."""
    allowed = [knob.default, *(knob.options[:3] if not knob.multi else [list(knob.options[:2])])]
    junk = [None, True, -1, 10**9, 10**25, 1.5, "", "x" * 100, [], {}, ["MMoE"] * 50, "census-income:x", [0, 0]]
    return st.sampled_from([list(v) if isinstance(v, tuple) else v for v in allowed] + junk)


embedded = st.dictionaries(st.sampled_from([*KNOBS, "nope"]), st.one_of(*map(json_values, KNOBS.values())), max_size=5)


@settings(max_examples=PAGE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(changes=embedded)
def test_a_run_file_with_any_embedded_settings_is_refused_or_drawn_on_inside(record_file, changes):
    """A downloaded run whose settings were edited: refused whole with a message, or loaded and its page drawn
    (a network that cannot be drawn says so), never an unexpected error and never a knob value out of range."""
    (record,) = json.loads(record_file)
    record["settings"] = {**record["settings"], **changes}
    at = open_page("pages/inside.py")
    before = len(kept(at).index())
    at.sidebar.file_uploader[0].upload("edited.json", json.dumps([record]).encode(), "application/json").run()
    assert_sane(at)
    if at.sidebar.error:
        assert "its settings are not this app's" in at.sidebar.error[0].value and len(kept(at).index()) == before
    else:
        loaded = json.loads(kept(at).dump())[-1]
        assert all(KNOBS[name].check(value) == value for name, value in links.check_values(loaded["settings"]).items())
