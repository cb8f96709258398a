"""The app's pages; app.py runs them through st.navigation.

Streamlit treats a folder called pages/ beside the main script as a legacy (v1) multipage app until
some script calls st.navigation. On a freshly started server, the first visitor who opens a deep
link such as /playground would then get the page without app.py's menu and layout. Every page
imports this package, which switches the legacy mode off (a Streamlit internal, checked with
streamlit 1.67) and reruns, so app.py handles every request.
"""

from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory:
    import streamlit as st

    PagesManager.uses_pages_directory = False
    st.rerun()
