"""Every setting a student can turn, as one typed table: the widgets, the link check, settings files,
the lesson presets and the configs are all derived from it.

A setting arrives from three places, and each is checked here the same way:
  a link        `?corr=0.2&arch=MMoE&arch=OMoE` (text, parsed by the knob's type)
  a file        `{"corr": 0.2, "arch": ["MMoE", "OMoE"]}` (JSON, which must already have the type)
  a widget      (the page writes what the student chose)
A value that does not fit is never used: it is dropped with a `Notice` that names the knob, the value
(shortened) and what is allowed, and the knob keeps its previous value. Rules between knobs (`apply`)
are applied to every source alike. Nothing here imports Streamlit; the pages draw the widgets, and
builders.py turns the values into the library's configs.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .census import CensusConfig
from .claims import claim
from .funnel import FunnelConfig
from .jsonfile import load_json
from .device import DEVICES
from .models.registry import BY_LABEL, FUNNEL_ARCHS, REGISTRY, SWITCHES
from .weighting import GRADNORM_ALPHA, WEIGHTINGS

Settings = dict[str, Any]

SAMPLES = (2_000, 5_000, 10_000, 20_000, 50_000)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
HIDDEN = (2, 4, 8, 16, 32, 64, 128)
TOWERS = (4, 8, 16, 32)
SWEEP_CORRELATIONS = (0.0, 0.2, 0.5, 0.75, 0.9, 1.0)
BATCHES = (64, 128, 256, 512, 1024)
MAX_TASKS = 8
PRESENT = "present"   # the presentation layout's knob (app.py folds the sidebar when a link sets it)
MAX_TEXT = 40          # longest link value we parse (a 10,000-digit number is refused before any conversion)
SHOWN = 40             # characters of a bad value echoed back in a notice


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
    range (`low`..`high`) or a list of `options`. `when` says when the knob has an effect (it is hidden
    otherwise, and a value given for it by a link or file gets a notice); `live` knobs apply while
    training, the others restart the race."""

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
    live: bool = False
    help: str = ""
    when: Callable[[Settings], bool] | None = None
    when_text: str = ""

    @property
    def widget(self) -> str:
        """toggle, multiselect, select_slider (numeric options), selectbox, slider (float) or number (int)."""
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
            what = f"one of {', '.join(map(_text, self.options))}"
        elif self.kind is int:
            what = f"a whole number from {int(self.low):,} to {int(self.high):,}"
        else:
            what = f"a number from {self.low:g} to {self.high:g}"
        return f"a list, each item {what}, without repeats" if self.multi else what

    def check(self, value: Any) -> Any:
        """`value` if it has this knob's type and range, else KnobError. Lists become tuples."""
        if self.multi:
            if not isinstance(value, (list, tuple)):
                raise KnobError(f"must be {self.allowed()}")
            items = tuple(self._check_one(v) for v in value)
            if len(set(items)) != len(items):
                raise KnobError("repeats an item")
            return items
        return self._check_one(value)

    def _check_one(self, value: Any) -> Any:
        ok = {bool: lambda v: type(v) is bool,
              int: lambda v: type(v) is int,
              float: lambda v: type(v) in (int, float) and math.isfinite(v),
              str: lambda v: type(v) is str}[self.kind](value)
        if ok and self.kind is float:
            value = float(value)
        if ok and self.options:
            ok = value in self.options
        elif ok and self.low is not None:
            ok = self.low <= value <= self.high
        if not ok:
            raise KnobError(f"must be {self.allowed()}")
        return value

    def parse(self, texts: Sequence[str]) -> Any:
        """The value of link parameters (every occurrence of the key), or KnobError."""
        if not self.multi and len(texts) != 1:
            raise KnobError(f"is given {len(texts)} times; give it once")
        values = [self._parse_one(t) for t in texts]
        return self.check(values if self.multi else values[0])

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
        return [_text(v) for v in value] if self.multi else [_text(value)]


# Link numbers in ASCII digits only: Python's \d and int() also take other scripts' digits ("３" would be 3).
INTEGER = re.compile(r"[+-]?[0-9]+")
FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


