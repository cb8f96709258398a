"""The rules between knobs, applied to settings from every source alike: a task named binary must exist, a
task cannot be both dense and sparse, a funnel model needs funnel data, and a value given for a knob
that has no effect with the other settings is a mistake (a notice; the knob keeps its value).
"""

from __future__ import annotations

import json

from ..models.registry import BY_LABEL, FUNNEL_ARCHS
from .knob import link_text, Notice, Settings
from .knobs import KNOBS, defaults, funnel

def apply(settings: Settings, given: Settings, explicit: bool = True, implied: Settings | None = None
          ) -> tuple[Settings, list[Notice]]:
    """`settings` with `given` values on top, after the rules between knobs. With `explicit` (a link
    or a file said so), a value for a knob that has no effect with the other settings (and the
    `implied` ones a page fixes) is a mistake: it gets a notice and the knob keeps its previous value."""
    merged = {**settings, **given}
    notices = []
    for name in ("dense", "sparse"):
        missing = [k for k in merged[name] if k >= merged["tasks"]]
        if missing:
            notices.append(Notice(name, ", ".join(map(str, missing)),
                                  f"there is no such task with {merged['tasks']} task(s) (tasks are numbered 0 to {merged['tasks'] - 1})"))
            merged[name] = tuple(k for k in merged[name] if k < merged["tasks"])
    funnel_only = [a for a in merged["arch"] if BY_LABEL[a] in FUNNEL_ARCHS]
    if funnel_only and not funnel(merged):
        notices.append(Notice("arch", ", ".join(funnel_only), "models a click -> conversion funnel: choose data = funnel for it"))
        merged["arch"] = tuple(a for a in merged["arch"] if a not in funnel_only)
    both = sorted(set(merged["dense"]) & set(merged["sparse"]))
    if both:
        notices.append(Notice("sparse", ", ".join(map(str, both)), "a task cannot be both dense and sparse; kept as dense"))
        merged["sparse"] = tuple(k for k in merged["sparse"] if k not in both)
    if explicit:
        base = defaults(merged["preset"])
        for name in given:
            knob = KNOBS[name]
            if not knob.applies({**merged, **(implied or {})}) and given[name] != base[name]:
                notices.append(Notice(name, link_text(given[name]) if not knob.multi else ", ".join(knob.to_link(given[name])),
                                      f"{knob.label} {knob.when_text}"))
                merged[name] = settings[name]
    return merged, notices


def restart_key(settings: Settings) -> str:
    """What a race depends on: the knobs that are not live (a change restarts the race)."""
    return json.dumps({name: value for name, value in settings.items() if not KNOBS[name].live}, sort_keys=True)
