"""Correlation sweep: the MMoE paper's study, bundled (two settings) and rerunnable with your own grid."""

import time

import pandas as pd
import streamlit as st

import pages
from mtl_core.models.registry import label
from mtl_core.settings import builders, rules
from mtl_core.studies.claims import claim
from mtl_core.studies.experiments import correlation_summary, final_loss, rise_by_seed, seed_by_seed, trainability_summary
from mtl_core.studies.lessons import lesson
from mtl_core.view import charts
from pages import DATA
from pages.lesson import lesson_banner, lesson_check, lesson_verdict
from pages.panel import knob_panel
from pages.studies import expected_seconds, run_study, study_took

BUNDLED = {
    "Lesson setting": ("lesson_sweep.csv", "lesson_sweep.csv",
                       "`python -m mtl_core sweep --preset lesson --correlations 1,0.5,0.2 --seeds 60 --first-seed 1000 "
                       "--holdout 5000 --csv data/lesson_sweep.csv`, run on 2026-12-02 on a 2-core CPU: 16 experts of 8 units, "
                       "20,000 samples, 20 epochs (the `lesson` preset), on seeds 1000 to 1059, which played no part in "
                       "choosing the preset; each run tested on 5,000 samples (2,000 in the app) for steadier medians; "
                       "docs/EXPERIMENTS.md section 5."),
    "MMoE paper setting": ("correlation_sweep.csv", "trainability.csv",
                           "`python -m mtl_core experiment correlation` and `... experiment trainability`, run on 2026-11-24 on a "
                           "2-core CPU: the paper's 8 experts of 16 units, 50,000 samples, 2,930 Adam steps, 5 and 20 seeds. Every "
                           "model fits these tasks almost perfectly, so the differences are small."),
}

pages.start_page()
st.title("Correlation sweep")
st.write("The MMoE paper's central experiment: train Shared-Bottom, OMoE and MMoE on tasks of different correlation, "
         "many times, and compare the final test loss. A grid of one architecture trains as one stacked model, so "
         "a whole sweep costs about as much as a few single runs.")
s = knob_panel("sweep", {"Setting": ["preset", "experts", "hidden", "samples", "epochs"], "Sweep": ["sweep_arch", "sweep_corr", "seeds", "seed"]})
lesson_banner("sweep")


def runs_of(file: str) -> pd.DataFrame:
    """One final loss per run (arch, correlation, seed) from a bundled CSV (tidy sweep rows, or runs already)."""
    frame = pd.read_csv(DATA / file)
    return frame[["arch", "correlation", "seed", "loss"]] if "loss" in frame else final_loss(frame.assign(split="test"))


def show_table(table: pd.DataFrame, columns: dict[str, str]) -> None:
    """A study's table in the page's words: architecture labels, the columns named (and only those), 4 decimals."""
    table = table.round(4)
    for column in ("arch", "better", "worse"):
        if column in table:
            table[column] = table[column].map(label)
    st.dataframe(table[list(columns)].rename(columns=columns), hide_index=True)


def chance(p: float) -> str:
    """A test's p as a student reads it: two significant digits, never a rounded 0."""
    return f"{p:.2g}"


def needed(seeds: float) -> str:
    return "no gain" if seeds == float("inf") else "over 1,000" if seeds > 1000 else f"{seeds:.0f}"


def chart_and_table(title: str, about: str, chart, table: pd.DataFrame, columns: dict[str, str]) -> None:
    st.markdown(f"**{title}**")
    st.caption(about)
    st.altair_chart(chart)
    show_table(table, columns)


