"""The lessons, as data: a preset, a question, the outcome it predicts (a check on the finished race),
what a student should see, and the explanation.

A lesson's check runs on a finished race's `RunView`s (mtl_core.live), so the same function judges
the lesson check (`python -m mtl_core lessons`, which plays every lesson's race through the same
code as the Playground, on the default seed and on other seeds) and a student's own run on the page.
A lesson ships only if its prediction holds on the default seed and on at least 70% of other seeds, and
its margins over all those seeds are larger than chance would make them (mtl_core.studies.evidence says which test).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..settings import builders, knobs, links

from ..diagnostics.recorder import COLLAPSED, TAKEN_OVER
from ..models.registry import ENTRY, label
from ..settings.knob import Settings
from .bundled import gate_trick_summary, gate_tricks
from .claims import RIVALS, SPARSE_SETTING as WEIGHTED, claim, tuned_weight
from .weightings import SETTINGS as WEIGHTING_SETTINGS
from .evidence import Effect, Verdict

SHIP_SHARE = 0.7   # a lesson's prediction must hold on at least this share of other seeds
TUNED_WEIGHT = tuned_weight()   # the weightings lesson's fixed weight on task 0, as the bundled study tuned it
# (the lesson races the study's sparse-task setting as the Playground can: with the app's 2,000 test samples, not 5,000)


Check = Callable[[object], Verdict]   # on a race's runs (arch -> mtl_core.live.RunView) or a sweep's final losses


@dataclass(frozen=True)
class Lesson:
    """`settings`: the knob values the lesson sets over the defaults of its preset; `hide`: knobs it
    locks; `live`: a change the student makes while it trains (step, knob, value), which the check
    makes too; `predicts`: the checkable outcome in words; `see`: what the student should see; `answers`: the
    question's answers a class chooses from before Play, of which `expected` is what `predicts` says."""

    key: str
    question: str
    settings: dict
    predicts: str
    see: str
    explanation: str
    check: Check
    do: str = "Press Play and let it finish."
    hide: tuple[str, ...] = ()
    live: tuple[int, str, object] | None = None
    page: str = "playground"
    answers: tuple[str, ...] = ()
    expected: int = 0

    def full_settings(self, seed: int | None = None) -> Settings:
        s = {**knobs.defaults(self.settings.get("preset", "paper")), **self.settings}
        return s if seed is None else {**s, "seed": seed}

    def link(self, seed: int | None = None) -> dict[str, list[str]]:
        """The lesson as link parameters (what its button opens and a teacher can share); with `seed`, on that seed,
        locked (a class's student)."""
        query = links.to_link(self.full_settings(seed), knobs.PAGE_KNOBS[self.page])
        hide = self.hide + (("seed",) if seed is not None else ())
        return query | ({links.HIDE: [",".join(hide)]} if hide else {})

    @property
    def seeds_per_run(self) -> int:
        """How many seeds one run of the lesson trains (a sweep's or a study's seeds run from the seed knob on)."""
        return self.full_settings()["seeds"] if self.page in ("sweep", "transfer") else 1


# ------------------------------------------------------------------ what a check can look at

def final_loss(run) -> float:
    """Mean over tasks of the latest test loss (MSE, or log loss for binary tasks)."""
    m = run.metrics
    if m is None:
        return float("nan")
    return float(m[m.metric.isin(["mse", "logloss"])].groupby("task")["value"].mean().mean())


def model_losses(outcome) -> dict[str, float]:
    """Each model's final test loss in a lesson's outcome (what a class pools): a race's runs by model; a sweep's rows
    by model (and correlation, when it has several), mean over its seeds; a transfer study's rows by setting, mean over
    seeds and tasks."""
    if not isinstance(outcome, pd.DataFrame):
        return {label(arch): final_loss(run) for arch, run in outcome.items()}
    if "setting" in outcome:   # a transfer study: (arch, setting, seed, task, loss)
        return {setting: float(loss) for setting, loss in outcome.groupby("setting", sort=False).loss.mean().items()}
    several = outcome.correlation.nunique() > 1   # a sweep: (arch, correlation, seed, loss)
    return {label(arch) + (f" p = {correlation:g}" if several else ""): float(group.loss.mean())
            for (arch, correlation), group in outcome.groupby(["arch", "correlation"], sort=False)}


def zeros_without_collapse(arch: str, share: float) -> Check:
    """At least `share` of the expert outputs are exactly 0 and some units are dead (0 for every sample of the
    snapshot), yet no expert has collapsed (over COLLAPSED of its outputs 0, HoME's measure)."""
    def check(runs):
        experts = runs[arch].latest("experts")
        zero, dead, worst = float(experts.zero_fraction.mean()), float(experts.dead_units.mean()), float(experts.zero_fraction.max())
        return Verdict(zero >= share and dead > 0 and worst <= COLLAPSED,
                       f"{zero:.0%} of {label(arch)}'s expert outputs are exactly 0, {dead:.0%} of its units are dead, "
                       f"its sparsest expert has {worst:.0%} zeros", min(zero - share, dead, COLLAPSED - worst), "(smallest margin, a share)")
    return check


