"""MTL Playground: `streamlit run app.py`. Pages live in pages/; the library in mtl_core/."""

import logging
import sys

import streamlit as st

st.set_page_config(page_title="MTL Playground", page_icon=":material/hub:", layout="wide")
starting = st.empty()
if "pages.panel" not in sys.modules:   # the first visit to a fresh server imports torch and the library: seconds, not a blank page
    starting.info("Starting the class server: the first page takes a few seconds, the next ones are quick.",
                  icon=":material/hourglass_top:")

from mtl_core.config import ConfigError  # noqa: E402 - after the message above
from mtl_core.settings.knobs import PRESENT  # noqa: E402
from mtl_core.settings.links import read_link  # noqa: E402
from mtl_core.live import shared_backend  # noqa: E402
from pages import SHELL, menu, routes  # noqa: E402
from pages.kept import remember_browser  # noqa: E402

if read_link({PRESENT: st.query_params.get_all(PRESENT)}, [PRESENT]).values.get(PRESENT):   # a projector's link: fold the sidebar
    st.set_page_config(initial_sidebar_state="collapsed")
st.session_state[SHELL] = True
try:
    shared_backend().warm()  # the training workers start with the first visit, not with the first race
except ConfigError as error:   # a bad MTL_* variable: said on every page until the server is restarted without it
    st.error(f"The server is set up wrongly, so training cannot start: {error}", icon=":material/error:")
starting.empty()
pages = menu()
# Our own menu: Streamlit's automatic one would also list the helper modules in pages/ on deep links.
page = st.navigation(routes(pages), position="hidden")
with st.sidebar:
    for p in pages:
        st.page_link(p)
    st.divider()
    remember_browser()
try:
    page.run()
except ConfigError as error:   # e.g. a bad environment variable: its message says what is allowed
    st.error(str(error), icon=":material/error:")
except Exception as error:  # a page must never show a traceback; st.stop and st.rerun are not Exceptions
    logging.getLogger("mtl_playground").exception("page %s failed", page.title)
    st.error(f"This page hit a problem it did not expect ({type(error).__name__}); the details are in the server's log. "
             "Your settings and kept runs are safe: change a setting or open another page.", icon=":material/error:")
