"""MTL Playground: `streamlit run app.py`. Pages live in pages/; the library in mtl_core/."""

import streamlit as st

st.set_page_config(page_title="MTL Playground", page_icon=":material/hub:", layout="wide")

pages = [
    st.Page("pages/start.py", title="Start & lessons", icon=":material/school:", url_path="start", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/scatter_plot:", url_path="data"),
    st.Page("pages/playground.py", title="Playground", icon=":material/play_circle:", url_path="playground"),
    st.Page("pages/inside.py", title="Inside the experts", icon=":material/biotech:", url_path="inside"),
    st.Page("pages/sweep.py", title="Correlation sweep", icon=":material/bar_chart:", url_path="sweep"),
    st.Page("pages/ablation.py", title="HoME ablation", icon=":material/extension:", url_path="ablation"),
]
# Our own menu: Streamlit's automatic one would also list the helper modules in pages/ on deep links.
page = st.navigation(pages, position="hidden")
with st.sidebar:
    for p in pages:
        st.page_link(p)
    st.divider()
page.run()
