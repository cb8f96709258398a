"""A class larger than the machine serves well: a real server, twelve students speaking Streamlit's protocol
(bench/load.py's students), each must get chart updates and a moving race; none is starved."""

import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("MTL_LOAD_TESTS") != "1",
                                reason="a load test (40 s, a real server): MTL_LOAD_TESTS=1 python -m pytest -q tests/test_overload.py")
load = pytest.importorskip("bench.load", reason="the load benchmark needs websockets (installed with Streamlit)")


def test_an_overloaded_server_still_serves_every_student():
    server, url = load.start_server()
    try:
        r = load.measure(url, [server.pid], students=12, browsers=0, seconds=10, settle=False)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not r["errors"], r["errors"]
    assert r["starved"] == 0 and r["updates_min"] > 0 and r["steps_min"] > 0, r
    assert r["p95"] < 5, r   # the server still answers its health check
