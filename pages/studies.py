"""Studies a page runs in the job worker: the wait with a Stop button, and how long a study of its kind
took on this server."""

from __future__ import annotations

import time

import streamlit as st

from mtl_core.config import ConfigError
from mtl_core.live import JobFailed, run_job, shared_backend
from pages.echo import code

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
