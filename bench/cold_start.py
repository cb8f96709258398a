"""Cold start: how long a freshly started server makes its first students wait, plain and warmed up.

    python -m bench.cold_start             # about a minute on 2 cores

For each way of starting (plain `streamlit run app.py`, then `python serve_app.py`, which imports and
starts the workers before it listens) it starts a fresh server and prints the seconds until the server
answers its health check, until a first Chromium page shows the Start page whole (its heading and first
chart), and the same for a second browser opened after it; then the ratio plain / warm for the first page.
"""

from __future__ import annotations

import argparse
import shutil
import time

from playwright.sync_api import sync_playwright

from .load import CHROMIUM_ARGS, start_server


def first_page(browser, url: str) -> float:
    """Seconds from opening the link until the Start page shows its heading and first chart."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    began = time.perf_counter()
    page.goto(url)
    page.get_by_role("heading", name="MTL Playground").wait_for(timeout=120_000)
    page.locator("[data-testid=stVegaLiteChart]").first.wait_for(timeout=120_000)
    seconds = time.perf_counter() - began
    page.close()
    return seconds


def measure(plain: bool) -> tuple[float, float, float]:
    """(health, first browser, second browser) seconds on a fresh server."""
    began = time.perf_counter()
    server, url = start_server(plain=plain)
    health = time.perf_counter() - began
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            first, second = first_page(browser, url), first_page(browser, url)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return health, first, second


def main(argv=None) -> None:
    argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.split("\n\n")[0]).parse_args(argv)
    rows = {}
    print(f"{'start':>20} {'health':>7} {'first page':>10} {'second':>7}   (seconds)")
    for name, plain in (("streamlit run", True), ("serve_app.py", False)):
        rows[name] = measure(plain)
        print(f"{name:>20} {rows[name][0]:>7.1f} {rows[name][1]:>10.1f} {rows[name][2]:>7.1f}", flush=True)
    print(f"first page, plain / warm: {rows['streamlit run'][1] / rows['serve_app.py'][1]:.1f}x")


if __name__ == "__main__":
    main()
