"""Data: the synthetic task generator and the correlation it really produces, the census-income tasks, the funnel, or
the student's own file (own_data.py)."""

import numpy as np
import pandas as pd
import streamlit as st

import pages
from mtl_core.config import ConfigError
from mtl_core.data import census
from mtl_core.data.funnel import funnel_summary, FunnelConfig
from mtl_core.data.synthetic import DataConfig, label_correlation_curve, make_dataset
from mtl_core.models.registry import label
from mtl_core.settings import builders, knobs
from mtl_core.settings.knob import OWN_FILE
from mtl_core.studies.claims import claim
from mtl_core.view import charts
from pages import DATA
from pages.own_data import own_data
from pages.panel import knob_panel

pages.start_page()

st.title("Data")
st.write("Choose the data in the sidebar. Synthetic tasks come from the MMoE paper's generator: each task k has a weight vector w_k, and its label is "
         "`w_k·x + Σ sin(α_i w_k·x + β_i) + noise`. The knob **p** sets the cosine between the weight vectors; "
         "the sinusoids make the labels' real correlation differ from p, so we measure it.")

s = knob_panel("data", {"Tasks": knobs.names(["tasks", OWN_FILE])})
if knobs.own_file(s):
    own_data(s)
    st.stop()
try:
    data = builders.data_config(s)
except ConfigError as error:
    st.error(f"These settings do not make a valid task set: {error}")
    st.stop()


@st.cache_data(max_entries=2, show_spinner="Reading the census-income data...")
def census_summary(group: int):
    """Label correlation and positive rates of a census group (the encoded inputs stay out of the page process)."""
    return census.label_summary(group)


@st.cache_data(max_entries=8, show_spinner="Generating the funnel...")
def funnel_numbers(config: FunnelConfig) -> dict:
    """Pure and deterministic, so caching it shares nothing private between students."""
    return funnel_summary(config.dataset())


if isinstance(data, FunnelConfig):
    numbers = funnel_numbers(data)
    st.subheader("A click -> conversion funnel")
    st.write("Every row is an impression; it may be clicked, and only a clicked impression may convert (ESMM's "
             "setting, Ma et al., SIGIR 2018). A CVR model is usually trained on clicked impressions but used to rank "
             "all of them. The ESMM paper names two problems: the model is trained on one space (clicked impressions) "
             "and used on another (all of them), which it calls sample selection bias, and conversions are rare (data "
             "sparsity). Because these data are synthetic, every impression's true conversion propensity is known, so "
             "what each model gets wrong can be measured.")
    left, right = st.columns(2)
    left.altair_chart(charts.funnel_counts_chart(numbers))
    right.write(f"- click rate: **{numbers['click_rate']:.2%}** (asked {data.click_rate:.0%})\n"
                f"- conversion rate of clicked impressions: **{numbers['cvr_clicked']:.2%}** (asked {data.cvr_rate:.0%})\n"
                f"- true mean conversion propensity, clicked impressions: **{numbers['true_cvr_clicked']:.2%}**\n"
                f"- true mean conversion propensity, all impressions: **{numbers['true_cvr_all']:.2%}**")
    right.caption(claim("click-shift").text())
    st.caption("Training rows shown; validation and test have 10,000 impressions each. The CVR of all impressions is "
               "measured against each impression's potential conversion (had it been clicked), which only synthetic "
               "data can know. Race CVR on clicks, ESMM and ESCM2 on the Playground (the funnel lessons on the Start page).")
    st.stop()

