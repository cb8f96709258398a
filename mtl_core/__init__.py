"""MTL Playground's core: synthetic tasks, expert-routing models, streaming training, metrics.

No Streamlit here; the app and the CLI are built on top of this package.
"""
