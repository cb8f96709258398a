"""Every setting, as one typed table (TensorFlow Playground's one table of state): the widgets, the link
check, settings files, the lesson presets, the command line's options and the configs are all derived from it.

A setting arrives from four places, and each is checked the same way (knob.py): a link (links.py), a
file (links.py), a widget (the page writes what the student chose) or the command line (cli.py: a knob's
`flag`). Rules between knobs (rules.py) are applied to the app's sources alike; builders.py turns the values
into the library's configs for the pages and the command line alike. The last section's knobs have no widget:
settings only the command line gives. Nothing here imports Streamlit.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..data.census import CensusConfig
from ..data.funnel import FunnelConfig
from ..data.synthetic import DataConfig, TASK_TYPES
from ..data.table import MAX_LABELS, MISSING
from ..models import ModelConfig
from ..models.registry import BY_LABEL, FUNNEL_ARCHS, REGISTRY, SWITCHES
from ..studies.claims import claim
from ..train.device import DEVICES
from ..train import aggregators
from ..train.weighting import GRADNORM_ALPHA, WEIGHTINGS
from .knob import COMMAND_LINE, Knob, OWN_FILE, Settings

SAMPLES = (2_000, 5_000, 10_000, 20_000, 50_000)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
HIDDEN = (2, 4, 8, 16, 32, 64, 128)
TOWERS = (4, 8, 16, 32)
SWEEP_CORRELATIONS = (0.0, 0.2, 0.5, 0.75, 0.9, 1.0)
BATCHES = (64, 128, 256, 512, 1024)
MAX_TASKS = 8
PRESENT = "present"   # the presentation layout's knob (app.py folds the sidebar when a link sets it)
SOURCES = ("synthetic", "census-income:1", "census-income:2", "funnel", "file")
HOLDOUT = {"synthetic": 2_000, "census": 10_000, "funnel": 10_000}   # rows in each of validation and test (census: of 49,881)
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


def _weighted(s: Settings, name: str) -> bool:
    """Some model of the race trains with the weighting `name`."""
    return name in (s.get("weightings") or (s["weighting"],))


def task_count(s: Settings) -> int:
    """How many tasks the settings' data has (census income and the funnel have a fixed number, an own file its labels)."""
    if synthetic(s):
        return s["tasks"]
    if own_file(s):
        return len(s["labels"])
    return (FunnelConfig if funnel(s) else CensusConfig).tasks


def synthetic(s: Settings) -> bool:
    return s["source"] == "synthetic"


def funnel(s: Settings) -> bool:
    return s["source"] == "funnel"


def own_file(s: Settings) -> bool:
    return s["source"] == "file"


