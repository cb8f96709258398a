"""One setting, typed: its kind, its range or options, when it has an effect, and how a value of it is
checked, read from a link and written back to one. The table of every setting is knobs.py.

A value that does not fit is never used: it is dropped with a `Notice` that names the knob, the value
(shortened) and what is allowed, and the knob keeps its previous value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

Settings = dict[str, Any]
MAX_TEXT = 40          # longest link value we parse (a 10,000-digit number is refused before any conversion)
SHOWN = 40             # characters of a bad value echoed back in a notice
COMMAND_LINE = "command line"   # the section of knobs without a widget: settings only the command line gives
OWN_FILE = "own file"           # the knobs of a user's own data file: the Data page draws them from the file's columns


@dataclass(frozen=True)
class Notice:
    """A value that was not used: which knob, the value as given (shortened), and why."""

    knob: str
    value: str
    problem: str

    def text(self) -> str:
        return f"{self.knob} = {self.value}: {self.problem}"


@dataclass(frozen=True)
class Knob:
    """One setting. `kind` is the type of a value (of each item when `multi`); a knob has either a
    range (`low`..`high`) or a list of `options` (a command-line knob may have neither). A `multi` knob's value
    is a set of items (a multiselect), a `sequence` knob's an ordered list whose items may repeat (layer sizes,
    ranks, per-task rates: command-line knobs only). `when` says when the knob has an effect (it is hidden
    otherwise, and a value given for it by a link or file gets a notice); `live` knobs apply while
    training, the others restart the race. A knob with a `flag` is also that option of the command line,
    with this default and help; there the configs' own limits apply instead of the range, which is the
    classroom's (a link reaches a shared server, the command line runs on the user's own machine)."""

    name: str
    label: str
    section: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: tuple = ()
    multi: bool = False
    sequence: bool = False
    live: bool = False
    help: str = ""
    when: Callable[[Settings], bool] | None = None
    when_text: str = ""
    flag: str = ""   # its option on the command line (`python -m mtl_core train`), where the CLI shares it

    @property
    def widget(self) -> str | None:
        """toggle, multiselect, select_slider (numeric options), selectbox, slider (float) or number (int); None for
        a knob of the command line alone, or of an own file (its options are the file's columns)."""
        if self.section in (COMMAND_LINE, OWN_FILE):
            return None
        if self.kind is bool:
            return "toggle"
        if self.multi:
            return "multiselect"
        if self.options:
            return "selectbox" if self.kind is str else "select_slider"
        return "slider" if self.kind is float else "number"

    def applies(self, settings: Settings) -> bool:
        return self.when is None or self.when(settings)

    def allowed(self) -> str:
        """What a value must be, in words."""
        if self.kind is bool:
            return "true or false"
        if self.options:
            what = f"one of {', '.join(map(link_text, self.options))}"
        elif self.kind is str:
            what = f"a text of at most {MAX_TEXT} characters"
        elif self.low is None:
            what = "a whole number" if self.kind is int else "a number"
        elif self.kind is int:
            what = f"a whole number from {int(self.low):,} to {int(self.high):,}"
        else:
            what = f"a number from {self.low:g} to {self.high:g}"
        if self.sequence:
            return f"a list, each item {what}"
        return f"a list, each item {what}, without repeats" if self.multi else what

    def check(self, value: Any, limits: bool = True) -> Any:
        """`value` if it has this knob's type and (with `limits`) its range or options, else KnobError. Lists
        become tuples. Without `limits` (the command line, on the user's own machine) only a text's options
        apply; the configs check the rest."""
        if self.multi or self.sequence:
            if not isinstance(value, (list, tuple)):
                raise KnobError(f"must be {self.allowed()}")
            items = tuple(self._check_one(v, limits) for v in value)
            if self.multi and len(set(items)) != len(items):
                raise KnobError("repeats an item")
            return items
        return self._check_one(value, limits)

    def _check_one(self, value: Any, limits: bool = True) -> Any:
        ok = {bool: lambda v: type(v) is bool,
              int: lambda v: type(v) is int,
              float: lambda v: type(v) in (int, float) and math.isfinite(v),
              str: lambda v: type(v) is str}[self.kind](value)
        if ok and self.kind is float:
            value = float(value)
        if ok and self.options and (limits or self.kind is str):
            ok = value in self.options
        elif ok and self.low is not None and limits:
            ok = self.low <= value <= self.high
        if not ok:
            raise KnobError(f"must be {self.allowed()}")
        return value

    def parse(self, texts: Sequence[str]) -> Any:
        """The value of link parameters (every occurrence of the key), or KnobError."""
        listed = self.multi or self.sequence
        if not listed and len(texts) != 1:
            raise KnobError(f"is given {len(texts)} times; give it once")
        values = [self._parse_one(t) for t in texts]
        return self.check(values if listed else values[0])

    def _parse_one(self, text: str) -> Any:
        if len(text) > MAX_TEXT:
            raise KnobError(f"is too long; it must be {self.allowed()}")
        if self.kind is bool:
            if text.lower() not in ("true", "false"):
                raise KnobError("must be true or false (not 0, 1, yes or empty)")
            return text.lower() == "true"
        if self.kind is int:
            if not INTEGER.fullmatch(text):
                raise KnobError(f"must be {self.allowed()}")
            return int(text)
        if self.kind is float:
            number = FLOAT.fullmatch(text)
            if not number or not math.isfinite(float(text)):
                raise KnobError(f"must be {self.allowed()}")
            if float(text) == 0 and re.search("[1-9]", number.group(1)):   # 1e-400 would silently become 0.0
                raise KnobError(f"is too small to tell from 0; write 0, or {self.allowed()}")
            return float(text)
        return text

    def to_link(self, value: Any) -> list[str]:
        """Link texts for a value (one per item of a list)."""
        return [link_text(v) for v in value] if self.multi or self.sequence else [link_text(value)]


# Link numbers in ASCII digits only: Python's \d and int() also take other scripts' digits ("３" would be 3).
INTEGER = re.compile(r"[+-]?[0-9]+")
FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


class KnobError(ValueError):
    """A value does not fit its knob; the message says what is allowed."""


def link_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def shorten(text: str, limit: int = SHOWN) -> str:
    """A user's text, one line and at most `limit` characters (for echoing it back)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
