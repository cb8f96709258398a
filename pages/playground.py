"""Playground: race architectures on the same tasks and watch them learn, live.

Training runs in a worker (mtl_core.live); this page only draws what the worker reported, TICK seconds
after each redraw, from chart specs built once per race (only the data changes between redraws).
"""

import pandas as pd
import streamlit as st

import pages
from mtl_core.config import ConfigError
from mtl_core.live import CADENCE, Race, shared_backend
from mtl_core.models import build_plan
from mtl_core.models.registry import label
from mtl_core.settings import builders, knobs, rules
from mtl_core.settings.knob import OWN_FILE
from mtl_core.studies.bundled import weightings_summary
from mtl_core.studies.claims import claim
from mtl_core.train.device import available_devices
from mtl_core.train.weighting import STATE_TITLES, WEIGHTING_NOTES
from mtl_core.view import charts, network
from pages import DATA
from pages.echo import code
from pages.kept import keep, locker, model_download, own_file
from pages.lesson import lesson_banner, lesson_verdict
from pages.panel import knob_panel, settings_file

STEP = 50    # steps per press of "Step"
WEIGHTING_COLUMNS = {"setting": "setting", "arch": "model", "weighting": "weighting", "gain": "MTL gain %",
                     "beat_tuned": "beat tuned", "beat_equal": "beat equal", "p_over_tuned": "p", "gain task 0": "task 0 %",
                     "gain task 1": "task 1 %", "tuned": "tuned weight", "tasks": "tasks"}   # the study's table, in this order
TRICK_COLUMNS = {"test_mse": "test MSE", "samples_polarised": "polarised", "top_weight": "top weight", "late_drift": "late drift",
                 "seeds_better_than_plain": "seeds better"}
SPARSITY_CAPTION = ("Per expert: the share of its outputs that are exactly 0 (red; a ReLU unit gives 0 wherever its input "
                    "is negative, so many zeros are ordinary sparsity), nearly 0 (pink), and the share of its units that "
                    "are 0 for every sample of the snapshot (grey: dead units). HoME calls an expert collapsed when over "
                    "90% of its outputs are 0: the dashed line. Swish experts are never exactly 0.")


def tick() -> float:
    """Seconds between this page's redraws of the curves, chosen at every full run of the page from the measured
    cost of a redraw and the races playing on this server (mtl_core/live/cadence.py; bench/load.py measures it)."""
    return CADENCE.wanted(shared_backend().held())


INTRO = ("Pick one or several architectures and race them on the **same tasks and seed**. "
         "Knobs in the sidebar that change the data or the models **restart** the race; knobs marked *(live)* "
         "apply while it runs, as in TensorFlow Playground. Finished (or interrupted) runs are kept for the "
         "*Inside the experts* page and can be downloaded.")
PANEL_HEIGHT = 300   # pixels of a presentation-layout loss panel, axes included: it ends above 720 px
COMPACT = "<style>[data-testid='stMainBlockContainer'] {padding-top: 3.5rem;}</style>"   # just below Streamlit's header bar (our constant, no user text)


pages.start_page()
header = st.container()   # filled once the settings say which layout
s = knob_panel("playground", {"Tasks": knobs.names(["tasks", OWN_FILE]), "Models": knobs.names(["models"]),
                              "Gate tricks & loss weighting": knobs.names(["tricks"]), "Training": knobs.names(["training"]),
                              "View": knobs.names(["view"])})
present = s[knobs.PRESENT]
if present:   # a projector: title and buttons in one row, the explanations behind "About these charts"
    st.html(COMPACT)
    title, *buttons = header.columns([2, 1, 1, 1, 1], vertical_alignment="center")
    title.subheader("Playground")
else:
    header.title("Playground")
    header.write(INTRO)
lesson_banner("playground")
found = available_devices()
with st.sidebar:
    if s["device"] != "auto" and s["device"] not in found:
        st.warning(f"{s['device']} is not available on this server (available: {', '.join(found)}); using {found[0]}.")
    st.header("Share")
    settings_file()

