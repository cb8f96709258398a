"""The lessons, as data: a preset, a question, the outcome it predicts (a check on the finished race),
what a student should see, and the explanation.

A lesson's check runs on a finished race's `RunView`s (mtl_core.live), so the same function judges
the lesson check (`python -m mtl_core lessons`, which plays every lesson's race through the same
code as the Playground, on the default seed and on other seeds) and a student's own run on the page.
A lesson ships only if its prediction holds on the default seed and on at least 70% of other seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from . import builders, knobs
from .claims import Verdict, claim
from .diagnostics import COLLAPSED
from .models.registry import label

SHIP_SHARE = 0.7   # a lesson's prediction must hold on at least this share of other seeds


Check = Callable[[object], Verdict]   # on a race's runs (arch -> mtl_core.live.RunView) or a sweep's final losses


@dataclass(frozen=True)
class Lesson:
    """`settings`: the knob values the lesson sets over the defaults of its preset; `hide`: knobs it
    locks; `live`: a change the student makes while it trains (step, knob, value), which the check
    makes too; `predicts`: the checkable outcome in words; `see`: what the student should see."""

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
    seconds: float = 0.0   # the default seed's race on the project's 2-core machine (the lesson check measures it)

    def full_settings(self, seed: int | None = None) -> knobs.Settings:
        s = {**knobs.defaults(self.settings.get("preset", "paper")), **self.settings}
        return s if seed is None else {**s, "seed": seed}

    def link(self) -> dict[str, list[str]]:
        """The lesson as link parameters (what its button opens and a teacher can share)."""
        query = knobs.to_link(self.full_settings(), knobs.PAGE_KNOBS[self.page])
        return query | ({knobs.HIDE: [",".join(self.hide)]} if self.hide else {})


# ------------------------------------------------------------------ what a check can look at

def final_loss(run) -> float:
    """Mean over tasks of the latest test loss (MSE, or log loss for binary tasks)."""
    m = run.metrics
    if m is None:
        return float("nan")
    return float(m[m.metric.isin(["mse", "logloss"])].groupby("task")["value"].mean().mean())


def highest_loss(arch: str) -> Check:
    def check(runs):
        losses = {a: final_loss(r) for a, r in runs.items()}
        worst = max(losses, key=losses.get)
        return Verdict(worst == arch, "final test loss: " + ", ".join(f"{label(a)} {v:.4f}" for a, v in losses.items()))
    return check


def loss_ratio_at_least(a: str, b: str, factor: float) -> Check:
    def check(runs):
        ratio = final_loss(runs[a]) / final_loss(runs[b])
        return Verdict(ratio >= factor, f"{label(a)}'s final test loss is {ratio:.2f}x {label(b)}'s")
    return check


def loss_ratio_within(a: str, b: str, factor: float) -> Check:
    def check(runs):
        ratio = final_loss(runs[a]) / final_loss(runs[b])
        return Verdict(1 / factor <= ratio <= factor, f"{label(a)}'s final test loss is {ratio:.2f}x {label(b)}'s")
    return check


def zeros_without_collapse(arch: str, share: float) -> Check:
    """At least `share` of the expert outputs are exactly 0 and some units are dead (0 for every sample of the
    snapshot), yet no expert has collapsed (over COLLAPSED of its outputs 0, HoME's measure)."""
    def check(runs):
        experts = runs[arch].latest("experts")
        zero, dead, worst = float(experts.zero_fraction.mean()), float(experts.dead_units.mean()), float(experts.zero_fraction.max())
        return Verdict(zero >= share and dead > 0 and worst <= COLLAPSED,
                       f"{zero:.0%} of {label(arch)}'s expert outputs are exactly 0, {dead:.0%} of its units are dead, "
                       f"its sparsest expert has {worst:.0%} zeros")
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
                       f"own-expert share of the sparse tasks' mix {last.own[sparse].mean():.2f}, of the dense tasks' {last.own[~sparse].mean():.2f}")
    return check


def lower_loss(a: str, b: str) -> Check:
    def check(runs):
        la, lb = final_loss(runs[a]), final_loss(runs[b])
        return Verdict(la < lb, f"final test loss {label(a)} {la:.4f}, {label(b)} {lb:.4f}")
    return check


