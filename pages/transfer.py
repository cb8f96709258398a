"""Does sharing help each task? Negative transfer: each task trained with all tasks, without each other
task, and alone; the bundled studies and your own task set."""

import time

import pandas as pd
import streamlit as st

import pages
from mtl_core.models.registry import label
from mtl_core.settings import builders, knobs, rules
from mtl_core.studies.experiments import transfer_summary
from mtl_core.view import charts
from pages import DATA
from pages.lesson import lesson_banner, lesson_verdict
from pages.panel import knob_panel
from pages.studies import expected_seconds, run_study, study_took

pages.start_page()
st.title("Does sharing help each task?")
st.write("Multi-task learning is worth it for a task only if the task does better with the others than alone. The MMoE "
         "practice notes' test for **negative transfer**: train the model on all tasks, then without one task at a time, "
         "on the same data and seed. If a task's loss falls when another task is left out, that other task was hurting it.")

GAIN = ("**MTL gain**: single-task loss minus the loss with all tasks (test MSE, or log loss for binary tasks). Green bars: "
        "sharing helped that task; red: it would have done better alone. The single-task models have one bottom per task, "
        "sized to MMoE's parameter count as in the MMoE paper.")
LEFT_OUT = ("**Leave one out**: how much each task's test loss fell when another task was left out of training. Red cells "
            "(the loss fell) mean the left-out task transferred negatively to the measured one; blue cells mean it helped.")


KEY = ("**alone**, **with all tasks**: mean test loss; **MTL gain**: alone minus with all tasks, then on how many seeds "
       "sharing beat the single-task model; **task j left out**: the mean rise in this task's loss from training task j "
       "beside it (above 0: task j hurt it), then on how many seeds it did.")


def readable(summary: pd.DataFrame) -> pd.DataFrame:
    """`transfer_summary` in the page's words, a count of seeds beside each mean (the charts read its own columns)."""
    table = summary[["arch", "task"]].rename(columns={"arch": "model"})
    table["alone"], table["with all tasks"] = summary.single_task.round(4), summary.all_tasks.round(4)
    of = lambda mean, count, seeds: "" if pd.isna(mean) else f"{mean:+.4f}, {int(count)} of {seeds}"
    table["MTL gain"] = [of(*row) for row in zip(summary.mtl_gain, summary.helped, summary.seeds)]
    for other in [c.removeprefix("without_") for c in summary.columns if c.startswith("without_")]:
        table[f"{other} left out"] = [of(*row) for row in zip(summary[f"without_{other}"], summary[f"hurt_by_{other}"], summary.seeds)]
    return table


def show(runs: pd.DataFrame) -> None:
    summary = transfer_summary(runs, list(dict.fromkeys(runs[runs.setting == "all tasks"].task)))
    summary["arch"] = summary["arch"].map(label)
    st.markdown(GAIN)
    st.altair_chart(charts.transfer_gain_chart(summary))
    st.markdown(LEFT_OUT)
    st.altair_chart(charts.leave_one_out_chart(summary))
    st.dataframe(readable(summary), hide_index=True)
    st.caption(KEY)


def helped(summary: pd.DataFrame) -> str:
    """Per architecture, on how many seeds sharing beat single-task training, task by task (from the runs shown)."""
    return "; ".join(f"{label(arch)} on {', '.join(str(n) for n in rows.helped)} of {rows.seeds.iloc[0]} seeds"
                     for arch, rows in summary.groupby("arch", sort=False))


BUNDLED = pd.read_csv(DATA / "transfer.csv")
st.header("Bundled study")
st.caption("`python -m mtl_core experiment transfer --seeds 10 --csv data/transfer.csv`, run on 2026-11-26 on a 2-core CPU: "
           "three tasks, tasks 0 and 1 related (p = 0.9), task 2 in its own group and unrelated to them (p = 0); 20,000 "
           "samples, 20 epochs, 16 experts of 8 units; means over 10 seeds. The mean loss with sharing is below the "
           "single-task loss for every task, MMoE's more than Shared-Bottom's, but a mean can come from a few seeds: "
           f"sharing beat single-task training for tasks 0, 1 and 2 with {helped(transfer_summary(BUNDLED, ['task 0', 'task 1', 'task 2']))}. "
           "Ten seeds do not show that Shared-Bottom's sharing helps here. The leave-one-out changes are small next to the spread "
           "between seeds (each agrees in sign on 4 to 8 of the 10 seeds), so read them as noise here (docs/EXPERIMENTS.md section 8).")
show(BUNDLED)

st.header("The seesaw across correlations")
st.caption("PLE's Fig. 7: per task, the MTL gain of each architecture at each correlation of two tasks (3 seeds each). "
           "A seesaw is one task gaining while the other loses. `python -m mtl_core experiment seesaw --csv data/seesaw.csv`, "
           "run on 2026-11-26 on a 2-core CPU.")
seesaw = pd.read_csv(DATA / "seesaw.summary.csv").assign(arch=lambda f: f.arch.map(label))
st.altair_chart(charts.seesaw_chart(seesaw))

st.header("Your task set")
s = knob_panel("transfer", {"Tasks": [n for n in knobs.PAGE_KNOBS["transfer"] if knobs.KNOBS[n].section == "tasks"],
                            "Study": ["transfer_arch", "experts", "hidden", "seeds", "epochs"]}, implied={"source": "synthetic"})
lesson_banner("transfer")
args = builders.transfer_args(s)
runs_each = 2 + s["tasks"]
work, kind = runs_each * s["seeds"] * s["samples"] * s["epochs"], ("transfer", s["transfer_arch"], s["tasks"], s["experts"], s["hidden"], s["tower"])
seconds = expected_seconds(kind, work)
st.write(f"{s['transfer_arch']} on your {s['tasks']} synthetic tasks (the sidebar; plain training, the tower of the "
         f"Playground's knobs): {runs_each} settings (all tasks, each task left out, single-task) x {s['seeds']} seed(s) from seed "
         f"{s['seed']}, {s['samples']:,} samples, {s['epochs']} epochs. Each setting's seeds train as one stacked model; "
         + (f"at the speed of the last such study on this server it should take about {seconds:.0f} s." if seconds else
            "MMoE on 3 tasks x 3 seeds at 10,000 samples and 10 epochs took 10 s on the project's 2-core machine "
            "(`experiments.transfer`, 2026-12-02, nothing else running)."))
if st.button("Run the study", type="primary", disabled=s["tasks"] < 2):
    started = time.perf_counter()
    study = run_study("transfer", f"training {runs_each} settings x {s['seeds']} seed(s) in a worker", **args)
    study_took(kind, work, started)
    st.session_state.transfer_runs = (rules.restart_key(s), study.runs)
if s["tasks"] < 2:
    st.info("Negative transfer needs at least two tasks: raise the number of tasks in the sidebar.")
mine = st.session_state.get("transfer_runs")
if mine is not None:
    if mine[0] != rules.restart_key(s):
        st.caption("These results are from earlier settings; press *Run the study* for the sidebar's.")
    show(mine[1])
    lesson_verdict("transfer", mine[1] if mine[0] == rules.restart_key(s) else None)
