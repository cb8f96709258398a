"""What the pages share: the knob panel (bound to the URL), notices that echo nothing raw, settings
files, and each browser's kept runs.

The knobs come from one table (`mtl_core.knobs`). The student's settings live in
`st.session_state["settings"]`; widgets are drawn from them and write back to them. The URL mirrors
the settings so a teacher can share it; a link is read once, when a session starts or a lesson opens,
and every value in it is checked (and a bad one dropped with a notice) before any widget sees it.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import streamlit as st
from mtl_core import knobs, lessons
from mtl_core.config import ConfigError
from mtl_core.knobs import KNOBS, Notice, Settings
from mtl_core.live import JobFailed, run_job, shared_backend
from mtl_core.records import MAX_FILE, dumps, read_records
from mtl_core.shelf import Locker, Shelf
from mtl_core.store import Store, StoreFull, default_location


# ---------------------------------------------------------------- echo nothing raw

def code(text: Any, limit: int = knobs.SHOWN) -> str:
    """A user's text as inline code: shortened to one line, shown literally (no Markdown, links, images or HTML)."""
    flat = knobs.shorten(str(text), limit).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def show_notices(notices: Sequence[Notice], source: str, where=st) -> None:
    for n in notices:
        where.warning(f"{source} sets {code(n.knob)} to {code(n.value)}, which was not used: {n.problem}.",
                      icon=":material/warning:")


# ---------------------------------------------------------------- the knob panel

def settings() -> Settings:
    """The student's settings (every knob), created with the defaults."""
    return st.session_state.setdefault("settings", knobs.defaults())


def open_link(page: str, query: dict[str, list[str]], lesson: str | None = None) -> None:
    """Switch to `page` with a link's settings (a lesson): the link is read as on a fresh start."""
    st.session_state.follow_link = True
    st.session_state.lesson = lesson
    st.switch_page(page, query_params=query)


def _lesson(page: str) -> lessons.Lesson | None:
    key = st.session_state.get("lesson")
    chosen = next((lesson for lesson in lessons.LESSONS if lesson.key == key), None)
    return chosen if chosen is not None and chosen.page == page else None


DATA = Path(__file__).resolve().parent.parent / "data"


@st.cache_data
def lesson_check() -> dict[str, dict]:
    """The bundled lesson check (`python -m mtl_core lessons --csv data/lesson_check.csv`): per lesson,
    seconds of training and seeds held; with `app_seconds` where `python -m bench.lesson_time --csv
    data/lesson_time.csv` timed the lesson played in the app."""
    if not (DATA / "lesson_check.csv").exists():
        return {}
    checked = pd.read_csv(DATA / "lesson_check.csv")
    if (DATA / "lesson_time.csv").exists():
        checked = checked.merge(pd.read_csv(DATA / "lesson_time.csv"), on="lesson", how="left")
    checked = checked.astype(object).where(checked.notna(), None)
    return {row["lesson"]: row for row in checked.to_dict(orient="records")}


def lesson_banner(page: str) -> None:
    """The open lesson's question, above the page (predict before you run it)."""
    lesson = _lesson(page)
    if lesson is not None:
        measured = lesson_check().get(lesson.key) or {}
        seconds = measured.get("app_seconds") or measured.get("seconds")
        took = f" It takes about {seconds:.0f} s on a 2-core server with one student." if seconds else ""
        st.info(f"**Lesson:** {lesson.question} Predict the answer first. {lesson.do}{took}", icon=":material/school:")


def lesson_verdict(page: str, outcome) -> None:
    """Once the run is over, whether it showed what the open lesson predicts, computed from the run
    (`outcome`: the race's runs, or a sweep's final losses; None while it is not over or not the lesson's)."""
    lesson = _lesson(page)
    if lesson is None:
        return
    if outcome is None:
        st.caption(f"When the run is over, this page checks the lesson's prediction on it: {lesson.predicts}")
        return
    verdict = lesson.check(outcome)
    if verdict.held:
        st.success(f"**Your run shows it.** {lesson.predicts} ({verdict.evidence}.) {lesson.see}\n\n{lesson.explanation}",
                   icon=":material/check_circle:")
    else:
        st.warning(f"**Your run did not show it this time.** The lesson predicts: {lesson.predicts} ({verdict.evidence}.) It holds on "
                   f"most seeds, not all: try another seed.\n\n{lesson.explanation}", icon=":material/help:")


def _widget_changed(name: str) -> None:
    value = st.session_state[f"knob.{name}"]
    s = settings()
    s.update(knobs.with_preset(s, value) if name == "preset" else {name: tuple(value) if KNOBS[name].multi else value})


