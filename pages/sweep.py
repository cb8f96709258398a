"""Correlation sweep: the MMoE paper's study, bundled (two settings) and rerunnable with your own grid."""

from pathlib import Path

import pandas as pd
import streamlit as st

import pages
from mtl_core import builders, charts, knobs
from mtl_core.claims import claim
from mtl_core.experiments import correlation_summary, final_loss, trainability_summary
from mtl_core.models.registry import label
from pages.common import knob_panel, lesson_banner, lesson_verdict, run_study

DATA = Path(__file__).resolve().parent.parent / "data"
BUNDLED = {
    "Lesson setting": ("lesson_sweep.csv", "lesson_sweep.csv",
                       "`python -m mtl_core sweep --preset lesson --correlations 1,0.5,0.2 --seeds 30 --holdout 5000 --csv "
                       "data/lesson_sweep.csv`, run on 2026-11-26 on a 2-core CPU: 16 experts of 8 units, 20,000 samples, 20 "
                       "epochs (the `lesson` preset, where MMoE's lead shows on one run), each run tested on 5,000 samples "
                       "(2,000 in the app) for steadier medians; docs/EXPERIMENTS.md section 5."),
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
s = knob_panel("sweep", {"Setting": ["preset", "samples", "epochs"], "Sweep": ["sweep_arch", "sweep_corr", "seeds", "seed"]})
lesson_banner("sweep")


def runs_of(file: str) -> pd.DataFrame:
    """One final loss per run (arch, correlation, seed) from a bundled CSV (tidy sweep rows, or runs already)."""
    frame = pd.read_csv(DATA / file)
    return frame[["arch", "correlation", "seed", "loss"]] if "loss" in frame else final_loss(frame.assign(split="test"))


def show(runs: pd.DataFrame, histogram_runs: pd.DataFrame) -> None:
    st.markdown("**Final loss against correlation**")
    st.caption("Line = median over seeds, band = middle half, dots = single runs. A model whose band is wide and high "
               "trains unreliably; one whose line is flat does not care how related the tasks are.")
    st.altair_chart(charts.sweep_chart(runs))
    st.dataframe(correlation_summary(runs).summary.round(4), hide_index=True)
    st.caption("`mean_rank`: the model's rank among those shown on the same data (same p and seed), 1 = best.")
    st.markdown("**Trainability: final loss over seeds**")
    st.caption("The MMoE paper's Fig. 5. A long right tail means many runs stuck in poor solutions. `poor` in the table is "
               "the share of runs more than twice the best loss any model reached on the same data.")
    st.altair_chart(charts.trainability_chart(histogram_runs))
    st.dataframe(trainability_summary(histogram_runs).summary.round(4), hide_index=True)


st.header("Bundled studies")
FINDINGS = {"Lesson setting": ("lesson-preset", "sharing-gap", "poor-runs")}   # claims (mtl_core/claims.py) about a study


for tab, (name, (sweep_file, histogram_file, note)) in zip(st.tabs(list(BUNDLED)), BUNDLED.items()):
    with tab:
        st.caption(note)
        for key in FINDINGS.get(name, ()):
            st.info(claim(key).text(), icon=":material/fact_check:")
        show(runs_of(sweep_file), runs_of(histogram_file))

st.header("Your own sweep")
st.write(f"With the sidebar's settings: {', '.join(s['sweep_arch']) or 'no architecture'} at p = "
         f"{', '.join(f'{p:g}' for p in sorted(s['sweep_corr'], reverse=True)) or '(none)'}, {s['seeds']} seed(s) from seed "
         f"{s['seed']}, the {s['preset']} preset ({s['experts']} experts of {s['hidden']} units, towers of {s['tower']}, "
         f"{s['samples']:,} samples, {s['epochs']} epochs; the Playground's knobs change the sizes). A 3 x 3 x 3 grid at 10,000 samples takes about 6 seconds on a 2-core server.")
if st.button("Run the sweep", type="primary", disabled=not s["sweep_arch"] or not s["sweep_corr"]):
    args = builders.sweep_args(s)
    bar, frames = st.progress(0.0, text="starting"), []
    for i, arch in enumerate(args["archs"]):
        text = f"training {label(arch)}: {len(args['correlations']) * s['seeds']} runs at once"
        bar.progress(i / len(args["archs"]), text=text)
        frames.append(final_loss(run_study("sweep", text, **{**args, "archs": [arch]})))   # in a worker
    bar.progress(1.0, text="done")
    st.session_state.sweep_runs = (knobs.restart_key(s), pd.concat(frames, ignore_index=True))
mine = st.session_state.get("sweep_runs")
if mine is not None:
    if mine[0] != knobs.restart_key(s):
        st.caption("These results are from earlier settings; press *Run the sweep* for the sidebar's.")
    show(mine[1], mine[1])
    lesson_verdict("sweep", mine[1] if mine[0] == knobs.restart_key(s) else None)