def self_gate_share_at_least(arch: str, share: float) -> Check:
    """Every task's mix takes more than `share` from the self-gate (the last level's reliance); the evidence also
    gives the own-expert share of the sparse (positive rate under 0.2) and the dense tasks' mixes."""
    def check(runs):
        reliance = runs[arch].latest("reliance")
        last = reliance[reliance.level == reliance.level.max()]
        sparse = last.positive_rate < 0.2
        return Verdict(bool((last.self_gate > share).all()),
                       f"{label(arch)}: the self-gate's part of each task's mix {last.self_gate.min():.2f} to {last.self_gate.max():.2f}; "
                       f"own-expert share of the sparse tasks' mix {last.own[sparse].mean():.2f}, of the dense tasks' {last.own[~sparse].mean():.2f}",
                       float(last.self_gate.min()) - share, "(share of the mix)")
    return check


def taken_over_at_most(arch: str, share: float) -> Check:
    """At most `share` of `arch`'s shared experts are taken over in the last snapshot (one consuming gate holds
    over TAKEN_OVER of an expert's gate mass: HoME's expert degradation)."""
    def check(runs):
        experts = runs[arch].latest("occupancy").drop_duplicates(["level", "expert"])
        got, top = float(experts.taken_over.mean()), float(experts.top_share.max())
        return Verdict(got <= share, f"{got:.0%} of {label(arch)}'s shared experts are taken over; the most one gate holds of a "
                                     f"shared expert's gate mass is {top:.0%}", share - got, f"({share} - the share taken over)")
    return check


def hurt_on_most(task: str, by: str) -> Check:
    """On a transfer study's runs (one architecture): `task`'s test loss is higher trained with `by` than without it
    on more than half of the seeds (experiments.transfer_summary's `hurt_by_<by>`)."""
    def check(runs: pd.DataFrame):
        from .experiments import transfer_summary

        row = transfer_summary(runs, list(dict.fromkeys(runs[runs.setting == "all tasks"].task))).set_index("task").loc[task]
        hurt, n = int(row[f"hurt_by_{by}"]), int(row.seeds)
        return Verdict(hurt > n / 2, f"{task}'s test loss was higher with {by} than without it on {hurt} of {n} seeds "
                                     f"(mean {row[f'without_{by}']:+.4f})", (hurt - n / 2) / n, "(share of seeds above half)")
    return check


def lower_loss(a: str, b: str) -> Check:
    def check(runs):
        la, lb = final_loss(runs[a]), final_loss(runs[b])
        return Verdict(la < lb, f"final test loss {label(a)} {la:.4f}, {label(b)} {lb:.4f}", lb / la - 1, f"({label(b)}'s loss / {label(a)}'s - 1)")
    return check


def task_losses(run) -> pd.Series:
    """Each task's latest test loss: log loss for a binary task, MSE for a regression one (empty before a run has any)."""
    m = run.metrics
    if m is None:
        return pd.Series(dtype=float)
    loss = m[m.metric == "logloss"].set_index("task").value
    return pd.concat([loss, m[(m.metric == "mse") & ~m.task.isin(loss.index)].set_index("task").value])


def lowest_losses(entry: str, rivals: tuple[str, ...]) -> Check:
    """`entry`'s test losses are the lowest: every rival's losses over `entry`'s, averaged over the tasks, exceed 1
    (the weightings study's comparison, claims.rival_excess)."""
    def check(runs):
        own = task_losses(runs[entry])
        excess = {rival: float((task_losses(runs[rival]) / own).mean() - 1) for rival in rivals}
        if own.empty or any(np.isnan(v) for v in excess.values()):
            return Verdict(False, "a run has no finite test loss to compare (it has not been evaluated, or it diverged)")
        nearest = min(excess, key=excess.get)
        return Verdict(excess[nearest] > 0, f"{label(entry)}'s test losses against each rival's (their losses over its, "
                       f"averaged over the tasks, minus 1): " + ", ".join(f"{label(r)} {v:+.1%}" for r, v in excess.items()),
                       excess[nearest], "(the nearest rival's losses over this entry's, minus 1)")
    return check


def auc_gap_below(a: str, b: str, task: str, gap: float) -> Check:
    """`a`'s and `b`'s final test AUC on `task` differ by less than `gap`."""
    def check(runs):
        aucs = {}
        for arch in (a, b):
            m = runs[arch].metrics
            aucs[arch] = float(m[(m.metric == "auc") & (m.task == task)].value.mean())
        return Verdict(abs(aucs[a] - aucs[b]) < gap, f"test AUC on {task}: {label(a)} {aucs[a]:.4f}, {label(b)} {aucs[b]:.4f}",
                       gap - abs(aucs[a] - aucs[b]), f"(AUC: {gap} - the gap)")
    return check


