"""The app's pages and the start-up every page runs first.

Streamlit treats a folder called pages/ beside the main script as a legacy (v1) multipage app until
some script calls st.navigation, and there is no setting to say otherwise. On a freshly started server
the first visitor who opens a deep link such as /playground would then get the page alone, without
app.py's menu, layout and settings. `start_page()` notices that app.py did not run first in this
session (it marks every run it starts) and calls st.navigation itself, which switches the legacy mode
off for the whole server, then reruns so that app.py handles the request. Public API only; the
end-to-end test opens a deep link on a fresh server first to guard it.
"""

import os
from pathlib import Path

import streamlit as st
import torch

HERE = Path(__file__).resolve().parent
SHELL = "app_shell"   # set by app.py at the start of every run


def menu() -> list:
    """The pages in menu order (app.py draws the menu from them)."""
    page = lambda file, title, icon, path, **kw: st.Page(str(HERE / file), title=title, icon=icon, url_path=path, **kw)
    return [page("start.py", "Start & lessons", ":material/school:", "start", default=True),
            page("data.py", "Data", ":material/scatter_plot:", "data"),
            page("playground.py", "Playground", ":material/play_circle:", "playground"),
            page("inside.py", "Inside the experts", ":material/biotech:", "inside"),
            page("sweep.py", "Correlation sweep", ":material/bar_chart:", "sweep"),
            page("ablation.py", "HoME ablation", ":material/extension:", "ablation"),
            page("transfer.py", "Does sharing help?", ":material/call_split:", "transfer")]


def torch_threads() -> int:
    """Threads for training in this server process: MTL_TORCH_THREADS, else 1. The models are small, and
    the other cores serve the other students' pages (on 2 cores a race ran at half the speed with 2)."""
    value = os.environ.get("MTL_TORCH_THREADS", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def start_page() -> None:
    """Every page calls this first: app.py must have started this session (see above); the thread cap."""
    if not st.session_state.get(SHELL):
        st.navigation(menu(), position="hidden")
        st.rerun()
    if torch.get_num_threads() != torch_threads():
        torch.set_num_threads(torch_threads())
