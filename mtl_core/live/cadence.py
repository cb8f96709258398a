"""How often each student's page redraws its live charts, so that one page process serves a whole class.

Every redraw costs the one page process some milliseconds of CPU. The cost is measured the way the
process pays it: its whole CPU time (`time.process_time`: Streamlit's own work to send a redraw, the
other pages and the health checks included) over the redraws it served, in windows of two seconds;
the cost is the median of the last ten windows (the first ten being `cost`, 20 ms, what a redraw cost
here), so a burst shorter than ten seconds (a class arriving: every student's first full page run) does
not move it; that matters, since a page picks its interval when it opens and presses Play. (Timing only a redraw's own code missed most of the cost: the
intervals it chose saturated the process and the class stalled.) With `playing` races the process
then spends `playing * REDRAWS * cost / interval` of a core on redraws (the curves every interval, the
inside view every fifth); a page's interval is the fastest of `LEVELS` that keeps that within `BUSY`.

A page picks its interval when it runs in full (it opens, Play or another button is pressed, a knob
changes, a race finishes) and keeps it while it plays. It plans for the races the server holds, playing
or not (`Backend.held`), not for those playing at that moment: a class that arrives at once presses Play
while few races play yet. It never runs in full from a live redraw to plan again: under a burst such a
full run could end without registering the page's timed redraw again, and the browser, which drops its
timers when a full run starts, then redrew nothing more (1 to 5 of 30 students in a run of 90 s,
2026-12-06, bench.load's protocol students; the race then paused itself for want of redraws). Without
it, 30 students on a 2-core server got at least 0.6 updates/s each on a fresh server and 1.2 on a warm
one. Streamlit never starts a page's timed redraw while its previous one runs: the requests that arrive
meanwhile fold into one.

Several app processes on one machine (`python -m mtl_core serve --processes N`, which sets
MTL_APP_PROCESSES) share its cores: together their redraws may take what one process's would, or half
the machine's cores where that is more, so each gets `BUSY * min(1, cores / (2 N))` (`share`). Without
that, two processes on two cores each planned for 0.8 of a core they could not get (30 students over
them got no update at all, measured with that benchmark).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import deque

from ..serve import environment

LEVELS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.2, 1.6)   # seconds between redraws
BUSY = 0.8                           # share of one core the class's redraws may take (the workers train on the rest)
REDRAWS = 1.2                        # redraws per interval: the curves each time, the inside view every fifth
SLOWEST = LEVELS[-1]


class Cadence:
    WINDOW = 2.0   # seconds between measurements of the process's CPU

    def __init__(self, cost: float = 0.02, busy: float | None = None):
        self._busy = busy   # share of a core this process's redraws may take; None: `share` of this machine, on first use
        self._samples = deque([cost] * 10, maxlen=10)   # CPU seconds of the page process per redraw, per window
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
        """In the last window a redraw cost `seconds` of the page process's CPU."""
        self._samples.append(seconds)

    @property
    def busy(self) -> float:
        """ConfigError for a bad MTL_APP_PROCESSES (the page shows it)."""
        if self._busy is None:
            self._busy = share(environment.app_processes(), os.cpu_count() or 1)
        return self._busy

    @property
    def cost(self) -> float:
        """CPU seconds of the page process per redraw: the median of the last windows."""
        return statistics.median(self._samples)

    def wanted(self, playing: int) -> float:
        """The smallest level that keeps `playing` races' redraws within `busy` of a core."""
        need = max(playing, 1) * REDRAWS * self.cost / self.busy
        return next((level for level in LEVELS if level >= need), SLOWEST)

    def overloaded(self, playing: int) -> bool:
        """Even the slowest level cannot keep the redraws within `busy`: the page should say the class is full."""
        return max(playing, 1) * REDRAWS * self.cost / self.busy > SLOWEST


def share(processes: int, cores: int) -> float:
    """The share of a core each of `processes` app processes on `cores` cores may spend on redraws."""
    return BUSY * min(1.0, cores / (2 * processes))


CADENCE = Cadence()   # this server process's (every student's page shares the measured cost)