# a polarisation measure (diagnostics.gate_polarisation's columns) -> how a check's evidence says it, and its unit
POLARISATION = {"sample_polarised": ("send {:.0%} of the samples to a single expert (over 0.9 of the weight)", "share of samples"),
                "top_weight": ("give their favourite expert {:.0%} of their weight on average", "weight")}


def polarisation_at_least(arch: str, measure: str, share: float) -> Check:
    """In the last snapshot, `arch`'s gates reach at least `share` of a POLARISATION measure (mean over samples,
    then gates): `sample_polarised`, the share of samples that get over 0.9 of a gate's weight from one expert,
    or `top_weight`, the weight a gate gives its favourite expert."""
    words, unit = POLARISATION[measure]

    def check(runs):
        got = float(runs[arch].latest("polarisation")[measure].mean())
        return Verdict(got >= share, f"{label(arch)}'s gates " + words.format(got), got - share, f"({unit} - {share})")
    return check


def higher_cvr_auc(a: str, b: str) -> Check:
    """On a funnel: `a`'s CVR AUC on all test impressions (against their potential conversions) is above `b`'s."""
    def check(runs):
        auc = {arch: float(runs[arch].metrics.query("metric == 'cvr_auc_all'").value.mean()) for arch in (a, b)}
        return Verdict(auc[a] > auc[b], f"CVR AUC on all impressions: {label(a)} {auc[a]:.3f}, {label(b)} {auc[b]:.3f}",
                       auc[a] - auc[b], "(AUC difference)")
    return check


def every_model_overestimates(factor: float) -> Check:
    """On a funnel: every model's mean pCVR over all test impressions is at least `factor` times their true mean."""
    def check(runs):
        everywhere = {arch: float(run.metrics.query("metric == 'cvr_calibration_all'").value.mean()) for arch, run in runs.items()}
        return Verdict(min(everywhere.values()) >= factor,
                       "mean pCVR / true mean on all impressions: " + ", ".join(f"{label(a)} {v:.2f}" for a, v in everywhere.items()),
                       float(np.log(min(everywhere.values()) / factor)), f"(log of the lowest over {factor})")
    return check


def rises_on_most_seeds() -> Check:
    """On a sweep's final losses: every architecture's loss is higher at the lowest correlation than at the
    highest on more than half of the seeds (the same seed at both; experiments.rise_by_seed)."""
    def check(runs: pd.DataFrame):
        from .experiments import rise_by_seed

        rise = rise_by_seed(runs)
        return Verdict(bool((rise.rose > rise.seeds / 2).all()),
                       "loss higher at p = {:g} than at p = {:g} on: ".format(rise.low.iloc[0], rise.high.iloc[0])
                       + ", ".join(f"{label(r.arch)} {r.rose} of {r.seeds} seeds" for r in rise.itertuples()),
                       float(((rise.rose - rise.seeds / 2) / rise.seeds).min()), "(smallest share of seeds above half)")
    return check


def wins_on_most(arch: str, over: str) -> Check:
    """On a sweep's final losses: `arch` has the lower loss on more than half of the runs (same correlation and seed)."""
    def check(runs: pd.DataFrame):
        losses = runs.pivot_table(index=["correlation", "seed"], columns="arch", values="loss")
        won, n = int((losses[arch] < losses[over]).sum()), len(losses)
        return Verdict(won > n / 2, f"{label(arch)} had the lower test loss on {won} of {n} seeds",
                       (won - n / 2) / n, "(share of seeds above half)")
    return check


def wins_most_not_all(arch: str, over: str) -> Check:
    """On a sweep's final losses: `arch` has the lower loss on more than half of the runs (same correlation and
    seed) but not on all, and the seed-to-seed spread (sd) of its gain is larger than its mean gain."""
    def check(runs: pd.DataFrame):
        losses = runs.pivot_table(index=["correlation", "seed"], columns="arch", values="loss")
        gain, n = losses[over] - losses[arch], len(losses)
        won = int((gain > 0).sum())
        swings = 1 - gain.mean() / gain.std() if gain.std() > 0 else -1.0   # no spread: the gain does not swing
        margin = min((won - n / 2 - 0.5) / n, (n - won - 0.5) / n, swings)
        return Verdict(bool(n / 2 < won < n and gain.std() > gain.mean()),
                       f"{label(arch)} beat {label(over)} on {won} of {n} seeds, mean gain {gain.mean():.4f}, spread {gain.std():.4f}",
                       float(margin), "(smallest margin: share of seeds, 1 - gain / spread)")
    return check