if not s["arch"]:
    st.info("Choose at least one architecture in the sidebar.")
    st.stop()
race_settings = {**s, "device": s["device"] if s["device"] in ("auto", *found) else found[0]}
if knobs.own_file(s):   # this browser's own file: held here, sent to the worker with the race
    held = own_file()
    if held is None or held.digest != s["file"] or len(s["labels"]) < 2:
        st.info("data = file trains on your own file: upload it and choose two or more label columns on the Data page first.")
        st.page_link("pages/data.py", label="Go to the Data page", icon=":material/scatter_plot:")
        st.stop()
    try:   # the detected task types, written out: the runs' records then describe their tasks without the file
        race_settings["label_types"] = builders.data_config(race_settings).task_types
    except ConfigError as error:
        st.error(f"These settings do not make a valid task set: {code(error, 400)}")
        st.stop()


def archive(race: Race) -> None:
    """Keep every run of a race that learned something (the same run again replaces its record)."""
    keep(race.records(), update=True)


def new_race() -> Race | None:
    kept = locker()
    file = own_file() if knobs.own_file(race_settings) else None
    try:
        kept.race = Race(shared_backend(), race_settings, kept.next_race(), file=file)
    except ConfigError as error:
        kept.race = None
        st.error(f"These settings do not make a valid task set: {error}")
    except ConnectionError as error:
        kept.race = None
        st.error(f"Could not start a training worker: {error}. Try again in a moment; if it persists, tell your teacher.")
    return kept.race


race: Race | None = locker().race
if race is not None and rules.restart_key(race.settings) != rules.restart_key(race_settings):
    race.pause()
    archive(race)
    race.close()
    race = locker().race = None
    st.toast("Settings changed: the race restarted (the old runs are kept).")
if race is None and (race := new_race()) is None:
    st.stop()
race.set_lr(s["lr"])  # live knob

play, pause, step, reset = buttons if present else st.columns(4)
if play.button("Play", icon=":material/play_arrow:", disabled=race.in_play or (race.done and race.active), width="stretch"):
    if not race.active:  # its worker is gone: keep what it recorded, start again on a fresh one
        archive(race)
        race = new_race()
    if race is not None:
        race.play()
    st.rerun()
if pause.button("Pause", icon=":material/pause:", disabled=not race.in_play, width="stretch"):
    race.pause()
    archive(race)
    st.rerun()
if step.button(f"Step {STEP}", icon=":material/skip_next:", disabled=race.in_play or race.done or not race.active, width="stretch"):
    race.step(STEP)
    archive(race)
if reset.button("Reset", icon=":material/restart_alt:", width="stretch"):
    race.pause()
    archive(race)
    race.close()
    locker().race = None
    st.rerun()
race.alive()   # (a race the student left playing that paused itself plays again)
playing = race.in_play   # what the student asked for: the worker may have paused it a moment (Race.in_play)
if race.problem:
    st.error(race.problem, icon=":material/error:")


def chart(name: str, build, data: pd.DataFrame, *shape, height: int | None = None) -> None:
    """Draw `data` with the spec of `build(data)`, built once per race and `shape` (Altair's spec
    building and validation is the costly part of a redraw; the data changes every time), `height`
    pixels high (default: the spec's)."""
    specs = st.session_state.setdefault("chart_specs", {})
    key = (race.id, name, *shape)
    if key not in specs:
        if len(specs) > 32:
            specs.clear()
        specs[key] = charts.without_data(build(data))
    st.vega_lite_chart(data, spec=specs[key], key=name, height=height or "content")


