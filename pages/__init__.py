"""The app's pages and the start-up every page runs first.

Streamlit treats a folder called pages/ beside the main script as a legacy (v1) multipage app until
some script calls st.navigation, and there is no setting to say otherwise. On a freshly started server
the first visitor who opens a deep link such as /playground would then get the page alone, without
app.py's menu, layout and settings. `start_page()` notices that app.py did not run first in this
session (it marks every run it starts) and calls st.navigation itself, which switches the legacy mode
off for the whole server, then reruns so that app.py handles the request. Public API only; the
end-to-end test opens a deep link on a fresh server first to guard it.
"""

from pathlib import Path

import streamlit as st
import torch

from mtl_core.serve import environment

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"   # the bundled studies and lesson checks
SHELL = "app_shell"   # set by app.py at the start of every run


def menu() -> list:
    """The pages in menu order (app.py draws the menu from them)."""
    page = lambda file, title, icon, path, **kw: st.Page(str(HERE / file), title=title, icon=icon, url_path=path, **kw)
    return [page("start.py", "Start & lessons", ":material/school:", "home", default=True),
            page("data.py", "Data", ":material/scatter_plot:", "data"),
            page("playground.py", "Playground", ":material/play_circle:", "playground"),
            page("inside.py", "Inside the experts", ":material/biotech:", "inside"),
            page("sweep.py", "Correlation sweep", ":material/bar_chart:", "sweep"),
            page("ablation.py", "HoME ablation", ":material/extension:", "ablation"),
            page("transfer.py", "Does sharing help?", ":material/call_split:", "transfer"),
            page("class.py", "Class", ":material/groups:", "class")]


def routes(pages: list) -> list:
    """What st.navigation serves: the menu's pages and `/start`, the start page's name. The default page is served
    at `/` only (a `/start` link showed "Page not found" over it) while it still reserves its own url_path, so
    that is "home", and `/start` opens the start page with the link's parameters."""
    def start():
        st.switch_page(pages[0], query_params={k: st.query_params.get_all(k) for k in st.query_params})

    return [*pages, st.Page(start, title=pages[0].title, icon=pages[0].icon, url_path="start")]


def start_page() -> None:
    """Every page calls this first: app.py must have started this session (see above); the thread cap."""
    if not st.session_state.get(SHELL):
        st.navigation(routes(menu()), position="hidden")
        st.rerun()
    threads = environment.torch_threads()   # the models are small; the other cores serve the other students' pages
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
