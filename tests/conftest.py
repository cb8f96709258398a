"""Every test process keeps the app's store in a fresh temporary file (the app's default lives beside the app),
and so does every server a test starts, which inherits the environment."""

import os
import tempfile

os.environ.setdefault("MTL_STORE", os.path.join(tempfile.mkdtemp(prefix="mtl-store-"), "store.sqlite"))


# ------------------------------------------------------------------ helpers the test modules share

import secrets   # noqa: E402
from pathlib import Path   # noqa: E402  (after the store is set, so nothing imported here opens the app's own)

import pytest   # noqa: E402

from hypothesis import strategies as st   # noqa: E402
from streamlit.testing.v1 import AppTest   # noqa: E402

from mtl_core.models import build_model, ModelConfig   # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["pages/start.py", "pages/data.py", "pages/playground.py", "pages/inside.py", "pages/sweep.py", "pages/ablation.py",
         "pages/transfer.py"]
TASKS = ("a", "b", "c")


def open_page(page, query=None, **params):
    """A page as a browser opens a deep link to it: the link's parameters (`query` maps a key to its values,
    `params` to one value), then one run of the page itself."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in {**(query or {}), **params}.items():
        at.query_params[key] = value
    if page != "pages/start.py":   # the start page is the default one, at the app's root
        at.switch_page(page)
    at.run()
    return at


def small_model(arch, seed=0, groups=(0, 0, 1), **changes):
    """`arch` on three tasks of 20 features (`changes` to its ModelConfig)."""
    return build_model(ModelConfig.for_arch(arch, **changes), TASKS, groups, features=20, seed=seed)


def link_texts(knob):
    """Link texts for a knob: values that fit, values just outside, and junk."""
    good = st.sampled_from([*knob.to_link(knob.default), "0", *map(str, knob.options[:3])])
    numbers = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr))
    junk = st.sampled_from(["", "true", "false", "0", "1", "yes", "inf", "-inf", "NaN", "1e309", "[x](http://e.x)",
                            "![x](http://e.x/a.png)", "<b>b</b>", "9" * 500, "MMoE", "HoME", ":red[x]", "`x`", "<img src=x>"])
    return st.one_of(good, numbers, junk, st.text(max_size=60))


# The store on an SQLite file and, where MTL_TEST_POSTGRES names a server (.ci/run starts one), on PostgreSQL.
SERVER = os.environ.get("MTL_TEST_POSTGRES", "")


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path):
    """A fresh store location: a file, or a new database on the test server (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(tmp_path / "s.sqlite")
        return
    if not SERVER:
        pytest.skip("MTL_TEST_POSTGRES names no PostgreSQL server (.ci/postgres starts one)")
    import psycopg
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield SERVER.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
