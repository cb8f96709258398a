"""Class: a teacher opens a class of one lesson and projects its join code; each student joins, predicts, plays
the lesson on a seed of their own and sends the result; the dashboard pools the class's runs as seeds."""

from __future__ import annotations

import io

import pandas as pd
import segno
import streamlit as st

import pages
from mtl_core.serve.classes import CAPACITY, ClassError, HOURS, MAX_NAME, NotTeacher
from mtl_core.studies import lessons
from mtl_core.view import charts
from pages.classes import address, classes, join_link, remember_teacher, teacher_cookie, teacher_link
from pages.echo import code
from pages.kept import browser_token
from pages.lesson import lesson_check
from pages.panel import open_link

pages.start_page()   # no knob panel: this page has no settings, and its link's ?join, ?code and ?key are its own
TEACHER = "class_teacher"   # the session's (code, key) once it opened a class or followed a teacher link
PAGE_TITLES = {"playground": "Playground", "sweep": "Correlation sweep", "transfer": "Does sharing help?"}


def dashboard(opened: tuple[str, str]) -> None:
    """The teacher's view, made to be projected: the join code and QR code, then the class live."""
    class_code, key = opened
    try:
        view = classes().dashboard(class_code, key)
    except NotTeacher as error:
        st.error(str(error), icon=":material/lock:")
        st.session_state.pop(TEACHER, None)
        remember_teacher("", "", keep=False)
        return
    if st.session_state.pop("remember_teacher", False):   # kept (and the browser moved) only once the key opened the class
        remember_teacher(class_code, key)
    lesson = lessons.lesson(view.lesson)
    link = join_link(class_code)
    left, right = st.columns([3, 1])
    left.markdown(f"# Join the class: **{class_code[:3]} {class_code[3:]}**")
    left.markdown(f"### Open **{link}**, or scan the code. Lesson: *{lesson.question}*")
    picture = io.BytesIO()
    segno.make(link, error="m").save(picture, kind="png", scale=8, border=2)
    right.image(picture.getvalue(), caption="Scan to join", width=220)
    live(class_code, key, lesson)
    with st.expander("Teacher link (keep it private: it opens this dashboard on another device)"):
        st.code(teacher_link(class_code, key), language=None)
        if st.button("Leave the dashboard", help="This browser forgets the teacher's key; the teacher link still opens it."):
            st.session_state.pop(TEACHER)
            remember_teacher("", "", keep=False)
            st.rerun()
        st.caption(f"The class holds at most {CAPACITY} students and ends {HOURS:.0f} hours after it opened. Students "
                   f"train seeds {view.seed}, {view.seed + 1}, ... in the order they join (a sweep lesson: a block of seeds "
                   "each), so the class together is a seed sweep.")


@st.fragment(run_every=0.6)
def live(class_code: str, key: str, lesson: lessons.Lesson) -> None:
    """Redrawn at least once a second (its timer: 0.6 s, so that a redraw delayed by a busy machine still comes within the second): counts,
    predictions, outcomes, and the teacher's buttons."""
    try:
        view = classes().dashboard(class_code, key)
    except NotTeacher as error:
        st.error(str(error))
        return
    joined, predicted, finished = st.columns(3)
    joined.metric("joined", view.joined)
    predicted.metric("predicted", view.predicted)
    finished.metric("finished", view.finished)
    pooled(view, lesson, teacher=True)
    reveal, close, download = st.columns(3)
    reveal.button("Hide the result from students" if view.revealed else "Reveal the result to students", icon=":material/visibility:",
                  disabled=view.closed, on_click=classes().reveal, args=(class_code, key, not view.revealed))
    close.button("Close the class", icon=":material/lock:", disabled=view.closed, on_click=classes().close, args=(class_code, key),
                 help="No one can join, predict or send a result any more; what was collected stays.")
    download.download_button("Download the class (CSV)", class_frame(view).to_csv(index=False),
                             f"class-{class_code}.csv", "text/csv", icon=":material/download:")
    st.caption(f"Updated {pd.Timestamp.now().strftime('%H:%M:%S')}." + (" The class is closed." if view.closed else ""))


def class_frame(view) -> pd.DataFrame:
    """One row per finished student and model: number, name, seed, held, model, final test loss, evidence."""
    return pd.DataFrame([dict(number=r["number"], name=r["name"], seed=r["seed"], held=r["held"], model=model, loss=loss,
                              evidence=r["evidence"]) for r in view.results for model, loss in r["losses"].items()],
                        columns=["number", "name", "seed", "held", "model", "loss", "evidence"])


def pooled(view, lesson: lessons.Lesson, teacher: bool) -> None:
    """The class's predictions and outcomes; once revealed, the lesson's answer, how many runs showed it and the
    bundled check of the same lesson beside them (before that a projected dashboard gives nothing away)."""
    frame = class_frame(view)
    if view.results and view.revealed:
        bundled = lesson_check().get(lesson.key)
        against = (f"The bundled lesson check found it on {bundled['held']} of {bundled['seeds']} other seeds and "
                   f"{'on' if bundled['default_held'] else 'not on'} the default seed. " if bundled else "")
        poor = frame[frame.loss > 2 * frame.groupby(["seed", frame.model.str.partition(" p = ")[2]]).loss.transform("min")]
        st.markdown(f"### {view.held} of {view.finished} runs ({view.held / view.finished:.0%}) showed what the lesson "
                    f"predicts: *{lesson.predicts}*")
        st.caption(against + "Poor runs (a final loss over twice the best one on the same seed): "
                   + (", ".join(f"{model} {n}" for model, n in poor.groupby("model").size().items()) or "none") + ".")
    elif view.results:
        st.markdown(f"### {view.finished} run(s) finished")
        st.caption("The lesson's answer and how many runs showed it appear when the result is revealed.")
    st.vega_lite_chart(prediction_spec(lesson.answers, tuple(view.predictions), lesson.expected if view.revealed else None),
                       width="stretch")
    if view.results:
        st.vega_lite_chart(outcome_spec(frame.to_json(orient="records"), teacher, view.revealed), width="stretch")
    else:
        st.info("No finished runs yet: they appear here as students' runs end.", icon=":material/hourglass_top:")


