"""Each browser's runs, kept so that a reload, another app process or a restart finds them again.

The app keys a `Locker` by a random per-browser token that it keeps in a cookie: never by anything in
a link, so a shared link cannot show one student's runs to another. What a browser made (its runs and
settings) lives in the durable store (store.py) and is read from it on demand; only the live race a
browser is playing lives in this process, and beyond `max_lockers` the least recently used browser's
race is let go (its runs stay in the store). Thread-safe (every student's page runs in its own thread).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterable

from .store import RunEntry, Store


class Locker:
    """One browser: its kept runs and settings (in the store) and the live race it is playing (here)."""

    def __init__(self, store: Store, token: str):
        self.store, self.token = store, token
        self.race: Any = None
        self._settings: dict | None = None   # the last settings read or written, so an unchanged write is skipped

    @property
    def settings(self) -> dict:
        """Read from the store every time: another app process may have written them since."""
        self._settings = self.store.settings(self.token)
        return dict(self._settings)

    @settings.setter
    def settings(self, value: dict) -> None:
        if value != self._settings:
            self.store.save_settings(self.token, value)
            self._settings = dict(value)

    def index(self) -> list[RunEntry]:
        """The kept runs without their tables, oldest first."""
        return self.store.index(self.token)

    def run(self, run_id: str) -> dict | None:
        return self.store.run(self.token, run_id)

    def dump(self) -> str:
        """Every kept run as a run file (JSON text, for a download)."""
        return self.store.dump(self.token)

    @property
    def dropped(self) -> int:
        """Runs let go because the locker was full (the page says so)."""
        return self.store.counts(self.token)[1]

    def file(self) -> tuple[str, bytes] | None:
        """The browser's own data file (name, bytes), or None."""
        return self.store.file(self.token)

    def keep_file(self, name: str, raw: bytes) -> None:
        self.store.keep_file(self.token, name, raw)

    def next_race(self) -> int:
        return self.store.next_race(self.token)

    def keep(self, records: Iterable[dict], update: bool = False) -> list[dict]:
        return self.store.keep(self.token, records, update)


class Shelf:
    def __init__(self, store: Store, max_lockers: int = 500):
        self.store, self.max_lockers = store, max_lockers
        self._lockers: OrderedDict[str, Locker] = OrderedDict()
        self._lock = threading.Lock()

    def locker(self, token: str) -> Locker:
        """The locker of a browser token (a new, empty one for a new token)."""
        with self._lock:
            locker = self._lockers.pop(token, None) or Locker(self.store, token)
            self._lockers[token] = locker  # most recently used last
            while len(self._lockers) > self.max_lockers:
                _, old = self._lockers.popitem(last=False)
                if old.race is not None and hasattr(old.race, "close"):
                    old.race.close()
            return locker

    def keep(self, token: str, records: Iterable[dict], update: bool = False) -> list[dict]:
        return self.locker(token).keep(records, update)

    def __len__(self) -> int:
        return len(self._lockers)
