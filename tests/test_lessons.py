"""Every lesson predicts what its race shows on the default seed (the full check over seeds is
`python -m mtl_core lessons`), and its link opens exactly its preset."""

import pytest

from mtl_core import knobs
from mtl_core.lessons import LESSONS, check
from mtl_core.live import InProcess


@pytest.fixture(scope="module")
def backend():
    return InProcess()


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.key for lesson in LESSONS])
def test_the_lesson_holds_on_its_default_seed(lesson, backend):
    result = check(lesson, seeds=0, backend=backend)
    assert result.default.held, f"{lesson.key}: {lesson.predicts} did not hold: {result.default.evidence}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.key for lesson in LESSONS])
def test_the_lesson_link_opens_its_settings_without_a_notice(lesson):
    query = lesson.link()
    page = knobs.PAGE_KNOBS[lesson.page]
    reading = knobs.read_link(query, page)
    merged, dropped = knobs.apply(knobs.link_base(knobs.defaults(), reading.values, page), reading.values)
    assert not reading.notices and not dropped
    assert merged == lesson.full_settings() and reading.hidden == lesson.hide
