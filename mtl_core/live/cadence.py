"""How often each student's page redraws its live charts, so that one page process serves a whole class.

Every redraw costs the one page process some milliseconds (measured here, a running mean over all
students); with `playing` races the process then spends `playing * cost / interval` of a core on
redraws. The interval is chosen to keep that near `BUSY` of a core, and rounded up to one of a few
`LEVELS`, with hysteresis: a page only changes its interval (which costs it a full rerun) when the
class has grown or shrunk by about half, never on every race that starts or stops. (Changing it on
every start made every student's page rerun whole at once while a class arrived, and the class stalled.)
"""

from __future__ import annotations

import threading

LEVELS = (0.1, 0.2, 0.4, 0.8, 1.6)   # seconds between redraws
BUSY = 0.5                           # share of one core the class's redraws may take
SLOWEST = LEVELS[-1]


class Cadence:
    def __init__(self, cost: float = 0.015):
        self.cost = cost           # seconds a redraw takes the page process (running mean)
        self._lock = threading.Lock()

    def measured(self, seconds: float) -> None:
        """A redraw took `seconds` of the page process."""
        with self._lock:
            self.cost += 0.05 * (min(seconds, 5.0) - self.cost)

    def wanted(self, playing: int) -> float:
        """The smallest level that keeps `playing` races' redraws within BUSY of a core."""
        need = max(playing, 1) * self.cost / BUSY
        return next((level for level in LEVELS if level >= need), SLOWEST)

    def interval(self, playing: int, current: float | None) -> float:
        """The interval a page should use now, given the one it has (`current`, None for a new page): it moves
        only when the wanted level is two levels away, or one level away and slower is needed (a growing
        class slows down at once; a shrinking one speeds up only once it has halved)."""
        wanted = self.wanted(playing)
        if current not in LEVELS:
            return wanted
        step = LEVELS.index(wanted) - LEVELS.index(current)
        return wanted if step > 0 or step <= -2 else current

    def overloaded(self, playing: int) -> bool:
        """Even the slowest level cannot keep the redraws within BUSY: the page should say the class is full."""
        return max(playing, 1) * self.cost / BUSY > SLOWEST


CADENCE = Cadence()   # this server process's (every student's page shares the measured cost)