OWN_FILE_ONLY = "applies only to your own file (data = file)"


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
              "shows there (the Correlation sweep page says which).", flag="--preset"),
    Knob("source", "data", "tasks", str, "synthetic", options=SOURCES,
         help="Synthetic tasks from the MMoE paper's generator, the paper's real benchmark: census income, task group 1 "
              "(income > $50K; never married) or group 2 (college degree; never married), a click -> conversion funnel "
              "(impressions, clicks, conversions only after a click: ESMM's setting), or your own file (a CSV or Parquet "
              "file of several label columns: upload it on the Data page; on the command line --data csv:PATH).", flag="--data"),
    Knob("tasks", "tasks", "tasks", int, 2, 1, MAX_TASKS, help="How many tasks the network learns at once.",
         when=synthetic, when_text=SYNTHETIC_ONLY, flag="--tasks"),
    Knob("corr", "task correlation p", "tasks", float, 0.5, -1.0, 1.0, 0.05, when=lambda s: synthetic(s) or funnel(s),
         when_text="applies only to synthetic data and the funnel",
         help="Cosine between the tasks' weight vectors (within a group when groups are on); in the funnel, between the "
              "click's and the conversion's.", flag="--correlation"),
    *(Knob(name, label, "tasks", float, default, options=options, when=funnel, when_text="applies only to the funnel", help=text,
           flag=flag)
      for name, flag, label, default, options, text in (
          ("ctr", "--click-rate", "click rate", 0.05, (0.01, 0.02, 0.05, 0.1, 0.2), "Share of impressions that are clicked."),
          ("cvr", "--cvr-rate", "conversion rate of clicks", 0.1, (0.02, 0.05, 0.1, 0.2, 0.3), "Share of clicked impressions that convert."),
          ("selection", "--selection", "how strongly clicks follow the features", 2.0, (0.0, 0.5, 1.0, 2.0, 3.0),
           "0 = random clicks; larger = the clicked impressions sit further along the click's direction in feature space."),
          ("bias", "--bias", "hidden intent (selection bias)", 1.0, (0.0, 0.5, 1.0, 1.5, 2.0, 3.0),
           "An intent no model sees raises both the click and the conversion: clicked impressions then convert more than "
           "their features say. 0 = no sample selection bias."))),
    Knob("groups", "two task groups", "tasks", bool, False, when=lambda s: synthetic(s) and s["tasks"] >= 2,
         when_text="needs at least two synthetic tasks",
         help="Split the tasks into two halves: p within a group, the value below between groups."),
    Knob("between", "correlation between groups", "tasks", float, 0.0, -1.0, 1.0, 0.05,
         when=lambda s: synthetic(s) and s["groups"] and s["tasks"] >= 2, when_text="applies only with two synthetic task groups", flag="--between-correlation"),
    Knob("dense", "binary tasks, dense (50% positive)", "tasks", int, (), 0, MAX_TASKS - 1, multi=True,
         when=synthetic, when_text=SYNTHETIC_ONLY, help="Task numbers that become binary tasks with half positives."),
    Knob("sparse", "binary tasks, sparse", "tasks", int, (), 0, MAX_TASKS - 1, multi=True,
         when=synthetic, when_text=SYNTHETIC_ONLY, help="Task numbers that become binary tasks with few positives (the rate below)."),
    Knob("rate", "sparse positive rate", "tasks", float, 0.05, 0.01, 0.5, 0.01,
         when=lambda s: synthetic(s) and bool(s["sparse"]), when_text="applies only when some synthetic task is sparse"),
    Knob("samples", "training samples", "tasks", int, 10_000, options=SAMPLES, when=lambda s: not own_file(s),
         when_text="does not apply to your own file (80% of its rows train, 10% validate, 10% test)",
         help="Training rows. For census income: the first rows of a fixed shuffle of its 199,523 training rows.", flag="--samples"),
    Knob("noise", "label noise (std)", "tasks", float, 0.1, 0.0, 1.0, 0.05, when=synthetic, when_text=SYNTHETIC_ONLY, flag="--noise"),
    Knob("scale", "weight scale c (task difficulty)", "tasks", float, 1.0, 0.5, 5.0, 0.5, when=synthetic, when_text=SYNTHETIC_ONLY,
         help="Length c of the tasks' weight vectors: larger c bends the labels more (the sinusoids turn faster).", flag="--scale"),
    Knob("sinusoids", "sinusoids m", "tasks", int, 10, 0, 50, when=synthetic, when_text=SYNTHETIC_ONLY,
         help="How many sinusoids bend every label; 0 makes the tasks linear.", flag="--sinusoids"),
    Knob("seed", "seed", "tasks", int, 0, 0, 1_000_000, help="Seeds the synthetic data, the initial weights and the batch order (census rows never change).", flag="--seed"),
    # your own file (data/table.py): the Data page draws these from the file's columns
    Knob("file", "your file", OWN_FILE, str, "", when=own_file, when_text=OWN_FILE_ONLY,
         help="Which of your files (its digest): the Data page sets it when you upload one."),
    Knob("labels", "label columns", OWN_FILE, str, (), sequence=True, when=own_file, when_text=OWN_FILE_ONLY, flag="--labels",
         help=f"The columns the tasks predict, one task each (2 to {MAX_LABELS}), e.g. clicked,spend."),
    Knob("label_types", "task types", OWN_FILE, str, (), options=TASK_TYPES, sequence=True, when=own_file,
         when_text=OWN_FILE_ONLY, flag="--label-types",
         help="regression or binary for each label, in their order (default: binary for a column of two values, else regression)."),
    Knob("inputs", "input columns", OWN_FILE, str, (), sequence=True, when=own_file, when_text=OWN_FILE_ONLY, flag="--inputs",
         help="The columns the model reads (default: every column that is no label and not the user column)."),
    Knob("user_column", "user column", OWN_FILE, str, "", when=own_file, when_text=OWN_FILE_ONLY, flag="--user-column",
         help="A column that says whose row it is, for GAUC (AUC per user, averaged); none: GAUC equals AUC."),
    Knob("missing", "rows with a missing value", OWN_FILE, str, "drop", options=MISSING, when=own_file,
         when_text=OWN_FILE_ONLY, flag="--missing", help="drop: train without them (the Data page counts them); refuse: say where they are."),
    # models (models/)
    Knob("arch", "architectures", "models", str, ("Shared-Bottom", "MMoE"), options=tuple(BY_LABEL), multi=True),
    Knob("experts", "shared experts", "models", int, 8, 1, 32, flag="--experts"),
    Knob("hidden", "units per expert", "models", int, 16, options=HIDDEN),
    Knob("tower", "units per tower", "models", int, 8, options=TOWERS),
    *(Knob(switch.knob, switch.label, "models", bool, True, **_for_owners(switch.knob), flag=f"--{switch.field.replace('_', '-')}",
           help=f"{' and '.join(_owners(switch.knob))}'s {switch.label}, on by default: switch it off to see what it "
                f"does.")
      for switch in SWITCHES),
    Knob("alpha", "L2 pull alpha", "models", float, 0.01, options=(1e-4, 1e-3, 1e-2, 1e-1, 1.0), **_for_owners("alpha"),
         help="How strongly L2-Constrained pulls the task columns' weights together (0 would be single-task models).", flag="--l2-alpha"),
    Knob("rank", "Tucker rank", "models", int, 8, options=(2, 4, 8, 16, 32, 64), **_for_owners("rank"),
         help="Tensor-Factorization's rank over the inputs and over the outputs of each layer (its rank over tasks is 2; "
              "the CLI's --tucker-ranks sets all three)."),
    # gate tricks and loss weighting (models/gates.py, weighting.py): the practitioner's toolbox
    *(Knob(name, label, "tricks", kind, default, options=options, when=_gated, when_text=GATED_ONLY, help=text, flag=flag)
      for name, flag, label, kind, default, options, text in (
          ("temp", "--gate-temperature", "gate softmax temperature", float, 1.0, (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0),
           "The gates' logits are divided by it before the softmax: above 1 the weights move closer together, below 1 "
           "further apart (towards one expert per gate)."),
          ("gdrop", "--gate-dropout", "gate dropout", float, 0.0, (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
           "While training, each expert a gate sees is dropped with this probability and the gate renormalised over the "
           "rest: " + claim("gate-dropout").text()),
          ("gln", "--gate-layer-norm", "LayerNorm in the gates", bool, False, (),
           "Standardise each gate's logits over its experts before the softmax, so their scale cannot run away."))),
    Knob("ginit", "gate init scale", "tricks", float, 1.0, options=(0.0, 0.01, 0.1, 1.0, 3.0, 10.0), when=_input_gated,
         when_text=f"only matters for gates computed from the input ({', '.join(INPUT_GATED)}; Cross-Stitch's gates "
                   "always start near the identity)",
         help="The gates' initial weights times this (0 = every gate starts uniform over its experts).", flag="--gate-init-scale"),
    Knob("freeze", "freeze gates after step", "tricks", int, 0, 0, 100_000, when=_gated, when_text=GATED_ONLY,
         help="From this step on the gates stop learning and the experts train under fixed routing (0 = never).", flag="--freeze-gates-after"),
    Knob("shared_in", "shared input layer (units)", "tricks", int, 0, options=(0, 8, 16, 32, 64, 128),
         help="A shared ReLU layer between the input and the experts, this wide (0 = none): every task trains it.", flag="--shared-input"),
    Knob("weighting", "loss weighting", "tricks", str, "equal", options=WEIGHTINGS,
         when=lambda s: task_count(s) >= 2 and not s.get("weightings"),
         when_text="needs at least two tasks, and no weightings raced side by side (they set each model's)",
         help="How the tasks' losses become one update: equal, fixed (task 0's weight below), uncertainty (Kendall et al.), "
              "gradnorm (Chen et al.), dwa (Liu et al.), pcgrad (Yu et al.), famo (Liu et al. 2023), or an aggregator of the "
              "tasks' gradients through TorchJD: upgrad, mgda, cagrad, nashmtl, imtlg, alignedmtl, gradvac, rlw (random "
              "weights). Inside the experts charts the weights." + "".join(
                  f" Not on this server: {name} ({why})." for name, why in aggregators.MISSING.items()), flag="--weighting"),
    Knob("weightings", "race weightings side by side", "tricks", str, (), options=WEIGHTINGS, multi=True,
         when=lambda s: task_count(s) >= 2, when_text="needs at least two tasks (one task's loss has nothing to be weighed against)",
         help="Each architecture trains once with each weighting chosen here, on the same data and seed, e.g. MMoE with "
              "equal, upgrad and pcgrad (in a link: &weightings=equal&weightings=upgrad). Empty: the loss weighting above."),
    Knob("tw", "weight on task 0's loss", "tricks", float, 1.0, options=(0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0),
         when=lambda s: _weighted(s, "fixed"), when_text="applies only with the fixed weighting",
         help="With the fixed weighting: task 0's loss is multiplied by this, every other task's by 1."),
    Knob("gn_alpha", "GradNorm alpha", "tricks", float, GRADNORM_ALPHA, options=(0.12, 0.5, 1.0, 1.5, 3.0),
         when=lambda s: _weighted(s, "gradnorm"), when_text="applies only with the gradnorm weighting",
         help="How strongly GradNorm favours the tasks that learn slower (0 = equal gradient norms).", flag="--gradnorm-alpha"),
    # training (training.py)
    Knob("lr", "learning rate", "training", float, 1e-3, options=LEARNING_RATES, live=True, flag="--lr"),
    Knob("epochs", "epochs", "training", int, 10, 1, 200, flag="--epochs"),
    Knob("batch", "batch size", "training", int, 256, options=BATCHES, flag="--batch-size"),
    Knob("device", "device", "training", str, "auto", options=DEVICES, flag="--device"),
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
    # the command line's own settings: no widget (richer than the app's knobs, or not in the app); left at its default,
    # each builds what the app builds (settings/builders.py)
    *(Knob(name, name.replace("_", " "), COMMAND_LINE, kind, default, options=options, sequence=default == (), help=text,
           flag=f"--{flag or name.replace('_', '-')}")
      for name, flag, kind, default, options, text in (
          ("task_groups", "groups", int, (), (), "group of each task, e.g. 0,0,1,1 (default: one group, or two halves with the "
                                                 "app's 'two task groups')"),
          ("cosine", "", float, (), (), "full K x K target cosine matrix, rows separated by ';', e.g. '1,0.5;0.5,1' "
                                        "(instead of --correlation)"),
          ("binary", "", int, (), (), "indices of binary tasks, e.g. 1,3 (the others are regression)"),
          ("positive_rates", "", float, (), (), "positive rate of each binary task, in the order of --binary (default 0.5)"),
          ("holdout", "", int, 0, (), "samples in each of validation and test (0 = the app's: "
                                      + ", ".join(f"{source} {n:,}" for source, n in HOLDOUT.items()) + ")"),
          ("features", "", int, DataConfig.features, (), "input dimension d (synthetic tasks and the funnel)"),
          ("users", "", int, DataConfig.users, (), "pseudo-users (for GAUC)"),
          ("task_experts", "", int, ModelConfig.task_experts, (), "experts per task (CGC, PLE, HoME)"),
          ("group_experts", "", int, ModelConfig.group_experts, (), "experts per task group (HoME)"),
          ("levels", "", int, ModelConfig.levels, (), "PLE levels (1-3); Cross-Stitch layers"),
          ("expert_hidden", "", int, (), (), "expert layer sizes, e.g. 16 or 64,32 (default: one layer of the app's "
                                             "'units per expert')"),
          ("tower_hidden", "", int, (), (), "tower layer sizes (default: one layer of the app's 'units per tower')"),
          ("activation", "", str, "auto", ("auto", "relu", "swish"), "expert activation (auto: relu; HoME: swish, with "
                                                                     "its expert normalisation)"),
          ("feature_gate_rank", "", int, ModelConfig.feature_gate_rank, (), "rank of HoME's feature gate"),
          ("tucker_ranks", "", int, (), (), "tensor_factorization: ranks over inputs, outputs, tasks (default: the "
                                            "app's Tucker rank twice, then 2)"),
          ("steps", "", int, 0, (), "optimiser steps (0 = as many as --epochs makes)"),
          ("task_weights", "", float, (), (), "per-task weights for --weighting fixed (default: the app's weight on "
                                              "task 0's loss, 1 on the others)"))),
)}


