"""The open lesson on its page: its question above the page, and once the run is over whether the run
showed what the lesson predicts, with its explanation; the bundled lesson check's timings."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from mtl_core.studies import lessons
from pages import DATA
from pages.classes import send_result

def _lesson(page: str) -> lessons.Lesson | None:
    key = st.session_state.get("lesson")
    chosen = next((lesson for lesson in lessons.LESSONS if lesson.key == key), None)
    return chosen if chosen is not None and chosen.page == page else None


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
    try:
        verdict = lesson.check(outcome)
    except KeyError:   # the student changed the models (another architecture, weightings raced): not the lesson's run
        st.caption(f"This run is not the lesson's setting any more (its models changed), so it cannot check the lesson's "
                   f"prediction: {lesson.predicts} Open the lesson again from the Start page to run its setting.")
        return
    send_result(lesson, verdict, outcome, st.session_state["settings"]["seed"])   # when this browser is in a class
    if verdict.held:
        st.success(f"**Your run shows it.** {lesson.predicts} ({verdict.evidence}.) {lesson.see}\n\n{lesson.explanation}",
                   icon=":material/check_circle:")
    else:
        st.warning(f"**Your run did not show it this time.** The lesson predicts: {lesson.predicts} ({verdict.evidence}.) It holds on "
                   f"most seeds, not all: try another seed.\n\n{lesson.explanation}", icon=":material/help:")