# The dashboard redraws every second while a class plays, in the same process as every student's page: its charts are
# built once per change (an Altair chart's spec costs about 30 ms; a 25-student class otherwise starves the dashboard).
@st.cache_data(max_entries=256, show_spinner=False)
def prediction_spec(answers: tuple[str, ...], counts: tuple[int, ...], expected: int | None) -> dict:
    return charts.prediction_chart(answers, counts, expected).to_dict()


@st.cache_data(max_entries=256, show_spinner=False)
def outcome_spec(records: str, names: bool, held: bool) -> dict:
    return charts.class_outcome_chart(pd.read_json(io.StringIO(records), orient="records"), names, held).to_dict()


def student(member) -> None:
    """A student's view: the lesson, the prediction before Play, the way to the lesson, and the pooled result."""
    lesson = lessons.lesson(member.lesson)
    st.markdown(f"## Class {member.code}: {lesson.question}")
    st.write(f"You are student {member.number}" + (f" ({code(member.name)})" if member.name else "")
             + f". Your run trains seed **{member.seed}**: everyone in the class trains a different seed, so together "
               "the class sees how often the lesson's answer shows.")
    choice = st.radio("your prediction", range(len(lesson.answers)), format_func=lambda i: lesson.answers[i],
                      index=member.prediction, key="class_prediction", disabled=member.finished,
                      help="Locked once your run has finished." if member.finished else None)
    if not member.finished and st.button("Send my prediction", disabled=choice is None, icon=":material/how_to_vote:"):
        try:
            classes().predict(member.code, browser_token(), int(choice))
            st.rerun()
        except ClassError as error:
            st.error(str(error))
    if member.prediction is None:
        st.info("Predict first: then the lesson opens.", icon=":material/lightbulb:")
    else:
        st.success(f"Your prediction: {lesson.answers[member.prediction]}", icon=":material/how_to_vote:")
        if st.button(f"Open the lesson ({PAGE_TITLES[lesson.page]})", type="primary", icon=":material/play_circle:"):
            open_link(f"pages/{lesson.page}.py", lesson.link(member.seed), lesson.key)
        st.caption("When your run is over, its result goes to the class by itself.")
    revealed(member.code, lesson)


@st.fragment(run_every=5.0)
def revealed(class_code: str, lesson: lessons.Lesson) -> None:
    """The class's pooled result, once the teacher reveals it (looked for every 5 s)."""
    view = classes().pooled(class_code, browser_token())
    if view is None:
        st.caption("The class's result appears here when your teacher reveals it.")
    else:
        st.header("The class's result")
        mine = classes().member(browser_token())
        if mine is not None and mine.prediction is not None:
            st.write(f"You predicted: *{lesson.answers[mine.prediction]}*. The lesson's answer: "
                     f"*{lesson.answers[lesson.expected]}*.")
        pooled(view, lesson, teacher=False)


def join_or_open() -> None:
    """Join a class (a student), or open one (a teacher)."""
    join, teach = st.columns(2)
    with join.container(border=True):
        st.subheader("Join a class")
        given = st.query_params.get("join", "")
        typed = st.text_input("class code", value=given, max_chars=12, placeholder="e.g. K7Q X2M")
        name = st.text_input("your name (optional: only your teacher sees it)", max_chars=MAX_NAME)
        if st.button("Join", type="primary", icon=":material/login:"):
            try:
                classes().join(typed, browser_token(), name, address())
                st.rerun()
            except ClassError as error:
                st.error(str(error), icon=":material/error:")
    with teach.container(border=True):
        st.subheader("Open a class (teachers)")
        chosen = st.selectbox("lesson", [lesson.key for lesson in lessons.LESSONS],
                              format_func=lambda key: lessons.lesson(key).question)
        first = st.number_input("first seed", min_value=0, max_value=1_000_000, value=0,
                                help="Student n trains this seed + n - 1 (a sweep lesson: a block of seeds each).")
        if st.button("Open the class", icon=":material/co_present:"):
            lesson = lessons.lesson(chosen)
            opened = classes().open(lesson.key, int(first), lesson.seeds_per_run, len(lesson.answers))
            st.session_state[TEACHER] = (opened.code, opened.key)
            st.session_state.remember_teacher = True
            st.rerun()


if "code" in st.query_params and "key" in st.query_params:   # a teacher link: kept, then taken off the (projected) address bar
    st.session_state[TEACHER] = (st.query_params["code"], st.query_params["key"])
    st.session_state.remember_teacher = True
    st.query_params.clear()
if TEACHER not in st.session_state and teacher_cookie() is not None:
    st.session_state[TEACHER] = teacher_cookie()
if TEACHER in st.session_state:
    dashboard(st.session_state[TEACHER])   # projected: the join code first, no page title
else:
    st.title("Class")
    member = classes().member(browser_token())
    if member is not None and st.query_params.get("join", member.code) == member.code:
        student(member)
    else:
        join_or_open()
