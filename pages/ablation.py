"""HoME ablation: switch HoME's components off and see what changes, against a pinned baseline."""

import time
from dataclasses import replace

import pandas as pd
import streamlit as st

import pages
from mtl_core.diagnostics.recorder import TAKEN_OVER
from mtl_core.settings.knobs import PAGE_KNOBS
from mtl_core.studies.bundled import home_ablation
from mtl_core.studies.claims import beat_full_home, claim
from mtl_core.studies.experiments import HOME_DATA, HOME_SWITCHES, HOME_TRAIN, ablation_summary
from mtl_core.view import charts
from pages import DATA
from pages.panel import knob_panel
from pages.studies import expected_seconds, run_study, study_took

pages.start_page()

MODEL = {"experts": 4, "group_experts": 2, "task_experts": 1}
COLUMNS = {"arm": "arm", "dense auc": "dense AUC", "sparse auc": "sparse AUC", "sparse gauc": "sparse GAUC",
           "model zero_fraction": "zeros", "model output_std_max_over_min": "scale spread",
           "model taken_over_share": "taken over", "dense own_expert_weight": "dense own", "sparse own_expert_weight": "sparse own"}
KEY = ("**dense / sparse**: the 50% and the 5% positive tasks (means over the two of each kind); **GAUC**: AUC within "
       "each user, weighted by the user's samples; **zeros**: share of expert outputs exactly 0; **scale spread**: the "
       "largest expert's output spread over the smallest's (std); **taken over**: share of shared experts that one "
       f"task's gate holds over {TAKEN_OVER:.0%} of; **own**: the share of a task's expert mix that comes from its own "
       "experts (self-gate included).")


def readable(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary table in words that fits 1280 px (the charts read the study's own column names). The share of
    collapsed experts (`dead_expert_share`) is said in the caption instead of a column."""
    return summary[list(COLUMNS)].rename(columns=COLUMNS).round(3)


def beaten_table(wins: pd.DataFrame, seeds: int) -> pd.DataFrame:
    """`claims.beat_full_home` as one cell per measure ("8 of 8, +0.0083"): four columns fit 1280 px."""
    table = wins[["arm"]].copy()
    for measure, words in (("dense auc", "dense AUC"), ("sparse auc", "sparse AUC"), ("sparse gauc", "sparse GAUC")):
        table[words] = [f"{n} of {seeds}, {gain:+.4f}" for n, gain in zip(wins[f"{measure} seeds"], wins[f"{measure} gain"])]
    return table


st.title("HoME ablation")
st.write("HoME (Kuaishou) adds four components to a two-level mixture of experts. The task set: two groups of tasks, "
         "each with one dense (50% positive) and one sparse (5% positive) binary task. Switch components off and "
         "compare with full HoME on the same data and seed.")

st.subheader(f"Bundled study: every switch off in turn ({home_ablation().seed.nunique()} seeds)")
st.caption("`python -m mtl_core experiment home-ablation --seeds 8`, run on 2026-12-02 on a 2-core CPU; see docs/EXPERIMENTS.md.")
bundled = pd.read_csv(DATA / "home_ablation.summary.csv")
st.dataframe(readable(bundled), hide_index=True)
st.caption(KEY)
left, mid, right = st.columns(3)
left.altair_chart(charts.ablation_chart(bundled, "model zero_fraction", "expert outputs exactly 0"))
mid.altair_chart(charts.ablation_chart(bundled, "model output_std_max_over_min", "scale spread (max/min)"))
right.altair_chart(charts.ablation_chart(bundled, "sparse auc", "sparse tasks' AUC"))
collapsed = bundled["model dead_expert_share"].max()   # not a column of the table: it is 0 in every arm so far
st.caption("Without expert normalisation a third of the outputs are exactly zero and the experts' scales spread apart "
           + ("(no expert has over 90% zeros in any arm: HoME's collapse does not appear here). " if collapsed == 0 else
              f"(in the worst arm {collapsed:.0%} of the experts have over 90% zeros, HoME's collapse). ")
           + "These are our measurements on synthetic data, not the paper's.")

st.subheader("Did removing a component make HoME worse?")
st.write(claim("ablation-feature-gate").text() + " " + claim("ablation-mask").text())
seeds = home_ablation().seed.nunique()
st.dataframe(beaten_table(beat_full_home(), seeds), hide_index=True)
st.caption(f"Each cell: on how many of {seeds} seeds the arm beat full HoME, then the mean difference from full HoME. A "
           f"component that helps should lose on most seeds when removed (few seeds better, a negative difference). With "
           f"{seeds} seeds a difference of a few thousandths on its own is within seed noise.")

st.subheader("Your setting against full HoME")
s = knob_panel("ablation", {"": list(PAGE_KNOBS["ablation"])}, where=st.container(), implied={"arch": ("HoME",)})
switches = {switch.field: s[switch.knob] for switch in HOME_SWITCHES}
samples, seed = s["samples"], s["seed"]
data, train = replace(HOME_DATA, samples=samples, holdout=5_000, seed=seed), replace(HOME_TRAIN, epochs=5)


def arm_of(arm: str, switches: dict):
    """One ablation arm, trained in a worker (this page only draws)."""
    return run_study("ablation_arm", f"training {arm}", arm=arm, switches=switches, seeds=1, data=data, train=train, model=MODEL)


off = [switch for switch in HOME_SWITCHES if not switches[switch.field]]
baseline = st.session_state.get("ablation_baseline")
arms = 1 if baseline is not None and baseline[0] == (samples, seed) else 2   # the baseline is trained once per data
kind, work = ("ablation", samples), arms * samples * train.epochs
seconds = expected_seconds(kind, work)
st.write(("Trains your setting against the full HoME already trained on this data" if arms == 1 else
          "Trains full HoME on this data, then your setting") +
         f" (4 global experts, 2 per group, 1 per task; {train.epochs} epochs on {samples:,} samples, seed {seed}): "
         + (f"at the speed of the last such run on this server about {seconds:.0f} s." if seconds else
            "each arm took 2 to 4 s at 10,000 samples (the first in a fresh worker the longest) and 8 s at 50,000 on the project's 2-core machine "
            "(`experiments.ablation_arm`, 2026-12-06, nothing else running)."))
if not off:
    st.caption("Every component is on: that is the baseline itself. Switch one or more off to compare.")
if st.button("Run against the pinned baseline", type="primary", disabled=not off):
    arm = "w/o " + ", ".join(switch.words for switch in off)
    started = time.perf_counter()
    if arms == 2:
        st.session_state.ablation_baseline = baseline = ((samples, seed), arm_of("HoME", {}))
    mine = arm_of(arm, switches)
    study_took(kind, work, started)
    runs = pd.concat([baseline[1], mine], ignore_index=True)
    st.session_state.ablation_result = ablation_summary(runs.drop(columns="task_kind", errors="ignore"), data).summary
if "ablation_result" in st.session_state:
    result = st.session_state.ablation_result
    st.dataframe(readable(result), hide_index=True)
    st.caption(KEY)
    left, right = st.columns(2)
    left.altair_chart(charts.ablation_chart(result, "model zero_fraction", "expert outputs exactly 0"))
    right.altair_chart(charts.ablation_chart(result, "sparse auc", "sparse tasks' AUC"))
    st.caption("One seed, 5 epochs: differences of a few thousandths of AUC are within seed noise.")
