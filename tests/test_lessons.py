"""Every lesson predicts what its race shows on the default seed (the full check over seeds is
`python -m mtl_core lessons`), and its link opens exactly its preset."""

import pytest

from joblib import Parallel, delayed

from mtl_core.settings import knobs, links
from mtl_core.studies.lessons import LESSONS, check


def test_every_lesson_holds_on_its_default_seed():
    """Two lessons at a time, each in a process of its own, as `python -m mtl_core lessons --jobs 2` checks them."""
    results = Parallel(n_jobs=2)(delayed(check)(lesson, 0) for lesson in LESSONS)
    failed = [f"{r.lesson.key}: {r.lesson.predicts} did not hold: {r.default.evidence}" for r in results if not r.default.held]
    assert [r.lesson.key for r in results] == [lesson.key for lesson in LESSONS] and not failed, failed


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.key for lesson in LESSONS])
def test_the_lesson_link_opens_its_settings_without_a_notice(lesson):
    query = lesson.link()
    page = knobs.PAGE_KNOBS[lesson.page]
    merged, hidden, notices = links.follow_link(knobs.defaults(), query, page)
    assert not notices
    assert merged == lesson.full_settings() and hidden == lesson.hide


def test_the_degradation_check_counts_each_shared_expert_once():
    import pandas as pd
    from mtl_core.studies.lessons import taken_over_at_most

    class Run:   # the latest occupancy table of a race's run: one row per (expert, consumer)
        def __init__(self, rows):
            self.frame = pd.DataFrame(rows, columns=["level", "expert", "consumer", "share", "top_share", "taken_over"])

        def latest(self, table):
            return self.frame

    taken = [(2, "global 0", gate, share, 0.9, True) for gate, share in (("a", 0.9), ("b", 0.1))]
    free = [(2, f"global {e}", gate, 0.5, 0.5, False) for e in (1, 2, 3) for gate in ("a", "b")]
    assert taken_over_at_most("home", 0.25)({"home": Run(taken + free)}).held            # 1 of 4 experts
    assert not taken_over_at_most("home", 0.25)({"home": Run(taken + free[:2])}).held    # 1 of 2