GAP = claim("sharing-gap").evidence()
LOSS_CAPTION = ("Solid = training loss, dashed = test loss (MSE for regression tasks, log loss for binary ones). "
                "Look for the model whose test curve flattens highest: it fits these tasks worst. That is not only tasks pulling "
                f"a shared part apart: in the bundled sweep of the lesson preset ({GAP['seeds']} seeds) Shared-Bottom's test MSE was "
                f"{GAP['gap_1']:.2f}x MMoE's with identical tasks (p = 1) and {GAP['gap_02']:.2f}x at p = 0.2 (medians; the Sweep "
                "page has the study).")
GATE_CAPTION = ("Each row is a gate (usually one per task); each cell the mean weight it gives an expert. "
                "Rows that look alike mean the tasks share; a row on one expert means a polarised gate.")
if not present:
    st.subheader("Loss per task")
    st.caption(LOSS_CAPTION)


TICK = tick()


def network_places(shown: str, racing: list[str]) -> list[tuple[str, object, int]]:
    """Where each network goes: the chosen model large, the other racing models small side by side below it."""
    others = [a for a in racing if a != shown]
    places = [(shown, st.container(), 760)]
    if others:
        st.caption("The other models of the race, small:")
        places += [(a, column, max(200, 700 // len(others))) for a, column in zip(others, st.columns(len(others)))]
    return places


@st.fragment(run_every=TICK if playing else None)
def race_view():
    """Progress and loss curves, redrawn every TICK s while playing."""
    race.alive()  # the worker pauses the race when the page stops drawing
    if playing and not race.in_play:  # finished, failed, or paused from another tab: redraw the buttons
        archive(race)
        st.rerun()
    if playing and CADENCE.overloaded(shared_backend().playing()):
        st.caption(f"The server is full ({shared_backend().playing()} races playing): your race trains in turns with "
                   f"the others and its charts update every {TICK:.1f} s.")
    with race.lock:
        progress = [(r.arch, r.step, r.status, r.message) for r in race.runs.values()]
    curves, total = race.curves(), race.total_steps
    for col, (arch, steps, status, message) in zip(st.columns(len(progress)), progress):
        col.progress(min(steps / total, 1.0), text=f"{label(arch)}: step {steps}/{total} · {status}")
        if message:
            col.error(message)
    if len(curves) and present:   # a panel per page column, as wide as its column at any screen width, 3 a row
        decades = charts.loss_decades(curves["loss"])
        tasks = race.settings["tasks"]
        st.html(charts.line_key(list(race.runs)))
        columns = [column for _ in range(0, tasks, 3) for column in st.columns(min(tasks, 3))]
        for k, column in zip(range(tasks), columns):
            task = f"task {k}"
            with column:
                chart(f"loss_chart {k}", lambda d: charts.loss_panel(d, task, total, decades, list(race.runs)),
                      curves[curves.task == task], decades, height=PANEL_HEIGHT)
    elif len(curves):
        decades = charts.loss_decades(curves["loss"])
        tasks = race.settings["tasks"]
        chart("loss_chart", lambda d: charts.loss_chart(d, tasks, total, decades, list(race.runs)), curves, decades)
    else:
        st.info("Press Play (or Step) to start training.")
    if playing:
        CADENCE.redrawn()


@st.fragment(run_every=5 * TICK if playing else None)
def inside_view():
    """Gates and experts of the latest snapshot (every 50 steps), redrawn 5x less often than the curves."""
    if playing:
        CADENCE.redrawn()
    shown = st.selectbox("look inside", list(race.runs), format_func=label, key="inside")
    with race.lock:
        gates, experts = race.runs[shown].latest("gates"), race.runs[shown].latest("experts")
    if present:   # beside the curves: the gates and the experts' zeros only
        st.markdown("**Gate weights**")
        if gates is not None:
            chart("gate_heatmap", charts.gate_heatmap, gates, shown)
        st.markdown("**Expert sparsity**")
        if experts is not None:
            chart("sparsity", charts.sparsity_bars, experts, shown)
        return
    # Off by default: with ten students all drawing it, the slowest one's chart rate halved (bench/load.py --network).
    if st.toggle("Draw the network", key="draw_network",
                 help="The chosen model drawn live: each gate-to-expert link as wide as the gate's weight. It costs the "
                      "server and your browser more than the other charts, so it is off until you turn it on."):
        st.caption("Experts (circles, filled by their share of outputs that are exactly 0, ringed blue when shared, orange "
                   "for a group, green for one task) and gates (squares); each link is as wide as the gate's mean weight on "
                   "that expert in the latest snapshot. Watch gates settle on a few experts, or one task take over a shared "
                   "expert. Hover for the numbers.")
        data = builders.data_config(race.settings)
        for key, where, width in network_places(shown, list(race.runs)):
            with race.lock:
                run = race.runs[key]
                gates_at, experts_at = run.latest("gates"), run.latest("experts")
            arch, entry = race.entries[key]
            plan = build_plan(builders.model_config(arch, entry), data.task_names, data.task_groups)
            with where:
                chart(f"network {key}", lambda frame: charts.network_chart(frame, label(key), width=width, small=width < 760),
                      network.frame(plan, data.task_names, gates_at, experts_at), width)
    left, right = st.columns(2)
    with left:
        st.subheader("Gate weights")
        st.caption(GATE_CAPTION)
        if gates is not None:
            chart("gate_heatmap", charts.gate_heatmap, gates, shown)
    with right:
        st.subheader("Expert sparsity")
        st.caption(SPARSITY_CAPTION)
        if experts is not None:
            chart("sparsity", charts.sparsity_bars, experts, shown)
    with race.lock:
        over = {name: pd.concat(race.runs[shown].tables.get(name) or [pd.DataFrame()], ignore_index=True)
                for name in ("polarisation", "weighting")}
    left, right = st.columns(2)
    with left:
        st.subheader("Gate polarisation")
        st.caption("Each gate's entropy over training (1 = it weighs its experts equally, 0 = one expert per sample). "
                   "Turn the gate tricks in the sidebar and watch how low the lines go.")
        if len(over["polarisation"]) and over["polarisation"].entropy.max() > 0:
            chart("polarisation", lambda f: charts.gate_series_chart(f, "entropy", "normalised entropy", (0, 1), width=360),
                  over["polarisation"], shown)
        elif len(over["polarisation"]):
            st.write("This model's gates do not choose (one expert each).")
    with right:
        st.subheader("Loss weights")
        st.caption(WEIGHTING_NOTES[race.entries[shown][1]["weighting"]])
        if len(over["weighting"]):
            names = list(dict.fromkeys(over["weighting"].task))
            chart("weights", lambda f: charts.task_series_chart(f, ["weight"], STATE_TITLES, names, width=360),
                  over["weighting"], shown)


@st.fragment(run_every=5 * TICK if playing else None)
def funnel_view():
    """A funnel race: each model's CVR on all impressions against on clicked ones, from the evaluations (every 50 steps)."""
    st.subheader("CVR quality: all impressions against clicked ones")
    st.caption("Solid: measured on every test impression (against its potential conversion and its true propensity, "
               "which only synthetic data know); dashed: on clicked test impressions only, as a real system must measure. "
               "Calibration above 1 means the model expects more conversions than happen. The gap between solid and dashed "
               "is what the clicks hide.")
    with race.lock:
        frames = [pd.concat(run.tables["funnel"], ignore_index=True).assign(arch=arch)
                  for arch, run in race.runs.items() if run.tables.get("funnel")]
    if frames:
        chart("funnel", lambda f: charts.cvr_quality_chart(f, list(race.runs)), pd.concat(frames, ignore_index=True))


race_place, inside_place = st.columns([3, 2], gap="medium") if present else (st.container(), None)
with race_place:
    race_view()
if race.settings["source"] == "funnel":
    funnel_view()
with inside_place or st.container():
    inside_view()
if present:
    with st.expander("About these charts"):
        st.write(INTRO)
        st.caption(f"**Loss per task.** {LOSS_CAPTION}")
        st.caption(f"**Gate weights.** {GATE_CAPTION}")
        st.caption(f"**Expert sparsity.** {SPARSITY_CAPTION}")
        st.caption("Gate polarisation and the loss weights are charted with the presentation layout off (sidebar, View).")
lesson_verdict("playground", race.runs if race.done and not playing else None)
with race.lock:
    metrics = [r.metrics.assign(arch=label(r.arch)) for r in race.runs.values() if r.metrics is not None]
if metrics and not playing:
    st.subheader("Test metrics")
    st.caption("The latest evaluation on the held-out test split (shown while paused or finished).")
    table = pd.concat(metrics).pivot_table(index=["arch", "task"], columns="metric", values="value").reset_index()
    st.dataframe(table, hide_index=True)
    with race.lock:   # messages from the worker extend the histories meanwhile
        history = pd.DataFrame([row for r in race.runs.values() for row in r.history])
    st.download_button("Download curves and metrics (CSV)", history.to_csv(index=False), "mtl-playground-curves.csv",
                       mime="text/csv")
    if race.done:
        st.caption("**Take a model home**: each finished model as plain PyTorch, a `model.py` that needs no MTL Playground.")
        for record in race.records():
            model_download(record)
with st.expander("What each gate trick and weighting did in a study"):
    st.caption("`python -m mtl_core experiment gate-tricks --seeds 5 --csv data/gate_tricks.csv`, run on 2026-11-26 on a 2-core "
               "CPU: MMoE (8 experts of 16) on two tasks at p = 0.5 trained at a learning rate of 0.03, where its gates "
               "polarise; means over 5 seeds. **test MSE**: mean over the tasks; **entropy**: 1 = the gates weigh their "
               "experts equally, 0 = one expert per sample; **polarised**: share of samples whose top expert gets over 0.9 "
               "of the weight; **top weight**: the top expert's mean weight; **late drift**: how much the gates still move in "
               "the second half of training; **seeds better**: seeds on which the arm's test MSE beat plain MMoE's. "
               "docs/EXPERIMENTS.md section 7 says what reproduces of the practice notes' claims.")
    st.dataframe(pd.read_csv(DATA / "gate_tricks.summary.csv").rename(columns=TRICK_COLUMNS).round(4), hide_index=True)
with st.expander("Does any weighting beat a tuned fixed weight? A study"):
    st.caption("`python -m mtl_core experiment weightings --seeds 10 --jobs 2 --csv data/weightings.csv`, run on 2026-12-07 on a "
               "2-core CPU (30 min): every weighting on MMoE and Shared-Bottom in three settings, 10 seeds each. **MTL gain**: "
               "how much lower a task's test loss is than a single-task model's on the same data and seed, as a share of it "
               "(negative: sharing hurt), averaged over the tasks, in %; **tuned weight**: task 0's fixed weight from 0.1, 0.3, 1, 3, 10 "
               "with the best validation gain (fixed 1 is equal weighting); **beat tuned**, **beat equal**: seeds on which "
               "the weighting's gain was larger; **p**: a one-sided Wilcoxon test that it beats the tuned weight.")
    st.info(claim("tuned-weight").text() + " " + claim("uncertainty-wins").text(), icon=":material/fact_check:")
    table = weightings_summary().sort_values(["setting", "arch", "gain"], ascending=[True, True, False])
    table[["gain", "gain task 0", "gain task 1"]] *= 100
    st.dataframe(table.assign(arch=table.arch.map(label))[list(WEIGHTING_COLUMNS)].rename(columns=WEIGHTING_COLUMNS).round(3),
                 hide_index=True)
st.caption(f"Training runs in a worker ({race.backend}) while this page redraws the curves every {TICK:.1f} s and the "
           f"gates every {5 * TICK:.1f} s (less often when many races play on this server). Leaving the page pauses training; "
           "a race left alone for 15 minutes is put away (its runs are kept).")
