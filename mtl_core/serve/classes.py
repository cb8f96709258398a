"""A class: one lesson played by many students, their runs pooled as seeds. It lives in the server's store
(store.py), so a restart loses no class, member, prediction or result.

    classes = Classes(store)
    opened = classes.open("mixtures", seed=0)                 # -> Opened(code="K7QX2M", key=<the teacher's secret>)
    member = classes.join(opened.code, token, "Ada", "10.0.0.7")   # -> Member(number=1, seed=0, ...)
    classes.predict(opened.code, token, 1)                    # the index of the student's answer
    classes.submit(opened.code, token, {"held": True, ...})   # the finished run's summary
    classes.dashboard(opened.code, opened.key)                # -> Dashboard (NotTeacher without the key)
    classes.reveal(opened.code, opened.key)                   # students then see the pooled result
    classes.pooled(opened.code, token)                        # -> Dashboard without names, once revealed

Who may see what: the dashboard, revealing and closing need the teacher's key, of which the store keeps
only a hash; a student sees the pooled result (no names, no one else's run) once the teacher reveals it.
Join codes are 6 characters of a 31-letter alphabet (887 million codes); a browser may fail to join
`FAILED_JOINS[0]` times and an address `FAILED_JOINS[1]` times in `FAILED_WINDOW` seconds. A class holds
at most `capacity` students and ends `hours` after it opened.

Student `n` (in join order, from 1) trains seed `seed + (n - 1) * stride`, where `stride` is how many seeds
one run of the lesson uses (5 for a sweep of 5 seeds, 1 for a race): the class together is a seed sweep.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from .store import Store

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ2345679"   # no 0/O, 1/I, 8/B look-alikes
CODE_LENGTH = 6
FAILED_JOINS = (5, 30)    # failed joins allowed per browser, per address, in FAILED_WINDOW
FAILED_WINDOW = 600.0     # seconds
CAPACITY = 60             # students a class holds at most
HOURS = 12.0              # a class ends this long after it opened
MAX_NAME = 24             # characters of a display name


class ClassError(ValueError):
    """A join, prediction or result that cannot be taken; the message says why and what to do."""


class NotTeacher(ClassError):
    """The teacher's key is missing or wrong."""


@dataclass(frozen=True)
class Opened:
    code: str
    key: str   # the teacher's secret: shown once, kept by the teacher's browser and link, stored hashed


@dataclass(frozen=True)
class Member:
    code: str
    lesson: str
    number: int
    seed: int
    name: str
    prediction: int | None
    finished: bool = False   # its result is in: the prediction is locked


@dataclass(frozen=True)
class Dashboard:
    """A class as its teacher (or, once revealed and without names, a student) sees it. `results`: one dict per
    finished student: number, name, seed, held, evidence, losses ({model: final test loss})."""

    code: str
    lesson: str
    seed: int
    joined: int
    predicted: int
    finished: int
    predictions: list[int]          # how many students chose each answer (by index)
    results: list[dict]
    revealed: bool
    closed: bool
    expires: float

    @property
    def held(self) -> int:
        return sum(bool(r["held"]) for r in self.results)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def clean_name(name: str) -> str:
    """A display name as kept: one line, printable, at most MAX_NAME characters (pages escape it when drawn)."""
    flat = " ".join(str(name).split())
    return "".join(ch for ch in flat if ch.isprintable())[:MAX_NAME]