SECTIONS = ("tasks", "models", "tricks", "training", "view")   # the Playground's (the sweep's knobs are on the Correlation sweep page)


# The knobs each page draws (and so reads from a link); the pages group them under headers.
PAGE_KNOBS = {
    "data": tuple(n for n, k in KNOBS.items() if k.section in ("tasks", OWN_FILE)),
    "playground": tuple(n for n, k in KNOBS.items() if k.section in (*SECTIONS, OWN_FILE)),
    "sweep": ("preset", "experts", "hidden", "samples", "epochs", "sweep_arch", "sweep_corr", "seeds", "seed"),
    "ablation": (*(switch.knob for switch in REGISTRY["home"].switches), "samples", "seed"),
    "transfer": ("tasks", "corr", "groups", "between", "dense", "sparse", "rate", "samples", "noise", "scale", "sinusoids", "seed",
                 "transfer_arch", "experts", "hidden", "seeds", "epochs"),
}


def defaults(preset: str = "paper") -> Settings:
    """Every app knob's value under a preset (the table's defaults, with the preset's values on top); the
    command line's own knobs are not the app's settings (the builders read their defaults)."""
    return {**{name: knob.default for name, knob in KNOBS.items() if knob.section != COMMAND_LINE}, **PRESETS[preset],
            "preset": preset}


APP_KNOBS = tuple(defaults())   # the app's settings (a page, a link, a file): every knob but the command line's own


def with_preset(settings: Settings, preset: str) -> Settings:
    """`settings` switched to a preset: every knob some preset sets takes this preset's value."""
    governed = {name for values in PRESETS.values() for name in values}
    return {**settings, **{name: value for name, value in defaults(preset).items() if name in governed}, "preset": preset}


def names(sections: Iterable[str]) -> tuple[str, ...]:
    """The knobs of some sections, in table order."""
    wanted = set(sections)
    return tuple(name for name, knob in KNOBS.items() if knob.section in wanted)