if not isinstance(data, DataConfig):
    try:
        measured, rates = census_summary(data.group)
    except ConfigError as error:
        st.error(str(error))
        st.stop()
    st.subheader(f"Census income, task group {data.group}")
    st.write("The MMoE paper's real benchmark: the 1994-95 US Current Population Survey (UCI census-income, KDD), "
             "199,523 training rows and 99,762 test rows (half validation, half test), 40 columns of answers about a "
             "person. The columns that give the two labels are removed from the inputs.")
    left, right = st.columns(2)
    left.altair_chart(charts.matrix_chart(measured, "measured label correlation (training rows)", data.task_names))
    right.write("\n".join(f"- **{name}**: {rate:.1%} positive" for name, rate in zip(data.task_names, rates)))
    right.write(f"|correlation| between the two labels: **{abs(measured[0, 1]):.4f}** here on all training rows; "
                f"the paper measured **{census.PAPER_CORRELATION[data.group]:.4f}** on 10,000 samples.")
    st.caption("The app trains on the first rows (the 'training samples' knob) of a fixed shuffle of the training part "
               "and tests on 10,000 rows; `python -m mtl_core experiment census` uses every row (docs/EXPERIMENTS.md).")
    st.subheader("The MMoE paper's table, measured here")
    bundled = DATA / f"census_group{data.group}.summary.csv"
    if bundled.exists():
        table = pd.read_csv(bundled)
        st.dataframe(pd.DataFrame({
            "model": table.arch.map(label), "parameters": table.params, "setting chosen": table.setting,
            f"{data.task_names[0]} AUC, best": table.main_best, "mean": table.main_mean,
            f"{data.task_names[1]} AUC (best run)": table.aux_of_best, "paper: best": table.paper_best, "paper: mean": table.paper_mean,
        }), hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.4f") for c in (
            f"{data.task_names[0]} AUC, best", "mean", f"{data.task_names[1]} AUC (best run)", "paper: best", "paper: mean")})
        st.caption(f"`python -m mtl_core experiment census --group {data.group} --seeds 5 --csv data/census_group{data.group}.csv`, "
                   "run on 2026-11-26 on a 2-core CPU: every model's best of three settings (validation AUC of the main task), "
                   "retrained with 5 seeds on all 199,523 training rows, tested on 49,881 rows. The paper tuned thousands of "
                   "trials and retrained 400 times. docs/EXPERIMENTS.md section 6 says what reproduces.")
    st.stop()


@st.cache_data(max_entries=16, show_spinner="Generating tasks...")
def dataset_summary(config: DataConfig):
    """Pure and deterministic, so caching it shares nothing private between students."""
    d = make_dataset(config)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(d.train.y), size=min(1500, len(d.train.y)), replace=False)
    return d.target_cosine, d.label_correlation, d.positive_rate, pd.DataFrame(d.train.y[rows], columns=config.task_names)


@st.cache_data(max_entries=8, show_spinner="Measuring the curve (20 draws per point)...")
def curve(noise: float):
    return label_correlation_curve(np.linspace(-1, 1, 21).round(2), trials=20, samples=5_000, base=DataConfig(noise=noise))


target, measured, rates, points = dataset_summary(data)
left, right = st.columns(2)
left.altair_chart(charts.matrix_chart(target, "target cosine (the knob)"))
right.altair_chart(charts.matrix_chart(measured, "measured label correlation (training split)"))
st.caption("Left: what you asked for. Right: what the labels really do. For 0 < p < 1 the measured correlation sits "
           "below p and changes with the seed, because the sinusoids bend each task differently.")

if data.tasks >= 2:
    st.subheader("Task 0 against task 1")
    st.altair_chart(charts.scatter_chart(points.rename(columns={"task 0": "y0", "task 1": "y1"}), "y0", "y1"))
    st.caption("1,500 training samples. A tight diagonal means the tasks agree; a round cloud means they are unrelated.")
binary = [f"{n}: {r:.1%} positive" for n, r in zip(data.task_names, rates) if not np.isnan(r)]
if binary:
    st.write("Binary tasks (measured positive rate): " + "; ".join(binary))

st.subheader("Cosine p against measured label correlation (MMoE paper, Fig. 2)")
st.altair_chart(charts.label_correlation_chart(curve(data.noise)))
st.caption("Each point: 20 fresh datasets of 5,000 samples at your noise level, mean ± 2 std. The dashed diagonal is "
           "'measured = p': the label correlation rises with p but stays below it, and varies a lot between draws.")