class KnobError(ValueError):
    """A value does not fit its knob; the message says what is allowed."""


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def shorten(text: str, limit: int = SHOWN) -> str:
    """A user's text, one line and at most `limit` characters (for echoing it back)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


SOURCES = ("synthetic", "census-income:1", "census-income:2", "funnel")


SYNTHETIC_ONLY = "applies only to synthetic data"


GATED = tuple(a.label for a in REGISTRY.values() if a.gates)                    # architectures whose gates learn
INPUT_GATED = tuple(a.label for a in REGISTRY.values() if a.gates == "input")   # ... computed from the input
PLAIN_LABELS = tuple(label for label, name in BY_LABEL.items() if name not in FUNNEL_ARCHS)   # those that need no funnel
GATED_ONLY = f"only matters for architectures whose gates learn ({', '.join(GATED)})"


def _gated(s: Settings) -> bool:
    return any(a in GATED for a in s["arch"])


def _input_gated(s: Settings) -> bool:
    """Some architecture's gates are computed from the input (Cross-Stitch's are learned constants)."""
    return any(a in INPUT_GATED for a in s["arch"])


def _owners(knob: str) -> tuple[str, ...]:
    """The labels of the architectures a knob matters for alone (their registry entries name it)."""
    return tuple(a.label for a in REGISTRY.values() if knob in a.own_knobs)


def _for_owners(knob: str) -> dict:
    """`when` and `when_text` of a knob that matters only for the architectures that name it."""
    owners = _owners(knob)
    return dict(when=lambda s: any(a in owners for a in s["arch"]),
                when_text=f"only matters for {' and '.join(owners)}, which is not among the architectures")


def task_count(s: Settings) -> int:
    """How many tasks the settings' data has (census income and the funnel have a fixed number)."""
    if synthetic(s):
        return s["tasks"]
    return (FunnelConfig if funnel(s) else CensusConfig).tasks


def synthetic(s: Settings) -> bool:
    return s["source"] == "synthetic"


def funnel(s: Settings) -> bool:
    return s["source"] == "funnel"


# A preset sets several knobs at once (`?preset=lesson`); the knobs it does not name keep the table's defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},   # the MMoE paper's generator and model (c = 1, m = 10, 8 experts of 16, towers of 8), smaller data
    # where MMoE's lead shows on one run (docs/EXPERIMENTS.md, section 5): more, narrower experts, less data
    "lesson": {"experts": 16, "hidden": 8, "samples": 20_000, "epochs": 20},
}

