"""MTL Playground: the Streamlit app (`streamlit run app.py`)."""

import streamlit as st

st.set_page_config(page_title="MTL Playground", layout="wide")
st.title("MTL Playground")
st.write(
    "When tasks disagree, how should a network share? This playground trains Shared-Bottom, OMoE, MMoE, "
    "PLE and HoME on synthetic tasks whose correlation you control. The interactive pages are being built; "
    "meanwhile every model trains from the command line: `python -m mtl_core train --help`."
)
