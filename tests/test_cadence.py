"""The redraw cadence: enough of a core for a class's redraws, in levels that do not flap as races come and go."""

from mtl_core.live.cadence import BUSY, LEVELS, Cadence


def test_the_interval_keeps_the_class_within_its_share_of_a_core():
    cadence = Cadence(cost=0.015)
    for playing in (1, 3, 7, 10, 20, 40):
        interval = cadence.wanted(playing)
        assert interval in LEVELS and (playing * 0.015 / interval <= BUSY or interval == LEVELS[-1])
    assert cadence.wanted(1) == 0.1 and cadence.wanted(10) == 0.4


def test_a_page_keeps_its_interval_while_the_class_changes_by_a_race_or_two():
    cadence = Cadence(cost=0.015)
    current = cadence.interval(10, None)                   # 0.4 s for ten races
    assert [cadence.interval(n, current) for n in (9, 8, 11, 12, 13)] == [current] * 5
    assert cadence.interval(14, current) == 0.8            # a growing class slows down at once
    assert cadence.interval(10, 0.8) == 0.8 and cadence.interval(6, 0.8) == 0.2   # it speeds up only once it halved


def test_the_measured_cost_moves_the_interval_and_a_full_class_is_said_to_be_full():
    cadence = Cadence(cost=0.015)
    for _ in range(200):
        cadence.measured(0.06)                             # redraws got four times dearer
    assert abs(cadence.cost - 0.06) < 0.001 and cadence.wanted(10) == 1.6
    assert not cadence.overloaded(10) and cadence.overloaded(30)
