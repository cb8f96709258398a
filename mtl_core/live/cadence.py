"""How often each student's page redraws its live charts, so that one page process serves a whole class.

Every redraw costs the one page process some milliseconds of CPU. The cost is measured the way the
process pays it: its whole CPU time (`time.process_time`: Streamlit's own work to send a redraw, the
other pages and the health checks included) over the redraws it served, every few seconds, a running
mean. (Timing only a redraw's own code missed most of the cost: the intervals it chose saturated the
process and the class stalled.) With `playing` races the process then spends `playing * cost / interval`
of a core on redraws; the interval keeps that near `BUSY` of a core, rounded up to one of a few
`LEVELS`, with hysteresis: a page changes its interval (which costs it a full rerun) when the class
needs slower redraws, or when the next faster level would leave 30% of that budget spare, never on
every race that starts or stops. (Changing it on every start made every student's page rerun whole at
once while a class arrived.)
"""

from __future__ import annotations

import threading
import time

LEVELS = (0.1, 0.2, 0.4, 0.8, 1.6)   # seconds between redraws
BUSY = 0.8                           # share of one core the class's redraws may take (the workers train on the rest)
SLOWEST = LEVELS[-1]
SPARE = 0.7                          # a page speeds up a level only when that level would leave 30% of BUSY spare


class Cadence:
    WINDOW = 2.0   # seconds between measurements of the process's CPU

    def __init__(self, cost: float = 0.02):
        self.cost = cost           # CPU seconds of the page process per redraw (running mean)
        self._lock = threading.Lock()
        self._redraws = 0
        self._mark = (time.monotonic(), time.process_time(), 0)

    def redrawn(self) -> None:
        """A page redrew its live charts; every WINDOW seconds the process's CPU per redraw updates the cost."""
        with self._lock:
            self._redraws += 1
            now, cpu = time.monotonic(), time.process_time()
            since, cpu_then, redraws_then = self._mark
            if now - since >= self.WINDOW and self._redraws - redraws_then >= 5:
                self.measured((cpu - cpu_then) / (self._redraws - redraws_then))
                self._mark = (now, cpu, self._redraws)

    def measured(self, seconds: float) -> None:
        """A redraw cost `seconds` of the page process's CPU."""
        self.cost += 0.3 * (min(seconds, 5.0) - self.cost)

    def wanted(self, playing: int) -> float:
        """The smallest level that keeps `playing` races' redraws within BUSY of a core."""
        need = max(playing, 1) * self.cost / BUSY
        return next((level for level in LEVELS if level >= need), SLOWEST)

    def interval(self, playing: int, current: float | None) -> float:
        """The interval a page should use now, given the one it has (`current`, None for a new page): slower at
        once when the class needs it; one level faster only when that level would keep the redraws within
        SPARE of BUSY (so a race or two more or less never flips it back and forth)."""
        wanted = self.wanted(playing)
        if current not in LEVELS or wanted >= current:
            return wanted
        faster = LEVELS[LEVELS.index(current) - 1]
        return faster if max(playing, 1) * self.cost / faster <= SPARE * BUSY else current

    def overloaded(self, playing: int) -> bool:
        """Even the slowest level cannot keep the redraws within BUSY: the page should say the class is full."""
        return max(playing, 1) * self.cost / BUSY > SLOWEST


CADENCE = Cadence()   # this server process's (every student's page shares the measured cost)
