"""Charts (Altair) and the network picture's data, from tidy tables; no Streamlit."""
