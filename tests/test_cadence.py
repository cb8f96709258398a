"""The redraw cadence: the fastest interval that keeps a class's redraws within their share of a core, from the measured cost."""

import pytest

from mtl_core.live.cadence import BUSY, LEVELS, REDRAWS, Cadence

COST = 0.02


def load(playing, interval, cost=COST):
    """Share of a core that `playing` races' redraws take at `interval`."""
    return playing * REDRAWS * cost / interval


def test_the_interval_is_the_fastest_level_that_keeps_the_class_within_its_share_of_a_core():
    cadence = Cadence(cost=COST, busy=BUSY)
    for playing in (1, 3, 7, 10, 15, 20, 30, 80):
        interval = cadence.wanted(playing)
        faster = [level for level in LEVELS if level < interval]
        assert interval in LEVELS and (load(playing, interval) <= BUSY or interval == LEVELS[-1])
        assert not faster or load(playing, faster[-1]) > BUSY   # no faster level would do
    assert cadence.wanted(1) == LEVELS[0] and cadence.wanted(10) == 0.3   # 10 x 1.2 x 20 ms every 0.3 s: 0.8 of a core


def test_the_measured_cost_moves_the_interval_and_forgets_a_burst():
    cadence = Cadence(cost=COST, busy=BUSY)
    for _ in range(4):
        cadence.measured(0.2)                                  # a class arrives: every student's first page run
    assert cadence.cost == COST                                # a burst of a few windows does not move it
    for _ in range(2):
        cadence.measured(0.2)
    assert cadence.cost > COST                                 # a lasting one does
    for _ in range(10):
        cadence.measured(0.018)                                # then the redraws alone
    assert cadence.cost == 0.018 and cadence.wanted(10) == 0.3   # 10 x 1.2 x 18 ms / 0.3 s = 0.72
    for _ in range(10):
        cadence.measured(4 * COST)                             # redraws got four times dearer
    assert cadence.wanted(10) == 1.2 and not cadence.overloaded(10) and cadence.overloaded(20)   # 10 x 1.2 x 80 ms = 0.96


def test_the_cost_is_the_processs_cpu_over_the_redraws_it_served(monkeypatch):
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr("mtl_core.live.cadence.time.monotonic", lambda: clock["wall"])
    monkeypatch.setattr("mtl_core.live.cadence.time.process_time", lambda: clock["cpu"])
    cadence = Cadence(cost=0.02)
    for _ in range(1_000):          # 1,000 redraws in 25 s that cost the process 40 s of CPU: 40 ms each
        clock["wall"] += 0.025
        clock["cpu"] += 0.04
        cadence.redrawn()
    assert abs(cadence.cost - 0.04) < 1e-9


def test_app_processes_on_one_machine_share_its_cores(monkeypatch):
    """Two processes on two cores plan for 0.4 of a core each (what one process plans for, together); with cores
    to spare each keeps 0.8; a bad MTL_APP_PROCESSES is a message, raised where the page shows it."""
    from mtl_core.config import ConfigError
    from mtl_core.live.cadence import share

    assert share(1, 2) == pytest.approx(0.8) and share(2, 2) == pytest.approx(0.4) and share(4, 16) == pytest.approx(0.8)
    monkeypatch.setenv("MTL_APP_PROCESSES", "2")
    assert Cadence().wanted(15) > Cadence(busy=0.8).wanted(15)
    monkeypatch.setenv("MTL_APP_PROCESSES", "many")
    with pytest.raises(ConfigError, match="MTL_APP_PROCESSES = 'many' is not allowed"):
        Cadence().wanted(1)
