"""MTL Playground: `streamlit run app.py`. Pages live in pages/; the library in mtl_core/."""

import streamlit as st

st.set_page_config(page_title="MTL Playground", page_icon="🧪", layout="wide")

pages = [
    st.Page("pages/start.py", title="Start & lessons", icon="🎓", url_path="start", default=True),
    st.Page("pages/data.py", title="Data", icon="📈", url_path="data"),
    st.Page("pages/playground.py", title="Playground", icon="▶️", url_path="playground"),
    st.Page("pages/inside.py", title="Inside the experts", icon="🔬", url_path="inside"),
    st.Page("pages/sweep.py", title="Correlation sweep", icon="📊", url_path="sweep"),
    st.Page("pages/ablation.py", title="HoME ablation", icon="🧩", url_path="ablation"),
]
st.navigation(pages).run()
