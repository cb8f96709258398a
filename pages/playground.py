"""Playground: race architectures on the same tasks and watch them learn, live."""

import json

import pandas as pd
import streamlit as st

import pages
from mtl_core import charts, knobs
from mtl_core.config import ConfigError
from mtl_core.device import available_devices
from mtl_core.diagnostics import expert_statistics, gate_utilisation
from mtl_core.models.registry import label
from pages.common import Race, keep, knob_panel, locker, record, settings_file, start_race

pages.start_page()

TICK = 0.1   # seconds from the end of one chart update to the start of the next (training runs meanwhile)
STEP = 50    # steps per press of "Step"

st.title("Playground")
st.write("Pick one or several architectures and race them on the **same tasks and seed**. "
         "Knobs in the sidebar that change the data or the models **restart** the race; knobs marked *(live)* "
         "apply while it runs, as in TensorFlow Playground. Finished (or interrupted) runs are kept for the "
         "*Inside the experts* page and can be downloaded.")

s = knob_panel("playground", {"Tasks": knobs.names(["tasks"]), "Models": knobs.names(["models"]),
                              "Training": knobs.names(["training"])})
with st.sidebar:
    found = available_devices()
    if s["device"] != "auto" and s["device"] not in found:
        st.warning(f"{s['device']} is not available on this server (available: {', '.join(found)}); using {found[0]}.")
    st.header("Share")
    settings_file()

if not s["arch"]:
    st.info("Choose at least one architecture in the sidebar.")
    st.stop()
race_settings = {**s, "device": s["device"] if s["device"] in ("auto", *found) else found[0]}
signature = json.dumps({name: value for name, value in race_settings.items() if not knobs.KNOBS[name].live}, sort_keys=True)


def archive(race: Race) -> None:
    """Keep every run of a race that learned something, so a knob change loses nothing."""
    with race.lock:
        keep([record(r, race_settings) for r in race.runs.values() if r.run.step > 0], update=True)


race: Race | None = locker().race
if race is not None and race.signature != signature:
    race.stop()
    archive(race)
    st.toast("Settings changed: the race restarted (the old runs are kept).")
    race = locker().race = None
if race is None:
    try:
        locker().races += 1
        race = locker().race = start_race(race_settings, signature, locker().races)
    except ConfigError as error:
        st.error(f"These settings do not make a valid task set: {error}")
        st.stop()
for live in race.runs.values():
    live.run.lr = s["lr"]  # live knob

play, pause, step, reset = st.columns(4)
if play.button("Play", icon=":material/play_arrow:", disabled=race.playing or race.done, width="stretch"):
    race.play()
    st.rerun()
if pause.button("Pause", icon=":material/pause:", disabled=not race.playing, width="stretch"):
    race.pause()
    archive(race)
    st.rerun()
if step.button(f"Step {STEP}", icon=":material/skip_next:", disabled=race.playing or race.done, width="stretch"):
    race.step(STEP)
    archive(race)
if reset.button("Reset", icon=":material/restart_alt:", width="stretch"):
    race.stop()
    archive(race)
    locker().race = None
    st.rerun()
playing = race.playing
archs = list(race.runs)


def thin(history: pd.DataFrame, points: int = 120) -> pd.DataFrame:
    """Keep at most about `points` rows per curve (and always its last) so the chart stays small."""
    curves = history.groupby(["arch", "task", "split"])
    position, size = curves.cumcount(), curves["step"].transform("size")
    stride = (size // points).clip(lower=1)
    return history[(position % stride == 0) | (position == size - 1)]


def inside_specs(live) -> tuple[dict, dict] | None:
    """Gate heatmap and sparsity chart of a run's latest snapshot, built once per snapshot (they only
    change every 50 steps, while the loss chart changes every update)."""
    trace = live.recorder.latest
    if trace is None:
        return None
    cache = st.session_state.setdefault("inside_specs", {})
    key = (race.signature, live.arch, len(live.recorder.tables["gates"]))
    if key not in cache:
        cache.clear()
        cache[key] = (charts.gate_heatmap(gate_utilisation(trace)).to_dict(),
                      charts.sparsity_bars(expert_statistics(trace)).to_dict())
    return cache[key]


@st.fragment(run_every=TICK if playing else None)
def live_view():
    race.alive()  # the training thread pauses itself when the page stops drawing
    if playing and not race.playing:  # finished (or paused itself): redraw the buttons
        archive(race)
        st.rerun()
    with race.lock:  # a consistent picture: the thread trains between draws
        history = pd.DataFrame([row for live in race.runs.values() for row in live.history])
        specs = inside_specs(race.runs.get(st.session_state.get("inside")) or next(iter(race.runs.values())))
        metrics = [live.metrics.assign(arch=live.arch) for live in race.runs.values() if live.metrics is not None]
    total = race.runs[archs[0]].run.total_steps
    cols = st.columns(len(race.runs))
    for col, live in zip(cols, race.runs.values()):
        col.progress(min(live.run.step / total, 1.0), text=f"{label(live.arch)}: step {live.run.step}/{total} · {live.status}")
        if live.message:
            col.error(live.message)

    st.subheader("Loss per task")
    st.caption("Solid = training loss, dashed = test loss (MSE for regression tasks, log loss for binary ones). "
               "Look for the model whose test curve flattens highest: it is the one that shares badly.")
    if len(history):
        st.altair_chart(charts.loss_chart(thin(history), race.data.tasks, total), key="loss_chart")
    else:
        st.info("Press Play (or Step) to start training.")

    st.selectbox("look inside", list(race.runs), format_func=label, key="inside")
    left, right = st.columns(2)
    with left:
        st.subheader("Gate weights")
        st.caption("Each row is a gate (usually one per task); each cell the mean weight it gives an expert. "
                   "Rows that look alike mean the tasks share; a row on one expert means a polarised gate.")
        if specs:
            st.vega_lite_chart(spec=specs[0], key="gate_heatmap")
    with right:
        st.subheader("Expert sparsity")
        st.caption("Share of each expert's outputs that are exactly zero (dead ReLU units) or nearly zero. "
                   "High bars are HoME's 'expert collapse'; Swish experts are never exactly zero.")
        if specs:
            st.vega_lite_chart(spec=specs[1], key="sparsity")
    if metrics and not playing:  # a table is costly to redraw several times a second
        st.subheader("Test metrics")
        st.caption("The latest evaluation on the held-out test split (shown while paused or finished).")
        table = pd.concat(metrics).pivot_table(index=["arch", "task"], columns="metric", values="value").reset_index()
        st.dataframe(table, hide_index=True)
        st.download_button("Download curves and metrics (CSV)", history.to_csv(index=False), "mtl-playground-curves.csv",
                           mime="text/csv")


live_view()
st.caption(f"While playing, training runs continuously in the background and the charts redraw {TICK:.1f} s after "
           "each update lands. Leaving the page pauses training.")
