"""The live race a student plays, as a library: no Streamlit here (see race.py to use it)."""

from .backends import Backend, InProcess, LocalProcesses, RayCluster, shared_backend
from .jobs import run_job
from .race import Race, RunView
from .worker import Worker

__all__ = ["Backend", "InProcess", "LocalProcesses", "Race", "RayCluster", "RunView", "Worker", "run_job", "shared_backend"]