def auc_gap_below(a: str, b: str, task: str, gap: float) -> Check:
    """`a`'s and `b`'s final test AUC on `task` differ by less than `gap`."""
    def check(runs):
        aucs = {}
        for arch in (a, b):
            m = runs[arch].metrics
            aucs[arch] = float(m[(m.metric == "auc") & (m.task == task)].value.mean())
        return Verdict(abs(aucs[a] - aucs[b]) < gap, f"test AUC on {task}: {label(a)} {aucs[a]:.4f}, {label(b)} {aucs[b]:.4f}")
    return check


def polarised_samples_at_least(arch: str, share: float) -> Check:
    """In the last snapshot, `arch`'s gates give more than 0.9 of a sample's weight to one expert on at least
    `share` of the samples (mean over gates)."""
    def check(runs):
        polarisation = runs[arch].latest("polarisation")
        got = float(polarisation.sample_polarised.mean())
        return Verdict(got >= share, f"{label(arch)}'s gates send {got:.0%} of the samples to a single expert (over 0.9 of the weight)")
    return check


def top_weight_at_least(arch: str, share: float) -> Check:
    """In the last snapshot, `arch`'s gates give on average (over samples, then gates) at least `share` of their
    weight to their favourite expert."""
    def check(runs):
        polarisation = runs[arch].latest("polarisation")
        got = float(polarisation.top_weight.mean())
        return Verdict(got >= share, f"{label(arch)}'s gates give their favourite expert {got:.0%} of their weight on average")
    return check


def overestimates_unclicked(arch: str, factor: float, clicked_within: float) -> Check:
    """On a funnel: `arch`'s mean pCVR over all test impressions is at least `factor` times their true mean,
    while over clicked test impressions it is within a factor `clicked_within` of theirs."""
    def check(runs):
        m = runs[arch].metrics
        everywhere, clicked = (float(m[m.metric == f"cvr_calibration_{space}"].value.mean()) for space in ("all", "clicked"))
        held = everywhere >= factor and 1 / clicked_within <= clicked <= clicked_within
        return Verdict(held, f"{label(arch)}'s mean pCVR / true mean: {everywhere:.2f} on all impressions, {clicked:.2f} on clicked ones")
    return check


def more_poor_runs(a: str, b: str) -> Check:
    """On a sweep's final losses: `a` has more poor runs (over twice the best loss on the same data) than `b`."""
    def check(runs: pd.DataFrame):
        best = runs.groupby(["correlation", "seed"])["loss"].transform("min")
        poor = (runs["loss"] > 2 * best).groupby(runs["arch"]).sum()
        total = runs.groupby("arch").size()
        return Verdict(poor[a] > poor[b], f"poor runs: {label(a)} {poor[a]} of {total[a]}, {label(b)} {poor[b]} of {total[b]}")
    return check


def jumps_after(arch: str, step: int, factor: float) -> Check:
    """The training loss after the learning rate changed (at `step`, or where the student changed it)
    is at least `factor` times its value just before, or the run diverged."""
    def check(runs):
        run = runs[arch]
        step_changed = run.lr_changed_at if run.lr_changed_at is not None else step
        if run.status == "diverged":
            return Verdict(True, f"{label(arch)} diverged: {run.message}")
        train = pd.DataFrame([h for h in run.history if h["split"] == "train"])
        per_step = train.groupby("step")["loss"].mean()
        before, after = per_step[per_step.index <= step_changed].iloc[-1], per_step[per_step.index > step_changed].max()
        return Verdict(after >= factor * before, f"{label(arch)}'s training loss went from {before:.3f} to at most {after:.3g}")
    return check


# ------------------------------------------------------------------ the lessons

