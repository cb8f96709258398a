"""Start the app warm for a class: `python serve_app.py [streamlit run's options]`.

    python serve_app.py --server.address 0.0.0.0 --server.port 8501

Plain `streamlit run app.py` imports PyTorch, the library and the pages, reads the bundled studies and
starts the training workers on the first visit, so a class that opens the link together waits on a
"Starting the class server" message. This does all of that once, before the server listens, then runs
`streamlit run app.py` in this same process, where the imports and the workers are kept: the first
student gets a page as quick as the tenth. `python -m mtl_core serve` starts its app processes this way.
"""

import logging
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def warm() -> float:
    """Import and build what every first page needs; the seconds it took."""
    start = time.perf_counter()
    quiet = logging.getLogger("streamlit.runtime.caching.cache_data_api")   # "no runtime": the pages' caches are made later, in it
    import streamlit  # noqa: F401 - makes that logger, with its level

    quiet.setLevel(logging.ERROR)
    import altair  # noqa: F401 - what the pages draw with
    import torch  # noqa: F401

    import pages.lesson, pages.panel, pages.studies  # noqa: F401 - and through them the knob table, the store and the live races
    from mtl_core.data import funnel  # noqa: F401
    from mtl_core.settings import builders  # noqa: F401
    from mtl_core.studies import experiments, lessons  # noqa: F401
    from mtl_core.view import charts, network  # noqa: F401
    from mtl_core.studies.claims import CLAIMS
    from mtl_core.config import ConfigError
    from mtl_core.live import shared_backend

    for c in CLAIMS:   # the Start page and the lessons say them: their bundled studies are read once here
        c.text()
    try:
        shared_backend().warm()   # the training workers, started before the first Play
    except ConfigError:   # a bad MTL_* variable: every page says so once the server runs (app.py)
        pass
    quiet.setLevel(logging.WARNING)
    return time.perf_counter() - start


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("mtl_playground").info("Warmed up in %.1f s; starting the server.", warm())
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *sys.argv[1:]]
    sys.exit(cli.main())