class Classes:
    """The classes of one server, in its store."""

    def __init__(self, store: Store, capacity: int = CAPACITY, hours: float = HOURS):
        self.store, self.capacity, self.hours = store, capacity, hours

    # ---------------------------------------------------------------- the teacher

    def open(self, lesson: str, seed: int = 0, stride: int = 1, answers: int = 2) -> Opened:
        """A new class of `lesson` (a lesson's key) whose students' seeds start at `seed`."""
        key = secrets.token_urlsafe(24)
        now = time.time()
        with self.store.transaction() as sql:
            sql.execute("DELETE FROM classes WHERE expires < ?", (now - self.hours * 3600,))   # a day after they ended
            sql.execute("DELETE FROM members WHERE code NOT IN (SELECT code FROM classes)")
            while True:
                code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
                if sql.execute("SELECT 1 FROM classes WHERE code = ?", (code,)).fetchone() is None:
                    break
            sql.execute("INSERT INTO classes (code, key_hash, lesson, seed, stride, answers, opened, expires, revealed, closed) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)", (code, _hash(key), lesson, seed, stride, answers, now,
                                                                  now + self.hours * 3600))
        return Opened(code, key)

    def _teacher(self, sql, code: str, key: str) -> tuple:
        row = sql.execute("SELECT key_hash, lesson, seed, expires, revealed, closed, answers FROM classes WHERE code = ?",
                          (normal(code),)).fetchone()
        if row is None or not isinstance(key, str) or not hmac.compare_digest(row[0], _hash(key)):
            raise NotTeacher("Only the teacher who opened this class can see its dashboard: open the teacher link "
                             "the class page gave when the class was opened.")
        return row

    def dashboard(self, code: str, key: str) -> Dashboard:
        with self.store.reading() as sql:
            self._teacher(sql, code, key)
            return self._dashboard(sql, normal(code), names=True)

    def reveal(self, code: str, key: str, shown: bool = True) -> None:
        with self.store.transaction() as sql:
            self._teacher(sql, code, key)
            sql.execute("UPDATE classes SET revealed = ? WHERE code = ?", (int(shown), normal(code)))

    def close(self, code: str, key: str) -> None:
        """No one joins, predicts or submits any more; what was collected stays until the class expires."""
        with self.store.transaction() as sql:
            self._teacher(sql, code, key)
            sql.execute("UPDATE classes SET closed = 1 WHERE code = ?", (normal(code),))

    # ---------------------------------------------------------------- a student

    def join(self, code: str, token: str, name: str = "", address: str = "") -> Member:
        """This browser in the class (again, if it joined before: the same number and seed)."""
        code, now = normal(code), time.time()
        with self.store.transaction() as sql:
            since = now - FAILED_WINDOW
            failed = [sql.execute("SELECT count(*) FROM joins WHERE who = ? AND at > ?", (who, since)).fetchone()[0]
                      for who in (f"browser:{token}", f"address:{address}")]
            if failed[0] >= FAILED_JOINS[0] or (address and failed[1] >= FAILED_JOINS[1]):
                raise ClassError(f"Too many wrong class codes from here; wait {FAILED_WINDOW / 60:.0f} minutes, or ask your "
                                 "teacher for the join link.")
            row = sql.execute("SELECT lesson, seed, stride, expires, closed FROM classes WHERE code = ?", (code,)).fetchone()
            if row is None:   # a failed attempt counts: it is written, and said once the transaction is over
                sql.execute("DELETE FROM joins WHERE at < ?", (since,))
                for who in (f"browser:{token}", *([f"address:{address}"] if address else [])):
                    sql.execute("INSERT INTO joins (who, at) VALUES (?, ?)", (who, now))
            else:
                found = self._membership(sql, code, token, name, row, now)
        if row is None:
            raise ClassError(f"There is no class with the code {code or '(empty)'}: check it with your teacher "
                             f"({CODE_LENGTH} letters and digits).")
        lesson, seed, stride = row[:3]
        number, kept_name, prediction, finished = found
        return Member(code, lesson, number, seed + (number - 1) * stride, kept_name, prediction, bool(finished))

    def _membership(self, sql, code: str, token: str, name: str, row: tuple, now: float) -> tuple:
        """(number, name, prediction, finished) of this browser in the class, a new member if it has not joined before."""
        found = sql.execute("SELECT number, name, prediction, result IS NOT NULL FROM members WHERE code = ? AND token = ?",
                            (code, token)).fetchone()
        if found is not None:
            return found
        _, _, _, expires, closed = row
        if closed or expires < now:
            raise ClassError("This class has ended: ask your teacher for a new code.")
        joined = sql.execute("SELECT count(*) FROM members WHERE code = ?", (code,)).fetchone()[0]
        if joined >= self.capacity:
            raise ClassError(f"This class is full ({self.capacity} students); ask your teacher to open another one.")
        found = (joined + 1, clean_name(name), None, False)
        sql.execute("INSERT INTO members (code, token, number, name, joined) VALUES (?, ?, ?, ?, ?)", (code, token, *found[:2], now))
        return found

    def member(self, token: str) -> Member | None:
        """The class this browser joined last that has not ended, if any."""
        with self.store.reading() as sql:
            row = sql.execute("SELECT m.code, c.lesson, m.number, c.seed, c.stride, m.name, m.prediction, m.result IS NOT NULL "
                              "FROM members m "
                              "JOIN classes c ON c.code = m.code WHERE m.token = ? AND c.expires > ? AND c.closed = 0 "
                              "ORDER BY m.joined DESC LIMIT 1", (token, time.time())).fetchone()
        if row is None:
            return None
        code, lesson, number, seed, stride, name, prediction, finished = row
        return Member(code, lesson, number, seed + (number - 1) * stride, name, prediction, bool(finished))

    def predict(self, code: str, token: str, answer: int) -> None:
        with self.store.transaction() as sql:
            answers = self._open_to(sql, code, token)
            if not (isinstance(answer, int) and 0 <= answer < answers):
                raise ClassError(f"A prediction is one of the {answers} answers.")
            if sql.execute("SELECT result IS NOT NULL FROM members WHERE code = ? AND token = ?", (normal(code), token)).fetchone()[0]:
                raise ClassError("Your run has finished: a prediction is made before the run, so it stays as it was.")
            sql.execute("UPDATE members SET prediction = ?, predicted = ? WHERE code = ? AND token = ?",
                        (answer, time.time(), normal(code), token))

    def submit(self, code: str, token: str, result: dict) -> None:
        """The student's finished run: held (bool), evidence (text), seed, losses ({model: final test loss}); the
        latest replaces an earlier one."""
        summary = {"held": bool(result["held"]), "evidence": str(result["evidence"])[:500], "seed": int(result["seed"]),
                   "losses": {str(k)[:40]: float(v) for k, v in list(result["losses"].items())[:20]}}
        with self.store.transaction() as sql:
            self._open_to(sql, code, token)
            sql.execute("UPDATE members SET result = ?, finished = ? WHERE code = ? AND token = ?",
                        (json.dumps(summary), time.time(), normal(code), token))

    def _open_to(self, sql, code: str, token: str) -> int:
        """The class's number of answers, if it takes this member's input; else ClassError."""
        row = sql.execute("SELECT c.answers, c.closed, c.expires FROM classes c JOIN members m ON m.code = c.code "
                          "WHERE c.code = ? AND m.token = ?", (normal(code), token)).fetchone()
        if row is None:
            raise ClassError("Join the class first (its code is on your teacher's screen).")
        if row[1] or row[2] < time.time():
            raise ClassError("This class has ended; what you sent before it ended is kept.")
        return row[0]

    def pooled(self, code: str, token: str) -> Dashboard | None:
        """The class's pooled result, without names, for one of its students once the teacher revealed it."""
        with self.store.reading() as sql:
            row = sql.execute("SELECT c.revealed FROM classes c JOIN members m ON m.code = c.code WHERE c.code = ? AND m.token = ?",
                              (normal(code), token)).fetchone()
            if row is None or not row[0]:
                return None
            return self._dashboard(sql, normal(code), names=False)

    # ---------------------------------------------------------------- both

    def _dashboard(self, sql, code: str, names: bool) -> Dashboard:
        lesson, seed, answers, revealed, closed, expires = sql.execute(
            "SELECT lesson, seed, answers, revealed, closed, expires FROM classes WHERE code = ?", (code,)).fetchone()
        rows = sql.execute("SELECT number, name, prediction, result FROM members WHERE code = ? ORDER BY number", (code,)).fetchall()
        predictions = [0] * answers
        for _, _, prediction, _ in rows:
            if prediction is not None and 0 <= prediction < answers:
                predictions[prediction] += 1
        results = [{"number": number if names else None, "name": name if names else "", **json.loads(result)}
                   for number, name, _, result in rows if result is not None]
        return Dashboard(code, lesson, seed, len(rows), sum(p is not None for _, _, p, _ in rows), len(results), predictions,
                         results, bool(revealed), bool(closed), expires)


def normal(code: str) -> str:
    """A join code as typed (any case, spaces, dashes) in its stored form."""
    return "".join(ch for ch in str(code).upper() if ch.isalnum())[:2 * CODE_LENGTH]
