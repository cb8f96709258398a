"""Each browser's runs, kept by the server so that a reload finds them again.

The app keys a `Locker` by a random per-browser token that it keeps in a cookie: never by anything in
a link, so a shared link cannot show one student's runs to another. The shelf is bounded: a locker
keeps its newest `max_runs` runs, lockers unused for `idle_seconds` are emptied, and beyond
`max_lockers` the least recently used goes first. Thread-safe (every student's page runs in its own
thread of one server process).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

from .records import add_records


@dataclass
class Locker:
    """One browser's kept runs (records, newest last), its settings and the live race it was playing, if any."""

    runs: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    race: Any = None
    dropped: int = 0       # runs let go because the locker was full (the page says so)
    races: int = 0         # races started, to name their runs
    used: float = field(default_factory=time.monotonic)

    def keep(self, records: Iterable[dict], max_runs: int, update: bool = False) -> list[dict]:
        """Add records; beyond `max_runs` the oldest go. A record whose id is taken gets a new id, or,
        with `update` (the same live run archived again), replaces the one it updates. Returns the added."""
        records = list(records)
        if update:
            ids = {r["id"] for r in records}
            self.runs[:] = [r for r in self.runs if r["id"] not in ids]
        added = add_records(self.runs, records)
        extra = len(self.runs) - max_runs
        if extra > 0:
            del self.runs[:extra]
            self.dropped += extra
        return added


class Shelf:
    def __init__(self, max_lockers: int = 500, max_runs: int = 60, idle_seconds: float = 12 * 3600):
        self.max_lockers, self.max_runs, self.idle_seconds = max_lockers, max_runs, idle_seconds
        self._lockers: OrderedDict[str, Locker] = OrderedDict()
        self._lock = threading.Lock()

    def locker(self, token: str) -> Locker:
        """The locker of a browser token (a new, empty one for a new token)."""
        now = time.monotonic()
        with self._lock:
            for stale in [t for t, locker in self._lockers.items() if now - locker.used > self.idle_seconds]:
                self._release(stale)
            locker = self._lockers.pop(token, None) or Locker()
            locker.used = now
            self._lockers[token] = locker  # most recently used last
            while len(self._lockers) > self.max_lockers:
                self._release(next(iter(self._lockers)))
            return locker

    def keep(self, token: str, records: Iterable[dict], update: bool = False) -> list[dict]:
        locker = self.locker(token)
        with self._lock:
            return locker.keep(records, self.max_runs, update)

    def _release(self, token: str) -> None:
        locker = self._lockers.pop(token)
        if locker.race is not None and hasattr(locker.race, "close"):
            locker.race.close()

    def __len__(self) -> int:
        return len(self._lockers)