def jumps_after(arch: str, step: int, factor: float) -> Check:
    """The training loss after the learning rate changed (at `step`, or where the student changed it)
    is at least `factor` times its value just before, or the run diverged."""
    def check(runs):
        run = runs[arch]
        step_changed = run.lr_changed_at if run.lr_changed_at is not None else step
        if run.status == "diverged":
            return Verdict(True, f"{label(arch)} diverged: {run.message}", np.inf, f"(loss after / before - {factor})")
        train = pd.DataFrame([h for h in run.history if h["split"] == "train"])
        per_step = train.groupby("step")["loss"].mean()
        before, after = per_step[per_step.index <= step_changed].iloc[-1], per_step[per_step.index > step_changed].max()
        return Verdict(after >= factor * before, f"{label(arch)}'s training loss went from {before:.3f} to at most {after:.3g}",
                       float(after / before - factor), f"(loss after / before - {factor})")
    return check


# ------------------------------------------------------------------ the lessons

TRICKS = gate_trick_summary()   # numbers the gate lessons quote, from the bundled study (not written by hand)

LESSONS: tuple[Lesson, ...] = (
    Lesson("sharing", "Weakly related tasks (p = 0.2), 5 seeds: one shared bottom, or a gate per task?",
           dict(preset="lesson", sweep_arch=("Shared-Bottom", "MMoE"), sweep_corr=(0.2,), seeds=5),
           page="sweep", do="Press 'Run the sweep' (2 models x 5 seeds at p = 0.2) and read the 'Seed by seed' table.",
           predicts="MMoE ends with the lower test loss on at least 3 of the 5 seeds, though both models have the same "
                    "number of parameters.",
           see="In 'Seed by seed', MMoE's row against Shared-Bottom: 'won on' 3 or more of 5.",
           explanation="MMoE gives each task its own mix of experts; Shared-Bottom feeds both towers from one bottom. Why "
                       "Shared-Bottom loses is less obvious than it looks. " + claim("sharing-gap").text() + " The Correlation "
                       "sweep page runs the control too: add p = 1 to the correlations. Its trainability histograms show the "
                       "spread, and " + claim("poor-runs").text()[0].lower() + claim("poor-runs").text()[1:],
           answers=("Shared-Bottom: one shared bottom does better on most seeds",
                    "MMoE: a gate per task does better on most seeds",
                    "Neither: they end level"), expected=1,
           check=wins_on_most("mmoe", "shared_bottom")),
    Lesson("mixtures", "Lower the correlation to 0.2: which mixture suffers, OMoE or MMoE?",
           dict(preset="lesson", arch=("OMoE", "MMoE"), corr=0.2), hide=("arch",),
           predicts="MMoE's final test loss is below OMoE's.",
           see="OMoE's dashed test curves flatten above MMoE's.",
           explanation="OMoE has one gate: every task gets the same mix of experts, so weakly related tasks must share one "
                       "representation. MMoE's gate per task lets each task pick its own experts. " + claim("mixtures-gap").text()
                       + " One run can still go the other way, so compare over seeds on the Correlation sweep page. In the "
                       "paper's own setting every model fits the tasks almost perfectly and the difference is tiny "
                       "(docs/EXPERIMENTS.md).",
           answers=("OMoE suffers more: MMoE ends with the lower loss",
                    "MMoE suffers more: OMoE ends with the lower loss"), expected=0,
           check=lower_loss("mmoe", "omoe")),
    Lesson("related-tasks", "Small experts (2 of 2 units): does every model do worse when the tasks are unrelated?",
           dict(preset="lesson", experts=2, hidden=2, sweep_arch=("Shared-Bottom", "OMoE", "MMoE"), sweep_corr=(1.0, 0.0), seeds=5),
           page="sweep", do="Press 'Run the sweep' (3 models x 2 correlations x 5 seeds) and compare each model's line at p = 0 "
                            "and p = 1.",
           predicts="Every model's test loss is higher at p = 0 (unrelated tasks) than at p = 1 (identical tasks) on "
                    "most of the 5 seeds, the same seed at both.",
           see="In 'Each model at p = 0 against p = 1, seed by seed', every model's 'rose on' is 3 or more of 5.",
           explanation="The MMoE paper's first finding (Ma et al., KDD 2018, section 5.2, Fig. 4) is that every model does "
                       "worse as the tasks' correlation falls. " + claim("lesson-preset").text() + " "
                       + claim("small-models").text(),
           answers=("Yes: every model does worse on unrelated tasks",
                    "No: the mixtures of experts do not, only Shared-Bottom",
                    "No: unrelated tasks are no harder"), expected=0,
           check=rises_on_most_seeds()),
    Lesson("how-many-seeds", "MMoE against OMoE at p = 0.2, over 10 seeds: does the better model win every time?",
           dict(preset="lesson", sweep_arch=("OMoE", "MMoE"), sweep_corr=(0.2,), seeds=10),
           page="sweep", do="Press 'Run the sweep' (10 seeds at p = 0.2) and read the 'Seed by seed' table under your sweep.",
           predicts="MMoE beats OMoE on more than half of the 10 seeds but not on all of them, and its gain swings from seed "
                    "to seed by more than the gain itself.",
           see="In 'Seed by seed', the row of MMoE against OMoE: 'won on' between 6 and 9 of 10, 'spread' larger than 'mean "
               "gain', and 'seeds needed' above 6.",
           explanation="Every seed draws new tasks and a new start, so one run is one sample of a noisy comparison. How many "
                       "seeds a difference needs depends on how it compares with its spread from seed to seed. "
                       + claim("how-many-seeds").text() + " So a 0.001 AUC or 0.01 MSE lead seen on one run says little "
                       "until its spread is known.",
           answers=("Yes: MMoE wins on all 10 seeds",
                    "Mostly: MMoE wins on more than half of the seeds, not all",
                    "No: OMoE wins on most seeds"), expected=1,
           check=wins_most_not_all("mmoe", "omoe")),
    Lesson("negative-transfer", "Two unrelated tasks (p = 0) on a Shared-Bottom of 4 units: does training task 1 beside task 0 hurt task 0?",
           dict(tasks=2, corr=0.0, hidden=4, samples=10_000, epochs=10, transfer_arch="Shared-Bottom", seeds=5),
           page="transfer", do="Press 'Run the study' (Shared-Bottom with both tasks, with each task alone and single-task "
                               "models, 5 seeds) and read the table under your study.",
           predicts="Task 0's test loss is higher with task 1 beside it than without task 1 on at least 3 of the 5 seeds.",
           see="In the table under your study, task 0's row: 'task 1 left out' ends in 3, 4 or 5 of 5 (the seeds on "
               "which task 1 hurt it). Then set the correlation to 1 (identical tasks) and run it again.",
           explanation="Negative transfer is a task doing worse because another task trains beside it. Here both tasks "
                       "go through one bottom of 4 units, and unrelated tasks need different features from it. "
                       + claim("negative-transfer").text() + " The architecture is a knob of the study: try MMoE, "
                       "which gives each task its own mix of experts, and see whether the harm stays.",
           answers=("Yes: task 0 does worse with task 1 beside it",
                    "No: task 1 helps task 0",
                    "No: it makes no difference"), expected=0,
           check=hurt_on_most("task 0", "task 1")),
    Lesson("census", "Real data: do the mixtures beat Shared-Bottom on census income?",
           dict(source="census-income:1", arch=("Shared-Bottom", "MMoE"), samples=50_000, epochs=3), hide=("arch", "source"),
           predicts="MMoE's and Shared-Bottom's test AUC on income end within 0.005 of each other.",
           see="Both models' test curves settle together; in the Test metrics table their income AUCs differ only in the third decimal.",
           explanation="Census income is the MMoE paper's real benchmark: predict income > $50K, with 'never married' as "
                       "the second task (label correlation 0.18). In the paper's "
                       "table every working model, Shared-Bottom included, lands within about 0.005 AUC of the others "
                       "(Tensor-Factorization failed there). Here it is closer still, and not in the paper's order. "
                       + claim("census").text(),
           answers=("Yes: MMoE clearly beats Shared-Bottom",
                    "No: they end within 0.005 AUC of each other",
                    "No: Shared-Bottom clearly beats MMoE"), expected=1,
           check=auc_gap_below("mmoe", "shared_bottom", "income > 50K", 0.005)),
    Lesson("collapse", "Turn off HoME's expert normalisation: what happens to the experts?",
           dict(arch=("HoME",), norm=False, samples=20_000), hide=("arch",),
           predicts="At least a fifth of HoME's expert outputs are exactly 0 and some of its units are dead, but no expert "
                    "collapses (over 90% of its outputs 0).",
           see="Under Expert sparsity: red bars around two fifths (outputs exactly 0), short grey bars (dead units), and no "
               "bar up to the dashed 90% line.",
           explanation="Without the switch HoME's experts are ReLU layers without batch normalisation. A ReLU unit outputs 0 "
                       "wherever its input is negative, so many zeros are ordinary. A unit that is 0 for every input is "
                       "dead. With the switch on (batch norm + Swish) no output is exactly 0. HoME (Kuaishou) calls an "
                       "expert collapsed when over 90% of its outputs are 0. " + claim("expert-zeros").text() + " This small "
                       "model shows dead units, not HoME's collapse. The switch changes two things at once, the activation and the "
                       "normalisation, so this lesson cannot say which of them makes the zeros. Compare on the HoME ablation page.",
           answers=("Many outputs become exactly 0 and some units die, but no whole expert collapses",
                    "Whole experts collapse (almost all of their outputs 0)",
                    "Nothing: the experts look as before"), expected=0,
           check=zeros_without_collapse("home", 0.2)),
    Lesson("sparse", "Sparse tasks (5% positives) next to dense ones: do they ignore their own experts, as HoME reports?",
           dict(arch=("HoME",), tasks=4, groups=True, corr=0.9, between=0.1, dense=(0, 2), sparse=(1, 3), rate=0.05,
                experts=4), hide=("arch",),
           predicts="HoME's self-gate supplies over a third of every task's expert mix, sparse and dense tasks alike.",
           see="On Inside the experts, 'Own vs shared': a light green 'own (self-gate)' part of about 0.45 in every task's "
               "bar. Whether the sparse tasks' whole 'own' part is shorter than the dense tasks' changes from seed to seed.",
           do="Press Play, let it finish, then open Inside the experts.",
           explanation="A sparse task gets few positive labels. HoME (Kuaishou) reports that such tasks come to ignore their "
                       "own experts (expert underfitting) and adds a self-gate, a second gate over a task's own experts whose "
                       "weights are added to the mix, to keep them in use. " + claim("sparse-own").text() + " Two task groups, "
                       "each with a dense and a sparse binary task.",
           answers=("Yes: the sparse tasks ignore their own experts",
                    "No: the self-gate supplies over a third of every task's mix, sparse and dense alike"), expected=1,
           check=self_gate_share_at_least("home", 1 / 3)),
    Lesson("degradation", "Switch off HoME's hierarchy mask: does one task take over the shared experts?",
           dict(arch=("HoME",), tasks=4, groups=True, corr=0.9, between=0.1, dense=(0, 2), sparse=(1, 3), rate=0.05,
                experts=4, mask=False), hide=("arch",),
           predicts=f"At most a quarter of HoME's shared experts are taken over (one gate holds over {TAKEN_OVER:.0%} of what "
                    "reaches the expert), even without the mask.",
           see=f"On Inside the experts, 'Who uses the shared experts': in most bars no colour reaches past the dashed "
               f"{TAKEN_OVER:.0%} line, in a few one does. Then switch the mask on and play again.",
           do="Press Play, let it finish, then open Inside the experts.",
           explanation="HoME (Kuaishou) reports expert degradation: shared experts that end up serving a single task, so "
                       "they are shared in name only. Its hierarchy mask lets each task's gate see only the global experts, "
                       "its own group's and its own, which is meant to keep that from happening. In this small model the "
                       "takeover stays rare with the mask off. " + claim("ablation-mask").text(),
           answers=("Yes: one task takes over most of the shared experts",
                    "No: at most a quarter of the shared experts are taken over"), expected=1,
           check=taken_over_at_most("home", 0.25)),
    Lesson("learning-rate", "Raise the learning rate to 0.1 during training: what breaks?",
           dict(arch=("MMoE",)), live=(200, "lr", 0.1),
           predicts="After the change, MMoE's training loss rises by at least half (or becomes NaN).",
           see="The solid (training) curves jump up when the rate changes.",
           do="Press Play, and after about 200 steps move the learning rate to 0.1 while it trains.",
           explanation="Adam's steps scale with the learning rate: at 0.1 they overshoot, the loss jumps and may become "
                       "NaN, in which case the run stops and says at which step.",
           answers=("The training loss jumps up (or becomes NaN)",
                    "Training just gets faster",
                    "Nothing visible"), expected=0,
           check=jumps_after("mmoe", 200, 1.5)),
    Lesson("temperature", "Gate temperature 0.25: how many experts does each sample use?",
           dict(arch=("MMoE",), lr=0.03, samples=20_000, epochs=15, temp=0.25), hide=("arch",),
           predicts="By the end, over half of the samples get more than 0.9 of their gate weight from a single expert.",
           see="Under Gate polarisation the lines fall towards 0. Then set the temperature to 4 and play again: the lines "
               "stay high (about 0.8 to 0.9) and hardly any sample goes to one expert.",
           explanation="The temperature divides each gate's logits before the softmax. Below 1 it widens the gaps between "
                       "them, so a sample's weight piles onto its top expert: the gate polarises. Above 1 it narrows the "
                       "gaps and keeps the mix spread. (The MMoE practice notes describe a scale above 1 that narrows the "
                       "gaps: true when the logits are divided by it, as here; multiplied, it would sharpen.) This lesson "
                       f"trains at a learning rate of 0.03, where even plain MMoE sends {TRICKS.samples_polarised['plain MMoE']:.0%} "
                       f"of the samples to one expert; over {len(gate_tricks())} seeds, "
                       f"{TRICKS.samples_polarised['temperature 0.25']:.0%} at temperature 0.25 and "
                       f"{TRICKS.samples_polarised['temperature 4']:.0%} at 4 (the bundled gate-trick study, docs/EXPERIMENTS.md, section 7).",
           answers=("Mostly one expert (over 0.9 of a gate's weight)",
                    "A few experts, with the weight spread",
                    "All of the experts about equally"), expected=0,
           check=polarisation_at_least("mmoe", "sample_polarised", 0.5)),
    Lesson("shared-input", "One shared layer in front of MMoE's experts: what do the gates do?",
           dict(arch=("MMoE",), lr=0.03, samples=20_000, epochs=15, shared_in=32), hide=("arch",),
           predicts="MMoE's gates end up giving more than 40% of their weight, averaged over samples, to one expert "
                    "(about a quarter without the layer).",
           see="Gate weights: in each gate's row one cell is far darker than the rest (an even spread would give each of "
               "the 8 experts an eighth).",
           explanation="The MMoE practice notes suggest a shared input layer between the input and the experts. With it, "
                       "every expert reads the same learned 32 features instead of the raw input, and in our runs the gates "
                       f"then pile onto one expert: the favourite gets {TRICKS.top_weight['shared input layer (32)']:.0%} of a "
                       f"gate's weight on average over {len(gate_tricks())} seeds, against {TRICKS.top_weight['plain MMoE']:.0%} "
                       "without the layer (the bundled gate-trick study, docs/EXPERIMENTS.md, section 7). The experts are no longer different "
                       "views of the input, so a gate has little reason to mix them: this is gate polarisation, which gate "
                       "dropout and the temperature are meant to fight. " + claim("shared-input").text() + " Try the "
                       "temperature at 4 with the layer on, and compare.",
           answers=("They lean on one expert (over 40% of their weight)",
                    "They stay spread over the experts, as without the layer"), expected=0,
           check=polarisation_at_least("mmoe", "top_weight", 0.4)),
    Lesson("weightings", "A regression task beside a sparse one: does UPGrad or PCGrad beat a fixed weight tuned by hand?",
           dict(**{k: v for k, v in WEIGHTING_SETTINGS[WEIGHTED].items() if k in knobs.PAGE_KNOBS["playground"]},
                arch=("MMoE",), weightings=("fixed",) + RIVALS, tw=TUNED_WEIGHT),
           hide=("arch", "weightings"),
           predicts=f"The fixed weight ({TUNED_WEIGHT:g} on task 0, tuned on the validation split in the bundled study) ends "
                    "with the lowest test losses: each of equal weighting's, UPGrad's and PCGrad's, over its and averaged "
                    "over the two tasks, is above 1.",
           see="Under 'Test metrics', when the race ends: on most seeds (not on every one) the log loss of task 1, the "
               "sparse task, is lowest in the row 'MMoE · fixed'. Choose an entry under 'look inside' to see the weights "
               f"it used in 'Loss weights': fixed's flat at {TUNED_WEIGHT:g} and 1, equal's and PCGrad's at 1 (PCGrad "
               "changes the gradients, not the weights), UPGrad's its weight on each task's gradient, step by step.",
           explanation="A loss weighting decides how the tasks' gradients are mixed in the parameters they share. Practitioners "
                       "report that the adaptive ones, which change the weights as training goes, lose to a fixed weight tuned "
                       "by hand (LibMTL issue #39). Here task 0 is a regression task and task 1 a binary task with 5% positives, "
                       "so their losses differ in kind and size. " + claim("tuned-weight").text() + " "
                       + claim("uncertainty-wins").text() + " With Adam a constant factor on a task's loss leaves the steps "
                       "of that task's own tower unchanged (Adam divides each step by the gradient's running size), so a weight "
                       "acts on the shared experts only. The Playground's expander 'Does any weighting beat a tuned fixed weight?' has "
                       "the whole study; to race other weightings, open the Playground without the lesson.",
           answers=("No: the tuned fixed weight ends with the lowest losses",
                    "Yes: UPGrad or PCGrad ends lower",
                    "All four end the same"), expected=0,
           check=lowest_losses(f"mmoe{ENTRY}fixed", tuple(f"mmoe{ENTRY}{w}" for w in RIVALS))),
    Lesson("few-clicks", "Few clicks (1% of 20,000 impressions, no hidden intent): does training on every impression help CVR?",
           dict(source="funnel", arch=("CVR on clicks", "ESMM", "ESCM2-IPS"), samples=20_000, ctr=0.01, bias=0.0),
           hide=("arch", "source"),
           predicts="ESMM ranks conversions better than CVR on clicks: its CVR AUC on all impressions ends higher.",
           see="Under 'CVR quality', ESMM's solid CVR AUC line (all impressions) ends above CVR on clicks' solid line. Then "
               "set the click rate to 5% and the samples to 100,000 and play again.",
           explanation="A CVR model answers: had this impression been clicked, would it convert? CVR on clicks learns that "
                       "from the clicked impressions only, here about 200 of them with 20 conversions. ESMM learns it through "
                       "pCTR x pCVR on every impression, and ESCM2 adds the clicked impressions weighted by 1 / pCTR, so that "
                       "they stand for all impressions (Wang et al., SIGIR 2022). " + claim("funnel-sparsity").text() + " " + claim("funnel-relatedness").text(),
           answers=("Yes: ESMM ranks conversions better than CVR on clicks",
                    "No: CVR on clicks ranks them better"), expected=0,
           check=higher_cvr_auc("esmm", "cvr_on_clicks")),
    Lesson("funnel", "A hidden reason to click and to buy (intent 2): can any model fix what it does to the CVR?",
           dict(source="funnel", arch=("CVR on clicks", "ESMM", "ESCM2-IPS"), samples=50_000, bias=2.0), hide=("arch", "source"),
           predicts="Every model expects at least 1.5 times as many conversions on all impressions as truly happen.",
           see="Under 'CVR quality', every model's solid calibration line (all impressions) ends above 1.5. Then set the "
               "hidden intent to 0 and play again: in the bundled study the solid lines then end below 1.",
           explanation="A CVR model learns from clicked impressions, because only they can convert, but it ranks every "
                       "impression. Here a hidden intent makes people both click and convert: clicked impressions convert "
                       "more than their features say, and the models carry that rate to impressions nobody clicked. Measured "
                       "on clicks alone, as a real system must, CVR on clicks looks fine; only the synthetic truth shows the "
                       "gap. " + claim("hidden-cause").text(),
           answers=("No: every model expects far too many conversions",
                    "Yes: ESCM2's correction fixes it",
                    "Yes: ESMM fixes it"), expected=0,
           check=every_model_overestimates(1.5)),
)