def _draw(knob: knobs.Knob, s: Settings, disabled: bool, where) -> None:
    key = f"knob.{knob.name}"
    value = list(s[knob.name]) if knob.multi else s[knob.name]
    options = knob.options
    if knob.name in ("dense", "sparse"):  # task numbers that exist (sparse: not already dense)
        options = tuple(k for k in range(s["tasks"]) if knob.name == "dense" or k not in s["dense"])
    # Always set, even to the value it has: the same key on another page is another widget to the browser, which
    # would otherwise draw it at its first option or minimum (seen: Data -> Playground showed tasks 1, p = -1).
    st.session_state[key] = value
    label = knob.label + (" (live)" if knob.live else "")
    kw = dict(key=key, help=knob.help or None, disabled=disabled, on_change=_widget_changed, args=(knob.name,))
    if knob.widget == "toggle":
        where.toggle(label, **kw)
    elif knob.widget == "number":
        where.number_input(label, min_value=int(knob.low), max_value=int(knob.high), step=1, **kw)
    elif knob.widget == "slider":
        where.slider(label, min_value=knob.low, max_value=knob.high, step=knob.step, **kw)
    elif knob.widget == "select_slider":
        where.select_slider(label, options=options, **kw)
    elif knob.widget == "selectbox":
        where.selectbox(label, options=options, **kw)
    else:
        where.multiselect(label, options=options, **kw)


def knob_panel(page: str, groups: dict[str, Sequence[str]], where=st.sidebar, implied: Settings | None = None) -> Settings:
    """Draw this page's knobs under their headers (`groups`: header -> knob names) and return the
    settings. `implied` are settings the page fixes (HoME on the ablation page) for deciding which knobs
    apply. The link is read when a session starts or a lesson opens; afterwards the URL only follows."""
    fresh = "settings" not in st.session_state
    s = settings()
    implied = implied or {}
    allowed = [name for names in groups.values() for name in names]
    if fresh:  # a reload (or a second tab) starts from this browser's last settings
        s.update(locker().settings)
    if fresh or st.session_state.pop("follow_link", False):
        merged, hidden, notices = knobs.follow_link(s, {k: st.query_params.get_all(k) for k in st.query_params}, allowed, implied)
        s.update(merged)
        st.session_state.hidden = (page, hidden)
        show_notices(notices, "The link")
    merged, dropped = knobs.apply(s, {}, explicit=False)  # the rules between knobs, after any widget change
    s.update(merged)
    show_notices(dropped, "Your settings")
    locked_page, locked = st.session_state.get("hidden", (None, ()))
    locked = locked if locked_page == page else ()
    for header, names in groups.items():
        if header:
            where.header(header)
        for name in names:
            if KNOBS[name].applies({**s, **implied}):
                _draw(KNOBS[name], s, name in locked, where)
    link = knobs.to_link({**s, **implied}, allowed) | ({knobs.HIDE: [",".join(locked)]} if locked else {})
    if link != {k: st.query_params.get_all(k) for k in st.query_params}:
        st.query_params.from_dict(link)
    locker().settings = dict(s)
    return s


def settings_file(where=st.sidebar) -> None:
    """Download the settings as JSON, and load such a file: checked whole, so a bad file changes nothing."""
    s = settings()
    where.download_button("Download settings (JSON)", dumps({name: s[name] for name in KNOBS}), "mtl-playground-settings.json",
                          mime="application/json")
    upload = where.file_uploader("Load settings (JSON)", type=["json"], key="settings_upload")
    if upload is None or st.session_state.get("loaded_settings") == upload.file_id:
        return
    st.session_state.loaded_settings = upload.file_id
    try:
        if upload.size > knobs.MAX_SETTINGS_FILE:
            raise ValueError(f"The file is {upload.size:,} bytes; settings files are at most {knobs.MAX_SETTINGS_FILE:,} bytes.")
        merged, dropped = knobs.apply(s, knobs.read_file(upload.getvalue()))
        if dropped:
            raise ValueError("; ".join(n.text() for n in dropped) + ".")
    except ValueError as error:
        where.error(f"Could not load {code(upload.name)}: {code(error, 600)} Your settings were kept.")
        return
    s.update(merged)
    st.rerun()


# ---------------------------------------------------------------- each browser's kept runs

_SHELF: list[Shelf] = []
_SHELF_LOCK = threading.Lock()


def shelf() -> Shelf:
    """Every browser's locker, over the server's store, opened on first use. A store that cannot be opened
    (a PostgreSQL server down) raises StoreUnavailable, which app.py shows on the page; the next page tries again."""
    with _SHELF_LOCK:
        if not _SHELF:
            _SHELF.append(Shelf(Store(default_location())))
        return _SHELF[0]


TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def browser_token() -> str:
    """A random token per browser, kept in a cookie (so a reload finds the runs again); a new browser gets
    one for this session (`remember_browser` asks it to keep it)."""
    token = st.context.cookies.get("mtl_browser")
    if isinstance(token, str) and TOKEN.fullmatch(token):
        return token
    return st.session_state.setdefault("browser_token", secrets.token_urlsafe(18))


def remember_browser() -> None:
    """Ask the browser to keep its token, on every full run of a session that arrived without the cookie.
    Sent once, the script could be replaced by a quick rerun before the browser ran it; a later reconnect
    (a new session) would then open an empty locker: the end-to-end test saw 'No runs yet' once in nine runs."""
    token = st.context.cookies.get("mtl_browser")
    if not (isinstance(token, str) and TOKEN.fullmatch(token)):
        st.html(f"<script>document.cookie='mtl_browser={browser_token()}; path=/; max-age=2592000; samesite=strict';</script>",
                unsafe_allow_javascript=True)


def locker() -> Locker:
    """This browser's kept runs (and its live race)."""
    return shelf().locker(browser_token())


def keep(records: list[dict], update: bool = False) -> list[dict]:
    """Keep records for this browser; a record whose id is taken gets a new id, or with `update` (a live
    run archived again) replaces it. Returns them as kept."""
    return shelf().keep(browser_token(), records, update)


def load_runs(upload) -> None:
    """Check an uploaded run file whole and keep its runs, or say why not (nothing changes then)."""
    try:
        if upload.size > MAX_FILE:
            raise ValueError(f"The file is {upload.size:,} bytes; run files are at most {MAX_FILE:,} bytes.")
        records = read_records(upload.getvalue())
        added = keep(records)
    except (ValueError, StoreFull) as error:
        st.error(f"Could not load {code(upload.name)}: {code(error, 300)} Nothing in your session was changed.")
        return
    renamed = [r["id"] for r, a in zip(records, added) if r["id"] != a["id"]]
    st.success(f"Loaded {len(added)} run(s) from {code(upload.name)}."
               + (f" {len(renamed)} had the name of a run you already have and got a new one." if renamed else ""))


WEIGHTING_NOTES = {
    "equal": "Every task's loss counts once: the weights stay at 1. Compare with a weighting that moves them.",
    "fixed": "The weights you set; they do not move.",
    "uncertainty": "Kendall et al.: each task learns a variance σ²; its loss is weighted by 1/σ² (regression: 1/(2σ²)). "
                   "A noisier task learns a larger σ² and gets less weight.",
    "gradnorm": "Chen et al.: the weights move so that each task's weighted gradient norm on the shared experts tracks "
                "how far behind the task is. Watch a large-loss task's weight fall and the weighted norms come together.",
    "dwa": "Liu et al.: after two epochs, a task whose loss fell less in the last epoch gets more weight (the weights sum "
           "to the number of tasks).",
    "pcgrad": "Yu et al.: the weights stay at 1, but a task's gradient loses its part that points against another task's. "
              "The right panels show how often that happened and how much of the gradient was removed.",
}


# ---------------------------------------------------------------- studies run by a worker

@st.cache_resource
def _study_speeds() -> dict[tuple, float]:
    """Sample-epochs a second (over all of a study's runs) that each kind of study trained on this server, per
    model size: what a page says a study will take is this server's measured speed, not a figure from elsewhere."""
    return {}


def expected_seconds(kind: tuple, work: float) -> float | None:
    """How long `work` sample-epochs of a study of `kind` (its name and model size) take at the speed the last
    such study had on this server; None before the first."""
    rate = _study_speeds().get(kind)
    return max(1.0, work / rate) if rate else None


def study_took(kind: tuple, work: float, started: float) -> None:
    """A study of `kind` trained `work` sample-epochs since `started` (time.perf_counter)."""
    _study_speeds()[kind] = work / (time.perf_counter() - started)


def run_study(name: str, what: str, **kwargs):
    """`worker.JOBS[name](**kwargs)` in the job worker while the page shows `what` is running, for how long, and
    a Stop button: pressing it (or any widget) reruns the page, which stops the wait and cancels the study.
    Returns the result; when there is none (a bad setting, a failed study, a worker that died) the page says
    why and stops. A page may run several studies in one run (a sweep, one per architecture)."""
    status, stop = st.empty(), st.empty()
    stop.button("Stop the study", icon=":material/stop:", key=f"stop {name} {what}")
    try:
        return run_job(shared_backend(), name, waiting=lambda seconds: status.caption(
            f"{what}: {seconds:.0f} s so far. *Stop the study*, or changing a setting, cancels it."), **kwargs)
    except (ConfigError, JobFailed) as error:
        st.error(f"The study could not run: {code(error, 300)}", icon=":material/error:")
        st.stop()
    finally:
        status.empty()
        stop.empty()
