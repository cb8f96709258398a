"""Correlation sweep: the MMoE paper's study, bundled and rerunnable."""

from pathlib import Path

import pandas as pd
import streamlit as st

import pages
from pages.common import knob_panel
from mtl_core import charts
from mtl_core.data import DataConfig
from mtl_core.experiments import correlation_summary, final_loss, trainability_summary
from mtl_core.models import ARCHITECTURES
from mtl_core.models.registry import label
from mtl_core.live import run_job, shared_backend
from mtl_core.training import TrainConfig

pages.start_page()
knob_panel("sweep", {})  # no settings here: a link that sets any gets a notice

DATA = Path(__file__).resolve().parent.parent / "data"

st.title("Correlation sweep")
st.write("The MMoE paper's central experiment: train Shared-Bottom, OMoE and MMoE on tasks of different correlation, "
         "many times, and compare the final test loss. A grid of one architecture trains as one stacked model, so "
         "a whole sweep costs about as much as a few single runs.")

source = st.radio("results", ["bundled (instant)", "run my own"], horizontal=True, key="sweep_source")
if source.startswith("bundled"):
    st.caption("Bundled: `python -m mtl_core experiment correlation` and `... experiment trainability`, run on "
               "2026-11-24 on a 2-core CPU (50,000 training samples, 2,930 Adam steps, 5 and 20 seeds); see data/README.md.")
    runs = pd.read_csv(DATA / "correlation_sweep.csv")[["arch", "correlation", "seed", "loss"]]
    histogram_runs = pd.read_csv(DATA / "trainability.csv")[["arch", "correlation", "seed", "loss"]]
else:
    with st.form("sweep"):
        archs = st.multiselect("architectures", ARCHITECTURES, default=["shared_bottom", "omoe", "mmoe"], format_func=label)
        correlations = st.multiselect("correlations", [0.0, 0.25, 0.5, 0.75, 0.9, 1.0], default=[0.0, 0.5, 1.0])
        seeds = st.slider("seeds per setting", 1, 10, 3)
        samples = st.select_slider("training samples", [2_000, 5_000, 10_000, 20_000], value=10_000)
        epochs = st.slider("epochs", 1, 30, 10)
        go = st.form_submit_button("Run the sweep")
    if go:
        if not archs or not correlations:
            st.error("Choose at least one architecture and one correlation.")
            st.stop()
        bar, frames = st.progress(0.0, text="starting"), []
        base, train = DataConfig(samples=samples, holdout=2_000), TrainConfig(epochs=epochs, eval_every=0, log_every=10_000)
        for i, arch in enumerate(archs):
            bar.progress(i / len(archs), text=f"training {label(arch)}: {len(correlations) * seeds} runs at once")
            rows = run_job(shared_backend(), "sweep", archs=[arch], correlations=sorted(correlations), seeds=range(seeds),
                           base=base, train_config=train)  # in a worker: this page only draws
            frames.append(final_loss(rows))
        bar.progress(1.0, text="done")
        st.session_state.sweep_runs = pd.concat(frames, ignore_index=True)
    if "sweep_runs" not in st.session_state:
        st.info("Choose a grid and press *Run the sweep*. A 3 x 3 x 3 grid at 10,000 samples takes about 6 seconds on a 2-core server.")
        st.stop()
    runs = histogram_runs = st.session_state.sweep_runs

st.subheader("Final loss against correlation")
st.caption("Line = median over seeds, band = middle half, dots = single runs. A model whose band is wide and high "
           "trains unreliably; one whose line is flat does not care how related the tasks are.")
st.altair_chart(charts.sweep_chart(runs))
st.dataframe(correlation_summary(runs).summary.round(4), hide_index=True)
st.caption("`mean_rank`: the model's rank among those shown on the same data (same p and seed), 1 = best.")

st.subheader("Trainability: final loss over seeds")
st.caption("The MMoE paper's Fig. 5. A long right tail means many runs stuck in poor solutions. `poor` in the table is "
           "the share of runs more than twice the best loss any model reached on the same data.")
st.altair_chart(charts.trainability_chart(histogram_runs))
st.dataframe(trainability_summary(histogram_runs).summary.round(4), hide_index=True)