def lesson(key: str) -> Lesson:
    return next(l for l in LESSONS if l.key == key)


# ------------------------------------------------------------------ the lesson check

@dataclass
class Result:
    lesson: Lesson
    default: Verdict
    seeds: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def share(self) -> float:
        return float(np.mean([v.held for v in self.seeds])) if self.seeds else float("nan")

    @property
    def effect(self) -> Effect:
        """The check's margin on the default seed and every other seed."""
        return Effect.of([v.effect for v in (self.default, *self.seeds)], self.default.unit)

    @property
    def ships(self) -> bool:
        """Held on the default seed; over other seeds, held on SHIP_SHARE of them with margins beyond chance."""
        return self.default.held and (not self.seeds or (self.share >= SHIP_SHARE and self.effect.beyond_chance))


def play(lesson: Lesson, seed: int | None = None, backend=None):
    """Run a lesson as its page does: a race played to the end (the live change included; its RunViews), a
    sweep (its final losses) or a transfer study (its runs); for the studies `seed` is the first seed of the block."""
    from .experiments import final_loss as sweep_losses
    from ..live import InProcess, Race, run_job

    if lesson.page == "sweep":
        return sweep_losses(run_job(backend or InProcess(), "sweep", **builders.sweep_args(lesson.full_settings(seed))))
    if lesson.page == "transfer":
        return run_job(backend or InProcess(), "transfer", **builders.transfer_args(lesson.full_settings(seed))).runs
    race = Race(backend or InProcess(), lesson.full_settings(seed))
    try:
        if lesson.live is not None:
            step, name, value = lesson.live
            race.step(step)
            if name != "lr":
                raise ValueError(f"a lesson can change only live knobs while it trains, not {name}")
            race.set_lr(value)
        while not race.done and not race.problem:
            race.step(500)
        if race.problem:
            raise RuntimeError(f"the lesson's race stopped: {race.problem}")
        return race.runs
    finally:
        race.close()


def check(lesson: Lesson, seeds: int = 0, backend=None, first_seed: int = 1) -> Result:
    """The lesson's prediction on its own seed, and on `seeds` other seeds (first_seed, first_seed + 1, ...; a
    sweep lesson's are blocks of its seeds)."""
    if backend is None:
        from ..live import InProcess

        backend = InProcess()
        try:
            return check(lesson, seeds, backend, first_seed)
        finally:
            backend.close()
    started = time.perf_counter()
    result = Result(lesson, lesson.check(play(lesson, backend=backend)))
    result.seconds = time.perf_counter() - started
    settings = lesson.full_settings()
    for block in range(first_seed, first_seed + seeds):   # a study's other "seeds" are other blocks of seeds
        result.seeds.append(lesson.check(play(lesson, settings["seed"] + block * lesson.seeds_per_run, backend)))
    return result