KNOBS: dict[str, Knob] = {k.name: k for k in (
    # tasks: the synthetic generator (data.py)
    Knob("preset", "preset", "tasks", str, "paper", options=tuple(PRESETS),
         help="Sets the task difficulty, sizes and training together: 'paper' is the MMoE paper's setting, 'lesson' one where "
              "MMoE's lead over the other models shows on a single run (see the lessons); not every finding of the paper "
              "shows there (the Correlation sweep page says which)."),
    Knob("source", "data", "tasks", str, "synthetic", options=SOURCES,
         help="Synthetic tasks from the MMoE paper's generator, the paper's real benchmark: census income, task group 1 "
              "(income > $50K; never married) or group 2 (college degree; never married), or a click -> conversion funnel "
              "(impressions, clicks, conversions only after a click: ESMM's setting)."),
    Knob("tasks", "tasks", "tasks", int, 2, 1, MAX_TASKS, help="How many tasks the network learns at once.",
         when=synthetic, when_text=SYNTHETIC_ONLY),
    Knob("corr", "task correlation p", "tasks", float, 0.5, -1.0, 1.0, 0.05, when=lambda s: synthetic(s) or funnel(s),
         when_text="applies only to synthetic data and the funnel",
         help="Cosine between the tasks' weight vectors (within a group when groups are on); in the funnel, between the "
              "click's and the conversion's."),
    *(Knob(name, label, "tasks", float, default, options=options, when=funnel, when_text="applies only to the funnel", help=text)
      for name, label, default, options, text in (
          ("ctr", "click rate", 0.05, (0.01, 0.02, 0.05, 0.1, 0.2), "Share of impressions that are clicked."),
          ("cvr", "conversion rate of clicks", 0.1, (0.02, 0.05, 0.1, 0.2, 0.3), "Share of clicked impressions that convert."),
          ("selection", "how strongly clicks follow the features", 2.0, (0.0, 0.5, 1.0, 2.0, 3.0),
           "0 = random clicks; larger = the clicked impressions sit further along the click's direction in feature space."),
          ("bias", "hidden intent (selection bias)", 1.0, (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
           "An intent no model sees raises both the click and the conversion: clicked impressions then convert more than "
           "their features say. 0 = no sample selection bias."))),
    Knob("groups", "two task groups", "tasks", bool, False, when=lambda s: synthetic(s) and s["tasks"] >= 2,
         when_text="needs at least two synthetic tasks",
         help="Split the tasks into two halves: p within a group, the value below between groups."),
    Knob("between", "correlation between groups", "tasks", float, 0.0, -1.0, 1.0, 0.05,
         when=lambda s: synthetic(s) and s["groups"] and s["tasks"] >= 2, when_text="applies only with two synthetic task groups"),
    Knob("dense", "binary tasks, dense (50% positive)", "tasks", int, (), 0, MAX_TASKS - 1, multi=True,
         when=synthetic, when_text=SYNTHETIC_ONLY, help="Task numbers that become binary tasks with half positives."),
    Knob("sparse", "binary tasks, sparse", "tasks", int, (), 0, MAX_TASKS - 1, multi=True,
         when=synthetic, when_text=SYNTHETIC_ONLY, help="Task numbers that become binary tasks with few positives (the rate below)."),
    Knob("rate", "sparse positive rate", "tasks", float, 0.05, 0.01, 0.5, 0.01,
         when=lambda s: synthetic(s) and bool(s["sparse"]), when_text="applies only when some synthetic task is sparse"),
    Knob("samples", "training samples", "tasks", int, 10_000, options=SAMPLES,
         help="Training rows. For census income: the first rows of a fixed shuffle of its 199,523 training rows."),
    Knob("noise", "label noise (std)", "tasks", float, 0.1, 0.0, 1.0, 0.05, when=synthetic, when_text=SYNTHETIC_ONLY),
    Knob("scale", "weight scale c (task difficulty)", "tasks", float, 1.0, 0.5, 5.0, 0.5, when=synthetic, when_text=SYNTHETIC_ONLY,
         help="Length c of the tasks' weight vectors: larger c bends the labels more (the sinusoids turn faster)."),
    Knob("sinusoids", "sinusoids m", "tasks", int, 10, 0, 50, when=synthetic, when_text=SYNTHETIC_ONLY,
         help="How many sinusoids bend every label; 0 makes the tasks linear."),
    Knob("seed", "seed", "tasks", int, 0, 0, 1_000_000, help="Seeds the synthetic data, the initial weights and the batch order (census rows never change)."),
    # models (models/)
    Knob("arch", "architectures", "models", str, ("Shared-Bottom", "MMoE"), options=tuple(BY_LABEL), multi=True),
    Knob("experts", "shared experts", "models", int, 8, 1, 32),
    Knob("hidden", "units per expert", "models", int, 16, options=HIDDEN),
    Knob("tower", "units per tower", "models", int, 8, options=TOWERS),
    *(Knob(switch.knob, switch.label, "models", bool, True, **_for_owners(switch.knob)) for switch in SWITCHES),
    Knob("alpha", "L2 pull alpha", "models", float, 0.01, options=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), **_for_owners("alpha"),
         help="How strongly L2-Constrained pulls the task columns' weights together (0 would be single-task models)."),
    Knob("rank", "Tucker rank", "models", int, 8, options=(2, 4, 8, 16, 32, 64), **_for_owners("rank"),
         help="Tensor-Factorization's rank over the inputs and over the outputs of each layer (its rank over tasks is 2; "
              "the CLI's --tucker-ranks sets all three)."),
    # gate tricks and loss weighting (models/gates.py, weighting.py): the practitioner's toolbox
    *(Knob(name, label, "tricks", kind, default, options=options, when=_gated, when_text=GATED_ONLY, help=text)
      for name, label, kind, default, options, text in (
          ("temp", "gate softmax temperature", float, 1.0, (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0),
           "The gates' logits are divided by it before the softmax: above 1 the weights move closer together, below 1 "
           "further apart (towards one expert per gate)."),
          ("gdrop", "gate dropout", float, 0.0, (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
           "While training, each expert a gate sees is dropped with this probability and the gate renormalised over the "
           "rest: " + claim("gate-dropout").text()),
          ("gln", "LayerNorm in the gates", bool, False, (),
           "Standardise each gate's logits over its experts before the softmax, so their scale cannot run away."))),
    Knob("ginit", "gate init scale", "tricks", float, 1.0, options=(0.0, 0.01, 0.1, 1.0, 3.0, 10.0), when=_input_gated,
         when_text=f"only matters for gates computed from the input ({', '.join(INPUT_GATED)}; Cross-Stitch's gates "
                   "always start near the identity)",
         help="The gates' initial weights times this (0 = every gate starts uniform over its experts)."),
    Knob("freeze", "freeze gates after step", "tricks", int, 0, 0, 100_000, when=_gated, when_text=GATED_ONLY,
         help="From this step on the gates stop learning and the experts train under fixed routing (0 = never)."),
    Knob("shared_in", "shared input layer (units)", "tricks", int, 0, options=(0, 8, 16, 32, 64, 128),
         help="A shared ReLU layer between the input and the experts, this wide (0 = none): every task trains it."),
    Knob("weighting", "loss weighting", "tricks", str, "equal", options=WEIGHTINGS, when=lambda s: task_count(s) >= 2,
         when_text="needs at least two tasks (one task's loss has nothing to be weighed against)",
         help="How the tasks' losses become one update: equal, fixed (task 0's weight below), uncertainty (Kendall et al.), "
              "gradnorm (Chen et al.), dwa (Liu et al.) or pcgrad (Yu et al.). Inside the experts charts the weights."),
    Knob("tw", "weight on task 0's loss", "tricks", float, 1.0, options=(0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0),
         when=lambda s: s["weighting"] == "fixed", when_text="applies only with the fixed weighting",
         help="With the fixed weighting: task 0's loss is multiplied by this, every other task's by 1."),
    Knob("gn_alpha", "GradNorm alpha", "tricks", float, GRADNORM_ALPHA, options=(0.12, 0.5, 1.0, 1.5, 3.0),
         when=lambda s: s["weighting"] == "gradnorm", when_text="applies only with the gradnorm weighting",
         help="How strongly GradNorm favours the tasks that learn slower (0 = equal gradient norms)."),
    # training (training.py)
    Knob("lr", "learning rate", "training", float, 1e-3, options=LEARNING_RATES, live=True),
    Knob("epochs", "epochs", "training", int, 10, 1, 200),
    Knob("batch", "batch size", "training", int, 256, options=BATCHES),
    Knob("device", "device", "training", str, "auto", options=DEVICES),
    # how the Playground is laid out (pages/playground.py)
    Knob(PRESENT, "presentation layout", "view", bool, False, live=True,
         help="For a projector (1280 x 720 and up): the loss curves and the gates side by side on the first screen, the "
              "buttons in one row, the page's explanations behind 'About these charts', the sidebar folded when a link "
              "opens the page. A teacher can add &present=true to a lesson link."),
    # a study of many runs (the Correlation sweep page)
    Knob("sweep_arch", "architectures", "sweep", str, ("Shared-Bottom", "OMoE", "MMoE"), options=PLAIN_LABELS, multi=True),
    Knob("sweep_corr", "correlations p", "sweep", float, (1.0, 0.5, 0.2), options=SWEEP_CORRELATIONS, multi=True),
    Knob("transfer_arch", "architecture", "transfer", str, "MMoE", options=PLAIN_LABELS,
         help="The model trained on all tasks, without each task in turn, and beside single-task models."),
    Knob("seeds", "seeds per setting", "sweep", int, 3, 1, 30,
         help="Every seed draws new data (weights, sinusoids, samples) and new initial weights."),
)}
SECTIONS = ("tasks", "models", "tricks", "training", "view")   # the Playground's (the sweep's knobs are on the Correlation sweep page)
HIDE = "hide"    # link parameter that locks knobs: ?hide=arch,corr
# The knobs each page draws (and so reads from a link); the pages group them under headers.
PAGE_KNOBS = {
    "data": tuple(n for n, k in KNOBS.items() if k.section == "tasks"),
    "playground": tuple(n for n, k in KNOBS.items() if k.section in SECTIONS),
    "sweep": ("preset", "experts", "hidden", "samples", "epochs", "sweep_arch", "sweep_corr", "seeds", "seed"),
    "ablation": (*(switch.knob for switch in REGISTRY["home"].switches), "samples", "seed"),
    "transfer": ("tasks", "corr", "groups", "between", "dense", "sparse", "rate", "samples", "noise", "scale", "sinusoids", "seed",
                 "transfer_arch", "experts", "hidden", "seeds", "epochs"),
}


def defaults(preset: str = "paper") -> Settings:
    """Every knob's value under a preset (the table's defaults, with the preset's values on top)."""
    return {**{name: knob.default for name, knob in KNOBS.items()}, **PRESETS[preset], "preset": preset}


def with_preset(settings: Settings, preset: str) -> Settings:
    """`settings` switched to a preset: every knob some preset sets takes this preset's value."""
    governed = {name for values in PRESETS.values() for name in values}
    return {**settings, **{name: value for name, value in defaults(preset).items() if name in governed}, "preset": preset}


def link_base(settings: Settings, given: Settings, allowed: Sequence[str]) -> Settings:
    """What a link starts from: the student's settings switched to the link's preset, with this page's
    knobs at that preset's defaults (a link is the whole experiment of its page)."""
    if "preset" not in allowed:  # a page without the preset knob: its knobs at the student's preset's defaults
        base = defaults(settings["preset"])
        return {**settings, **{name: base[name] for name in allowed}}
    preset = given.get("preset", "paper")
    base = defaults(preset)
    return {**with_preset(settings, preset), **{name: base[name] for name in allowed}}


def names(sections: Iterable[str]) -> tuple[str, ...]:
    """The knobs of some sections, in table order."""
    wanted = set(sections)
    return tuple(name for name, knob in KNOBS.items() if knob.section in wanted)


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
        if key not in KNOBS:
            unknown.append(key)
            continue
        try:
            good[key] = KNOBS[key].check(value)
        except KnobError as error:
            problems.append(f"'{key}': {shorten(json.dumps(value)[:200])} is not allowed; {KNOBS[key].label} {error}")
    if unknown:
        more = f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
        problems.insert(0, f"not settings: {shorten(', '.join(map(repr, unknown[:5])))}{more} (known: {', '.join(KNOBS)})")
    if len(problems) > 6:
        problems[6:] = [f"and {len(problems) - 6} more problems"]
    if problems:
        raise ValueError("; ".join(problems) + ".")
    return good


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
                notices.append(Notice(name, _text(given[name]) if not knob.multi else ", ".join(knob.to_link(given[name])),
                                      f"{knob.label} {knob.when_text}"))
                merged[name] = settings[name]
    return merged, notices


def restart_key(settings: Settings) -> str:
    """What a race depends on: the knobs that are not live (a change restarts the race)."""
    return json.dumps({name: value for name, value in settings.items() if not KNOBS[name].live}, sort_keys=True)


def to_link(settings: Settings, allowed: Sequence[str]) -> dict[str, list[str]]:
    """Link parameters for the knobs `allowed` that apply and differ from their preset's default (and the preset
    itself unless it is the default one)."""
    base = {**defaults(settings["preset"]), "preset": KNOBS["preset"].default}
    return {name: KNOBS[name].to_link(settings[name]) for name in allowed
            if KNOBS[name].applies(settings) and settings[name] != base[name]}
