"""Settings from a link (`?corr=0.2&arch=MMoE&arch=OMoE`, text parsed by each knob's type) and from a settings
file (JSON, which must already have the type), and settings back to a link. A value that does not fit
gets a `Notice`; a link locks knobs with `?hide=arch,corr`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .jsonfile import load_json
from .knob import KnobError, Notice, Settings, shorten
from .knobs import APP_KNOBS, KNOBS, defaults, with_preset
from .rules import apply

HIDE = "hide"    # link parameter that locks knobs: ?hide=arch,corr


def link_base(settings: Settings, given: Settings, allowed: Sequence[str]) -> Settings:
    """What a link starts from: the student's settings switched to the link's preset, with this page's
    knobs at that preset's defaults (a link is the whole experiment of its page)."""
    if "preset" not in allowed:  # a page without the preset knob: its knobs at the student's preset's defaults
        base = defaults(settings["preset"])
        return {**settings, **{name: base[name] for name in allowed}}
    preset = given.get("preset", "paper")
    base = defaults(preset)
    return {**with_preset(settings, preset), **{name: base[name] for name in allowed}}


@dataclass
class Reading:
    """What a link or a file said: the values that fit, the knobs it locks, and a notice per value dropped."""

    values: Settings = field(default_factory=dict)
    hidden: tuple[str, ...] = ()
    notices: list[Notice] = field(default_factory=list)


def read_link(query: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> Reading:
    """Typed values from link parameters (each key with all its values), for the knobs `allowed` on
    this page. Unknown keys, knobs of other pages, bad values and repeats get a notice."""
    reading = Reading()
    for key, texts in query.items():
        shown = shorten(", ".join(texts))
        if key == HIDE:
            locked = [k for t in texts for k in t.split(",") if k]
            unknown = [k for k in locked if k not in allowed]
            if unknown:
                reading.notices.append(Notice(HIDE, shorten(", ".join(unknown)), "only settings of this page can be locked"))
            reading.hidden = tuple(k for k in locked if k in allowed)
        elif key not in KNOBS:
            reading.notices.append(Notice(shorten(key), shown, "there is no setting of that name in this app"))
        elif key not in allowed:
            reading.notices.append(Notice(key, shown, f"{KNOBS[key].label} is not a setting of this page"))
        else:
            try:
                reading.values[key] = KNOBS[key].parse(list(texts))
            except KnobError as error:
                reading.notices.append(Notice(key, shown, f"{KNOBS[key].label} {error}"))
    return reading


def follow_link(settings: Settings, query: Mapping[str, Sequence[str]], allowed: Sequence[str],
                implied: Settings | None = None) -> tuple[Settings, tuple[str, ...], list[Notice]]:
    """What opening a link does to `settings`: its values on the page's base (`link_base`), after the rules
    between knobs; with the knobs it locks and a notice per value not used."""
    reading = read_link(query, allowed)
    merged, dropped = apply(link_base(settings, reading.values, allowed), reading.values, implied=implied)
    return merged, reading.hidden, reading.notices + dropped


MAX_SETTINGS_FILE = 16_384   # bytes; a full settings file is under 1 KB


def read_file(text: str | bytes) -> Settings:
    """Typed values from a settings file (a JSON object of knob names and values), see `check_values`."""
    return check_values(load_json(text, MAX_SETTINGS_FILE, "settings"))


def check_values(values: Any) -> Settings:
    """Typed values from a mapping of knob names and JSON values (a settings file, or the settings a run record
    carries); ValueError naming every bad entry and what is allowed. Taken whole or not at all."""
    if not isinstance(values, dict):
        raise ValueError("Settings are a JSON object of setting names and values, e.g. {\"corr\": 0.2}.")
    problems, good, unknown = [], {}, []
    for key, value in values.items():
        if key not in APP_KNOBS:
            unknown.append(key)
            continue
        try:
            good[key] = KNOBS[key].check(value)
        except KnobError as error:
            problems.append(f"'{key}': {shorten(json.dumps(value)[:200])} is not allowed; {KNOBS[key].label} {error}")
    if unknown:
        more = f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
        problems.insert(0, f"not settings: {shorten(', '.join(map(repr, unknown[:5])))}{more} (known: {', '.join(APP_KNOBS)})")
    if len(problems) > 6:
        problems[6:] = [f"and {len(problems) - 6} more problems"]
    if problems:
        raise ValueError("; ".join(problems) + ".")
    return good


def to_link(settings: Settings, allowed: Sequence[str]) -> dict[str, list[str]]:
    """Link parameters for the knobs `allowed` that apply and differ from their preset's default (and the preset
    itself unless it is the default one)."""
    base = {**defaults(settings["preset"]), "preset": KNOBS["preset"].default}
    return {name: KNOBS[name].to_link(settings[name]) for name in allowed
            if KNOBS[name].applies(settings) and settings[name] != base[name]}
