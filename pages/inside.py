"""Inside the experts: what a trained (or training) model's gates and experts are doing."""

import pandas as pd
import streamlit as st

import pages
from mtl_core.config import ConfigError
from mtl_core.diagnostics.recorder import TAKEN_OVER
from mtl_core.models import build_plan
from mtl_core.settings import builders, knobs
from mtl_core.train.weighting import STATE_TITLES, WEIGHTING_NOTES
from mtl_core.view import charts, network
from pages.kept import load_runs, locker, model_download, shelf
from pages.panel import knob_panel

pages.start_page()
knob_panel("inside", {})  # no settings here: a link that sets any gets a notice

st.title("Inside the experts")
st.write("Pick a run from the Playground. Every chart is computed from snapshots of that run (every 50 steps, on "
         "512 validation samples); move the timeline to scrub back through training.")

with st.sidebar:
    st.header("Your runs")
    upload = st.file_uploader("Load runs (JSON from this app)", type=["json"])
    if upload is not None and st.session_state.get("loaded_upload") != upload.file_id:
        st.session_state.loaded_upload = upload.file_id
        load_runs(upload)
    kept = locker()
    index = kept.index()
    st.download_button("Download all runs (JSON)", kept.dump, "mtl-playground-runs.json",   # built when pressed
                       mime="application/json", disabled=not index)
    if kept.dropped:
        st.caption(f"This browser keeps your newest {len(index)} runs (at most {shelf().store.max_runs}, "
                   f"{shelf().store.max_locker_bytes / 1e6:.0f} MB); {kept.dropped} older ones were let go. Download runs to keep more.")

live = {r["id"]: r for r in kept.race.records()} if kept.race is not None else {}
run_steps = {**{entry.id: entry.step for entry in index}, **{rid: r["step"] for rid, r in live.items()}}

if not run_steps:
    st.info("No runs yet: train something in the Playground (or load a file in the sidebar).")
    st.stop()

chosen_id = st.selectbox("run", list(run_steps), index=len(run_steps) - 1,
                         format_func=lambda rid: f"{rid} · step {run_steps[rid]}" + (" · live" if rid in live else ""))
chosen = live.get(chosen_id) or kept.run(chosen_id)   # the live race's latest state wins over its archived copy
if chosen is None:
    st.info("That run is no longer kept (your newest runs replaced it); choose another.")
    st.stop()
model_download(chosen)
tables = {name: pd.DataFrame(rows) for name, rows in chosen["diagnostics"].items()}
if "gates" not in tables or tables["gates"].empty:
    st.info("This run has no snapshots yet: let it train for at least 50 steps.")
    st.stop()

steps = sorted(tables["gates"].step.unique())
step = st.select_slider("timeline: snapshot at step", steps, value=steps[-1]) if len(steps) > 1 else steps[0]
at = {name: frame[frame.step == step] for name, frame in tables.items() if "step" in frame}

st.subheader("The network")
st.caption("The run's network at this snapshot: each link is as wide as the gate's mean weight on that expert; experts are "
           "filled by their share of outputs that are exactly 0. Move the timeline to watch the gates settle.")
try:
    settings = {**knobs.defaults(chosen["settings"].get("preset", "paper")), **chosen["settings"]}
    data = builders.data_config(settings)
    plan = build_plan(builders.model_config(chosen["arch"], settings), data.task_names, data.task_groups)
except ConfigError as error:
    st.caption(f"This run's settings do not describe a network this app can draw: {error}")
else:
    st.altair_chart(charts.network_chart(network.frame(plan, data.task_names, at["gates"], at["experts"]), width=760))

st.subheader("Gate utilisation")
st.caption("PLE's expert-utilisation plot: each bar is the mean weight a gate gives an expert over the samples, the "
           "line ± one standard deviation. No expert at zero in an MMoE means it never discovers a task-specific split.")
st.altair_chart(charts.utilisation_bars(at["gates"]))

st.subheader("Expert output distributions")
st.caption("Box = middle half of each expert's outputs, whiskers 5–95%. Experts on very different scales are hard "
           "for a gate to weigh fairly (HoME's motivation for normalising them).")
st.altair_chart(charts.output_distribution(at["experts"]))

