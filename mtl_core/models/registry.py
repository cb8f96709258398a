"""The architectures, one table: what each is called, how it is drawn and explained, its routing, and how
the rest of the app treats it (whether its gates learn, whether its bottoms are sized against another
architecture, the components a student can switch off, its click -> conversion head).

Every page, chart, link, knob, lesson, study and benchmark reads this table, so renaming a label or adding
an architecture is one edit here. Links use the label (`?arch=MMoE`); the CLI and configs use the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import coupling, routing


@dataclass(frozen=True)
class Switch:
    """A component an architecture has on by default and a student can switch off (HoME's four): `field` of
    ModelConfig, its knob (link) name and label, its name in the ablation's arms ("w/o expert norm"), and the
    other fields it sets with it, field -> (value when on, value when off), unless those are given."""

    field: str
    knob: str
    label: str
    words: str
    pairs: tuple[tuple[str, tuple], ...] = ()


@dataclass(frozen=True)
class Architecture:
    name: str       # the id in configs and on the command line, e.g. "mmoe"
    label: str      # what a student reads, in every chart, table and link, e.g. "MMoE"
    color: str      # fixed on every chart
    plan: Callable  # (ModelConfig, task names, task groups) -> (levels, tower stream per task), see routing.py
    caption: str    # one or two sentences under its routing picture
    factorised: bool = False          # the experts' weights over the units are one Tucker tensor (layers.TuckerLinear)
    penalty: Callable | None = None   # model -> `[members]` loss term coupling the columns (coupling.py)
    funnel: str | None = None         # a click -> conversion head (funnel data only, training.funnel_losses):
                                      # "clicked" (CVR learned on clicks only), "esmm" (pCTCVR = pCTR * pCVR),
                                      # "ips" or "dr" (ESCM²: ESMM plus a counterfactual CVR loss)
    gates: str = ""                   # "input": its gates are computed from the input (the gate tricks apply);
                                      # "constant": learned mixes that do not depend on it (Cross-Stitch); "": none
    sized: bool = False               # its bottoms are widened to another architecture's parameter count, as the
                                      # MMoE paper compares them (runs.sized_model_config)
    switches: tuple[Switch, ...] = ()  # components on by default that a student can switch off
    knobs: tuple[str, ...] = ()       # knobs (knobs.py) that matter for this architecture alone, besides its switches'

    @property
    def own_knobs(self) -> tuple[str, ...]:
        return self.knobs + tuple(switch.knob for switch in self.switches)


# HoME's four components (Wang et al., KDD 2025). Expert normalisation is the paper's pair "batch norm + Swish":
# switching it off also returns the experts to ReLU unless the activation is given.
HOME_SWITCHES = (Switch("expert_norm", "norm", "expert normalisation + Swish", "expert norm",
                        pairs=(("activation", ("swish", "relu")),)),
                 Switch("hierarchy_mask", "mask", "hierarchy mask", "hierarchy mask"),
                 Switch("feature_gate", "fgate", "feature gate", "feature gate"),
                 Switch("self_gate", "sgate", "self-gate", "self-gate"))


REGISTRY: dict[str, Architecture] = {a.name: a for a in (
    Architecture("single_task", "Single-task", "#7f7f7f", routing.single_task_plan,
                 "One bottom per task; nothing is shared. The baseline every MTL model must beat.", sized=True),
    Architecture("shared_bottom", "Shared-Bottom", "#8c564b", routing.shared_bottom_plan,
                 "One bottom shared by all tasks (weight 1, no gate). Cheap, but tasks that disagree fight over it.", sized=True),
    Architecture("l2_constrained", "L2-Constrained", "#bcbd22", routing.single_task_plan,
                 "One column per task, its weights pulled towards the other tasks' by a penalty alpha * ||theta_1 - theta_2||^2.",
                 penalty=coupling.l2_between_columns, knobs=("alpha",)),
    Architecture("cross_stitch", "Cross-Stitch", "#9467bd", routing.cross_stitch_plan,
                 "One column per task; after every layer a learned, input-independent mix of all columns feeds each task's next layer.",
                 gates="constant"),
    Architecture("tensor_factorization", "Tensor-Factorization", "#e377c2", routing.single_task_plan,
                 "One column per task whose weights are slices of one low-rank (Tucker) tensor shared by all tasks.",
                 factorised=True, knobs=("rank",)),
    Architecture("omoe", "OMoE", "#ff7f0e", routing.omoe_plan,
                 "Several experts but one gate for everyone: all towers get the same mix.", gates="input"),
    Architecture("mmoe", "MMoE", "#1f77b4", routing.mmoe_plan,
                 "One gate per task over the same shared experts: each task picks its own mix (Ma et al., KDD 2018).",
                 gates="input"),
    Architecture("cgc", "CGC", "#2ca02c", routing.ple_plan,
                 "Shared experts plus experts owned by one task; a task's gate never sees another task's experts.", gates="input"),
    Architecture("ple", "PLE", "#17becf", routing.ple_plan,
                 "CGC stacked: on lower levels an extra shared gate over all experts feeds the next level's shared experts.",
                 gates="input"),
    Architecture("home", "HoME", "#d62728", routing.home_plan,
                 "Two levels: global and per-group experts, then per-task ones; a task's gates never see another group's experts.",
                 gates="input", switches=HOME_SWITCHES),
    Architecture("cvr_on_clicks", "CVR on clicks", "#8c6d31", routing.single_task_plan,
                 "The usual funnel baseline: a CTR model on all impressions and a separate CVR model trained on clicked ones only.",
                 funnel="clicked"),
    Architecture("esmm", "ESMM", "#637939", routing.shared_bottom_plan,
                 "A shared bottom, a CTR and a CVR tower; trained on all impressions through pCTCVR = pCTR x pCVR (Ma et al., SIGIR 2018).",
                 funnel="esmm"),
    Architecture("esmm_mmoe", "ESMM-MMoE", "#393b79", routing.mmoe_plan,
                 "ESMM's pCTR x pCVR head on MMoE's experts and gates: the funnel and the expert question together.",
                 funnel="esmm", gates="input"),
    Architecture("escm2_ips", "ESCM2-IPS", "#e6550d", routing.shared_bottom_plan,
                 "ESMM plus a counterfactual CVR loss: clicked impressions weighted by 1 / pCTR, so that the clicks stand "
                 "for every impression (Wang et al., SIGIR 2022).", funnel="ips"),
    Architecture("escm2_dr", "ESCM2-DR", "#a63603", routing.with_imputation_tower(routing.shared_bottom_plan),
                 "ESCM2-IPS plus an imputation tower that guesses the CVR loss of every impression, unclicked ones "
                 "included (doubly robust; Wang et al., SIGIR 2022).", funnel="dr"),
    Architecture("escm2_ips_mmoe", "ESCM2-IPS-MMoE", "#fd8d3c", routing.mmoe_plan,
                 "ESCM2-IPS's losses on MMoE's experts and gates.", funnel="ips", gates="input"),
    Architecture("escm2_dr_mmoe", "ESCM2-DR-MMoE", "#7f2704", routing.with_imputation_tower(routing.mmoe_plan),
                 "ESCM2-DR's losses on MMoE's experts and gates (the imputation tower reads the conversion gate's mix).",
                 funnel="dr", gates="input"),
)}
FUNNEL_ARCHS = tuple(a.name for a in REGISTRY.values() if a.funnel)
ARCHITECTURES = tuple(REGISTRY)
LABELS = {a.name: a.label for a in REGISTRY.values()}
BY_LABEL = {a.label: a.name for a in REGISTRY.values()}
SWITCHES = tuple(switch for a in REGISTRY.values() for switch in a.switches)   # every switch, of any architecture


ENTRY = "+"   # a race entry with its own weighting: "mmoe+upgrad" is MMoE trained with UPGrad (settings/builders.entries)


def label(key: str) -> str:
    """The label of an architecture name, or of a race entry "arch+weighting" ("MMoE · upgrad"); the name itself when
    unknown, e.g. in an old file."""
    arch, _, weighting = key.partition(ENTRY)
    return LABELS.get(arch, arch) + (f" · {weighting}" if weighting else "")


def build_plan(config, task_names: tuple[str, ...], task_groups: tuple[int, ...]) -> routing.RoutingPlan:
    """The routing of `config.arch` for these tasks (and task groups, used by HoME)."""
    levels, tower_stream = REGISTRY[config.arch].plan(config, list(task_names), list(task_groups))
    return routing.RoutingPlan(arch=config.arch, levels=tuple(level.build() for level in levels), tower_stream=tuple(tower_stream))