LESSONS: tuple[Lesson, ...] = (
    Lesson("sharing", "Weakly related tasks (p = 0.2): one shared bottom, or a gate per task?",
           dict(preset="lesson", arch=("Shared-Bottom", "MMoE"), corr=0.2), hide=("arch",),
           predicts="Shared-Bottom's final test loss is above MMoE's.",
           see="Shared-Bottom's dashed test curves flatten above MMoE's, though both models have the same number of parameters.",
           explanation="MMoE gives each task its own mix of experts; Shared-Bottom feeds both towers from one bottom. Why "
                       "Shared-Bottom loses is less obvious than it looks. " + claim("sharing-gap").text() + " The Correlation "
                       "sweep page runs the control (p = 1 beside p = 0.2) over several seeds; the 'poor runs' lesson looks "
                       "at the spread.",
           check=lower_loss("mmoe", "shared_bottom")),
    Lesson("mixtures", "Lower the correlation to 0.2: which mixture suffers, OMoE or MMoE?",
           dict(preset="lesson", arch=("OMoE", "MMoE"), corr=0.2), hide=("arch",),
           predicts="MMoE's final test loss is below OMoE's.",
           see="OMoE's dashed test curves flatten above MMoE's.",
           explanation="OMoE has one gate: every task gets the same mix of experts, so weakly related tasks must share one "
                       "representation. MMoE's gate per task lets each task pick its own experts, so it barely cares how related "
                       "the tasks are (the MMoE paper's central claim). The 'lesson' preset uses 16 small experts and 20,000 "
                       "samples, where the effect is visible on one run; in the paper's own setting every model fits the tasks "
                       "almost perfectly and the difference is tiny (docs/EXPERIMENTS.md).",
           check=lower_loss("mmoe", "omoe")),
    Lesson("poor-runs", "How many seeds does it take to see Shared-Bottom's poor runs?",
           dict(preset="lesson", sweep_arch=("Shared-Bottom", "MMoE"), sweep_corr=(1.0, 0.5, 0.2), seeds=5),
           page="sweep", do="Press 'Run the sweep' (5 seeds x 3 correlations) and look at the trainability histograms.",
           predicts="Shared-Bottom has more poor runs (over twice the best loss on the same data) than MMoE.",
           see="In the histograms Shared-Bottom's runs trail off to the right; MMoE's stay in a tight heap.",
           explanation="Some seeds leave Shared-Bottom in a poor solution, over twice the loss the best model reached on "
                       "the same data. " + claim("poor-runs").text() + " One run cannot show this: it takes several seeds.",
           check=more_poor_runs("shared_bottom", "mmoe")),
    Lesson("census", "Real data: do the mixtures beat Shared-Bottom on census income?",
           dict(source="census-income:1", arch=("Shared-Bottom", "MMoE"), samples=50_000, epochs=3), hide=("arch", "source"),
           predicts="MMoE's and Shared-Bottom's test AUC on income end within 0.005 of each other.",
           see="Both models' test curves settle together; in the Test metrics table their income AUCs differ only in the third decimal.",
           explanation="Census income is the MMoE paper's real benchmark: predict income > $50K, with 'never married' as "
                       "the second task (label correlation 0.18). In the paper's "
                       "table every working model, Shared-Bottom included, lands within about 0.005 AUC of the others "
                       "(Tensor-Factorization failed there). Here it is closer still, and not in the paper's order. "
                       + claim("census").text(),
           check=auc_gap_below("mmoe", "shared_bottom", "income > 50K", 0.005)),
    Lesson("collapse", "Turn off HoME's expert normalisation: what happens to the experts?",
           dict(arch=("HoME",), norm=False, samples=20_000), hide=("arch",),
           predicts="At least a fifth of HoME's expert outputs are exactly 0 and some of its units are dead, but no expert "
                    "collapses (over 90% of its outputs 0).",
           see="Under Expert sparsity: red bars around two fifths (outputs exactly 0), short grey bars (dead units), and no "
               "bar up to the dashed 90% line.",
           explanation="Without the switch HoME's experts are ReLU layers without batch normalisation. A ReLU unit outputs 0 "
                       "wherever its input is negative, so many zeros are ordinary: about 40% of the outputs on seeds 0 to 2. "
                       "A unit that is 0 for every input is dead: 5% to 8% of the units on the same seeds. With the switch on "
                       "(batch norm + Swish) no output is exactly 0. HoME (Kuaishou) calls an expert collapsed when over 90% "
                       "of its outputs are 0; no expert here comes near (at most 71% on those seeds): this small model shows "
                       "dead units, not HoME's collapse. The switch changes two things at once, the activation and the "
                       "normalisation, so this lesson cannot say which of them makes the zeros. Compare on the HoME ablation page.",
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
                       "weights are added to the mix, to keep them in use. Here the self-gate gives every task about the same "
                       "part of its mix, dense or sparse: it is not aimed at the sparse tasks. Do the sparse tasks lean less on "
                       "their own experts, self-gate included? On the default seed yes (0.54 of their mix against 0.87), but "
                       "only on 8 of seeds 1 to 10 and 6 of seeds 500 to 509: not a reliable effect in this small model. "
                       "With the self-gate off (the control) the sparse tasks' own share was above the dense tasks' on 2 of "
                       "seeds 0 to 2. Two task groups, each with a dense and a sparse binary task.",
           check=self_gate_share_at_least("home", 1 / 3)),
    Lesson("learning-rate", "Raise the learning rate to 0.1 during training: what breaks?",
           dict(arch=("MMoE",)), live=(200, "lr", 0.1),
           predicts="After the change, MMoE's training loss rises by at least half (or becomes NaN).",
           see="The solid (training) curves jump up when the rate changes.",
           do="Press Play, and after about 200 steps move the learning rate to 0.1 while it trains.",
           explanation="Adam's steps scale with the learning rate: at 0.1 they overshoot, the loss jumps and may become "
                       "NaN, in which case the run stops and says at which step.",
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
                       "trains at a learning rate of 0.03, where even plain MMoE sends a fifth of the samples to one expert; "
                       "over 5 seeds, 82% at temperature 0.25 and 2% at 4 (docs/EXPERIMENTS.md, section 7).",
           check=polarised_samples_at_least("mmoe", 0.5)),
    Lesson("shared-input", "One shared layer in front of MMoE's experts: what do the gates do?",
           dict(arch=("MMoE",), lr=0.03, samples=20_000, epochs=15, shared_in=32), hide=("arch",),
           predicts="MMoE's gates end up giving more than half of their weight, averaged over samples, to one expert.",
           see="Gate weights: each gate's row has one dark cell; Gate polarisation: the lines drop towards 0.",
           explanation="The MMoE practice notes suggest a shared input layer between the input and the experts. With it, "
                       "every expert reads the same learned 32 features instead of the raw input, and in our runs the gates "
                       "then pile onto one expert: the favourite gets 75% of a gate's weight on average over 5 seeds, "
                       "against 26% without the layer (docs/EXPERIMENTS.md, section 7). The experts are no longer different "
                       "views of the input, so a gate has little reason to mix them: this is gate polarisation, which gate "
                       "dropout and the temperature are meant to fight. " + claim("shared-input").text() + " Try the "
                       "temperature at 4 with the layer on, and compare.",
           check=top_weight_at_least("mmoe", 0.5)),
    Lesson("funnel", "Train CVR on clicks only: what happens on all impressions?",
           dict(source="funnel", arch=("CVR on clicks", "ESMM"), samples=50_000, bias=2.0), hide=("arch", "source"),
           predicts="CVR on clicks expects at least twice as many conversions on all impressions as truly happen, "
                    "while on clicked impressions it is within 35% of the truth.",
           see="Under 'CVR quality', CVR on clicks' solid calibration line (all impressions) ends well above 1 and its dashed "
               "line (clicked ones) near 1. Then set the hidden intent to 0 and play again: the solid line drops below 1.",
           explanation="A CVR model learns from clicked impressions, because only they can convert, but it ranks every "
                       "impression. Here a hidden intent makes people both click and convert: clicked impressions convert "
                       "more than their features say, and the model carries that rate to impressions nobody clicked. Measured "
                       "on clicks alone, as a real system must, it looks fine; only the synthetic truth shows the gap. ESMM "
                       "learns through pCTR x pCVR on every impression and ends lower on all impressions (about 2.9 times the "
                       "truth against 5.2, over 3 seeds), but not because it removes the bias: without the hidden intent it "
                       "underestimates (0.47), and its estimate grows with the intent about as fast as the naive model's. Its "
                       "pCVR is still the conversion rate of clicked impressions, learned another way (docs/EXPERIMENTS.md, "
                       "section 9).",
           check=overestimates_unclicked("cvr_on_clicks", 2.0, 1.35)),
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
    def ships(self) -> bool:
        return self.default.held and (not self.seeds or self.share >= SHIP_SHARE)


def play(lesson: Lesson, seed: int | None = None, backend=None):
    """Run a lesson as its page does: a race played to the end (the live change included; its RunViews),
    or a sweep (its final losses; `seed` is then the first seed of the block)."""
    from .experiments import final_loss as sweep_losses
    from .live import InProcess, Race, run_job

    if lesson.page == "sweep":
        return sweep_losses(run_job(backend or InProcess(), "sweep", **builders.sweep_args(lesson.full_settings(seed))))
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
        from .live import InProcess

        backend = InProcess()
        try:
            return check(lesson, seeds, backend, first_seed)
        finally:
            backend.close()
    started = time.perf_counter()
    result = Result(lesson, lesson.check(play(lesson, backend=backend)))
    result.seconds = time.perf_counter() - started
    settings = lesson.full_settings()
    stride = settings["seeds"] if lesson.page == "sweep" else 1   # a sweep lesson's other "seeds" are other blocks of seeds
    for block in range(first_seed, first_seed + seeds):
        result.seeds.append(lesson.check(play(lesson, settings["seed"] + block * stride, backend)))
    return result