st.subheader("Sparsity")
st.caption("Per expert: outputs exactly 0 (ReLU's ordinary sparsity), nearly 0, and units that are 0 for every one of the "
           "512 samples (dead units; a run kept before this measure existed has no grey bar). HoME calls an expert "
           "collapsed when over 90% of its outputs are 0: the dashed line.")
st.altair_chart(charts.sparsity_bars(at["experts"]))



def section(title: str, caption: str, table: str, draw, missing: str) -> None:
    """A heading, what to look for, and the chart of one table at this snapshot (or why there is none)."""
    st.subheader(title)
    st.caption(caption)
    if at.get(table) is not None and len(at[table]):
        st.altair_chart(draw(at[table]))
    else:
        st.write(missing)


section("Who uses the shared experts", "Each shared expert's gate mass split by the gates that use it. One colour past the "
        f"dashed line ({TAKEN_OVER:.0%} of the mass) means one gate has taken the expert over (HoME's expert degradation).", "occupancy", charts.occupancy_chart,
        "This architecture has fewer than two gates sharing experts.")
section("Own vs shared experts", "The share of each task's expert mix that comes from its own experts (through its gate, and "
        "through HoME's self-gate, whose weights are added to the mix), its group's and the shared ones, sparse tasks "
        "first. HoME calls sparse tasks that lean little on their own experts expert underfitting.", "reliance", charts.reliance_chart,
        "This architecture has no task-specific gates.")

st.header("Over training")
learned = tables.get("polarisation")
if learned is not None and len(learned) and (learned.groupby(["level", "gate"]).entropy.max() > 0).any():
    st.subheader("Gate polarisation")
    st.caption("Per gate, the entropy of its weights divided by the most it could be (1 = it weighs its experts "
               "equally, 0 = it picks one expert for every sample). A line that falls to 0 is a gate polarising; the "
               "gate tricks (temperature, dropout, LayerNorm, small init, freezing) are meant to hold it up.")
    st.altair_chart(charts.gate_series_chart(learned, "entropy", "normalised entropy", (0, 1)))
    st.caption("The same gates from the other side: the share of each gate's mean weight that goes to its favourite "
               "expert. Low entropy with a high top share means every sample goes to the same expert (the gate has "
               "collapsed onto it: the polarisation YouTube reports, Zhao et al., RecSys 2019); low entropy with a low top share "
               "means each sample gets one expert, but not the same one.")
    st.altair_chart(charts.gate_series_chart(learned, "top_weight", "top expert's share of the mean weight", (0, 1)))
    if len(tables.get("drift", [])):
        st.subheader("Gate drift")
        st.caption("How far each gate's mean weights moved since the previous snapshot (Jensen-Shannon divergence; "
                   "0 = not at all). Gates that keep moving late in training swing between experts; frozen gates "
                   "drop to 0 from the step they are frozen.")
        st.altair_chart(charts.gate_series_chart(tables["drift"], "js_divergence", "JS divergence (nats)"))

st.subheader("Gradient conflict over training")
st.caption("Cosine between the tasks' gradients on the shared experts, on a fixed training batch. Near 1 the tasks pull "
           "together; below 0 they fight over the shared experts (the seesaw).")
if len(tables.get("conflict", [])):
    st.altair_chart(charts.conflict_chart(tables["conflict"]))
else:
    st.write("No shared experts, so no conflict to measure.")

task_names = list(dict.fromkeys(tables["gradients"].task)) if len(tables.get("gradients", [])) else []
if task_names and tables["gradients"]["value"].notna().any():
    st.subheader("Gradient norm per task")
    st.caption("The size of each task's gradient on the shared parameters. When one task's norm is many times the "
               "others', that task steers the shared experts; GradNorm's weights aim to even these out.")
    st.altair_chart(charts.task_series_chart(tables["gradients"], ["grad_norm"], {"grad_norm": "gradient norm, shared parameters"},
                                             task_names))
if len(tables.get("weighting", [])):
    weighting = chosen["settings"].get("weighting", "equal")
    st.subheader(f"Loss weights ({weighting})")
    st.caption(WEIGHTING_NOTES.get(weighting, ""))
    shown = [name for name in STATE_TITLES if name in set(tables["weighting"]["name"])]
    st.altair_chart(charts.task_series_chart(tables["weighting"], shown, STATE_TITLES, list(dict.fromkeys(tables["weighting"].task))))