def show(runs: pd.DataFrame, histogram_runs: pd.DataFrame) -> None:
    chart_and_table("Final loss against correlation",
                    "Line = median over seeds, band = middle half, dots = single runs. A model whose band is wide and high "
                    "trains unreliably; one whose line is flat does not care how related the tasks are.",
                    charts.sweep_chart(runs), correlation_summary(runs).summary,
                    {"arch": "model", "correlation": "p", "median": "median loss", "mean": "mean loss", "std": "spread (sd)",
                     "mean_rank": "mean rank", "count": "seeds"})
    st.caption("Loss: test MSE, mean over the two tasks. Mean rank: the model's rank among those shown on the same data "
               "(same p and seed), 1 = best.")
    if runs.seed.nunique() > 1 and runs.arch.nunique() > 1:
        st.markdown("**Seed by seed**")
        pairs = seed_by_seed(runs).assign(seeds_needed=lambda t: t.seeds_needed.map(needed), p=lambda t: t.p.map(chance))
        show_table(pairs, {"correlation": "p", "better": "model", "worse": "against", "won": "won on", "seeds": "of seeds",
                           "mean_gain": "mean gain", "spread": "spread (sd)", "p": "Wilcoxon p", "seeds_needed": "seeds needed"})
        st.caption("Each pair on the same data (same p and seed). Mean gain: the other model's loss minus this one's; "
                   "spread: its standard deviation over seeds. Wilcoxon p: how often chance alone would give gains this "
                   "one-sided (one-sided signed-rank test; under 0.05 counts as beyond chance). Seeds needed: how many "
                   "seeds a gain of this size and spread needs to be found 4 times in 5, (2.5 x spread / gain) squared.")
    if runs.seed.nunique() > 1 and runs.correlation.nunique() > 1:
        low, high = runs.correlation.min(), runs.correlation.max()
        st.markdown(f"**Each model at p = {low:g} against p = {high:g}, seed by seed**")
        show_table(rise_by_seed(runs).assign(p=lambda t: t.p.map(chance)),
                   {"arch": "model", "rose": "rose on", "seeds": "of seeds", "median_rise": "median rise", "p": "Wilcoxon p"})
        st.caption(f"A seed draws the same task directions, waves and inputs at every p, so the same seed at p = {low:g} "
                   f"and p = {high:g} differs only in how related the tasks are. Rose on: seeds where the loss was higher "
                   f"at p = {low:g}; median rise: of the loss at p = {low:g} over the loss at p = {high:g}, minus 1. The MMoE "
                   "paper finds that every model's loss rises as the tasks grow less related.")
    chart_and_table("Trainability: final loss over seeds",
                    "The MMoE paper's Fig. 5. A long right tail means many runs stuck in poor solutions. Poor runs: the "
                    "share of runs more than twice the best loss any model reached on the same data.",
                    charts.trainability_chart(histogram_runs), trainability_summary(histogram_runs).summary,
                    {"arch": "model", "correlation": "p", "min": "best", "q25": "quarter", "median": "median",
                     "q75": "three quarters", "max": "worst", "poor": "poor runs", "count": "seeds"})


st.header("Bundled studies")
FINDINGS = {"Lesson setting": ("chosen-seeds", "lesson-preset", "sharing-gap", "mixtures-gap", "poor-runs", "how-many-seeds")}   # claims (mtl_core/studies/claims.py) about a study


for tab, (name, (sweep_file, histogram_file, note)) in zip(st.tabs(list(BUNDLED)), BUNDLED.items()):
    with tab:
        st.caption(note)
        for key in FINDINGS.get(name, ()):
            st.info(claim(key).text(), icon=":material/fact_check:")
        show(runs_of(sweep_file), runs_of(histogram_file))

st.header("Your own sweep")


args = builders.sweep_args(s)
runs = len(args["archs"]) * len(args["correlations"]) * s["seeds"]
work, kind = runs * s["samples"] * s["epochs"], ("sweep", s["experts"], s["hidden"], s["tower"])
seconds = expected_seconds(kind, work)
TIMED = "how-many-seeds"   # a sweep lesson whose time the bundled lesson check measured
measured, timed = lesson_check().get(TIMED), lesson(TIMED).full_settings()
took = (f"At the speed of the last sweep at these sizes on this server it should take about {seconds:.0f} s." if seconds else
        "Its time is measured by the first sweep at these sizes on this server" + (
            f" (on the project's 2-core machine the '{TIMED}' lesson's {len(timed['sweep_arch']) * len(timed['sweep_corr']) * timed['seeds']} "
            f"runs at {timed['experts']} experts of {timed['hidden']} units, {timed['samples']:,} samples and {timed['epochs']} "
            f"epochs took {measured['seconds']:.0f} s)." if measured else "."))
st.write(f"With the sidebar's settings: {', '.join(s['sweep_arch']) or 'no architecture'} at p = "
         f"{', '.join(f'{p:g}' for p in sorted(s['sweep_corr'], reverse=True)) or '(none)'}, {s['seeds']} seed(s) from seed "
         f"{s['seed']}: {runs} runs of {s['samples']:,} samples and {s['epochs']} epochs, with {s['experts']} experts of "
         f"{s['hidden']} units and towers of {s['tower']} (the {s['preset']} preset; the Playground's knobs set the tasks' "
         f"difficulty). {took}")
if s["preset"] != "paper":
    st.caption(f"The {s['preset']} preset is on (a lesson or a link set it): it changed the sizes, samples and epochs above. "
               "Choose 'paper' under Setting for the MMoE paper's.")
if st.button("Run the sweep", type="primary", disabled=not s["sweep_arch"] or not s["sweep_corr"]):
    bar, frames, started = st.progress(0.0, text="starting"), [], time.perf_counter()
    for i, arch in enumerate(args["archs"]):
        text = f"training {label(arch)}: {len(args['correlations']) * s['seeds']} runs at once"
        bar.progress(i / len(args["archs"]), text=text)
        frames.append(final_loss(run_study("sweep", text, **{**args, "archs": [arch]})))   # in a worker
    study_took(kind, work, started)
    bar.progress(1.0, text="done")
    st.session_state.sweep_runs = (rules.restart_key(s), pd.concat(frames, ignore_index=True))
mine = st.session_state.get("sweep_runs")
if mine is not None:
    if mine[0] != rules.restart_key(s):
        st.caption("These results are from earlier settings; press *Run the sweep* for the sidebar's.")
    show(mine[1], mine[1])
    lesson_verdict("sweep", mine[1] if mine[0] == rules.restart_key(s) else None)
