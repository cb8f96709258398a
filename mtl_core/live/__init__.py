"""The live race a student plays, as a library: no Streamlit here (see race.py to use it)."""

from .backends import Backend, InProcess, LocalProcesses, RayCluster, shared_backend
from .cadence import CADENCE, Cadence
from .jobs import JobFailed, run_job
from .race import Race, RunView
from .worker import Worker

__all__ = ["CADENCE", "Backend", "Cadence", "InProcess", "JobFailed", "LocalProcesses", "Race", "RayCluster", "RunView", "Worker", "run_job", "shared_backend"]
