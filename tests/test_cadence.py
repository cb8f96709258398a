"""The redraw cadence: enough of a core for a class's redraws, in levels that do not flap as races come and go."""

from mtl_core.live.cadence import BUSY, LEVELS, Cadence


def test_the_interval_keeps_the_class_within_its_share_of_a_core():
    cadence = Cadence(cost=0.03 * BUSY)
    for playing in (1, 3, 7, 10, 20, 40):
        interval = cadence.wanted(playing)
        assert interval in LEVELS and (playing * 0.03 * BUSY / interval <= BUSY or interval == LEVELS[-1])
    assert cadence.wanted(1) == 0.1 and cadence.wanted(10) == 0.4


def test_a_page_keeps_its_interval_while_the_class_changes_by_a_race_or_two():
    cadence = Cadence(cost=0.03 * BUSY)
    current = cadence.interval(10, None)                   # 0.4 s for ten races
    assert [cadence.interval(n, current) for n in (9, 8, 11, 12, 13)] == [current] * 5
    assert cadence.interval(14, current) == 0.8            # a growing class slows down at once
    assert cadence.interval(10, 0.8) == 0.8                # 10 races at 0.4 s would use 75% of BUSY: not spare enough
    assert cadence.interval(9, 0.8) == 0.4                 # 9 would use 68%: one level faster
    assert cadence.interval(2, 1.6) == 0.8                 # one level at a time


def test_the_measured_cost_moves_the_interval_and_a_full_class_is_said_to_be_full():
    cadence = Cadence(cost=0.03 * BUSY)
    for _ in range(50):
        cadence.measured(0.12 * BUSY)                      # redraws got four times dearer
    assert abs(cadence.cost - 0.12 * BUSY) < 0.001 and cadence.wanted(10) == 1.6
    assert not cadence.overloaded(10) and cadence.overloaded(30)


def test_the_cost_is_the_processs_cpu_over_the_redraws_it_served(monkeypatch):
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr("mtl_core.live.cadence.time.monotonic", lambda: clock["wall"])
    monkeypatch.setattr("mtl_core.live.cadence.time.process_time", lambda: clock["cpu"])
    cadence = Cadence(cost=0.02)
    for _ in range(1_000):          # 1,000 redraws in 25 s that cost the process 40 s of CPU: 40 ms each
        clock["wall"] += 0.025
        clock["cpu"] += 0.04
        cadence.redrawn()
    assert 0.035 < cadence.cost <= 0.04
