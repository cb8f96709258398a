"""How long each Playground lesson takes in the app, as a student plays it: one real server, one
headless Chromium page per lesson, from pressing Play to the first chart and to the last model's last step.

    python -m bench.lesson_time                              # about 2 minutes on 2 cores
    python -m bench.lesson_time --csv data/lesson_time.csv   # what the Start page shows
    python -m bench.lesson_time --lesson temperature --csv data/lesson_time.csv   # one lesson's row replaced

The lesson check (`python -m mtl_core lessons`) times training alone; this adds what the app costs
around it (a worker process, the live charts), so the Start page's "about N s" can be compared.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
from playwright.sync_api import sync_playwright

from bench.load import CHROMIUM_ARGS, start_server
from mtl_core.studies.lessons import LESSONS

PROGRESS = re.compile(r"step (\d+)/(\d+)")


def progressed(page) -> bool:
    """The first update has arrived: some model reports a step above 0."""
    return any(int(m.group(1)) > 0 for m in map(PROGRESS.search, page.get_by_text(PROGRESS).all_inner_texts()) if m)


def finished(page) -> bool:
    bars = [PROGRESS.search(t) for t in page.get_by_text(PROGRESS).all_inner_texts()]
    return bool(bars) and all(b and b.group(1) == b.group(2) for b in bars)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lesson_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", help="write lesson,first_chart_seconds,app_seconds here")
    parser.add_argument("--lesson", action="append", help="only this lesson (its key; repeatable); its rows replace those in --csv")
    a = parser.parse_args(argv)
    rows = []
    server, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            print(f"{'lesson':<14} {'first chart':>12} {'seconds in the app':>18}")
            for lesson in (one for one in LESSONS if one.page == "playground" and (not a.lesson or one.key in a.lesson)):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}/playground?{urlencode(lesson.link(), doseq=True)}")
                page.get_by_role("heading", name="Playground").wait_for(timeout=60_000)
                page.get_by_role("button", name="Play").click(timeout=90_000)
                started = time.perf_counter()
                while not (page.locator("[data-testid=stVegaLiteChart]").count() and progressed(page)):
                    time.sleep(0.05)
                first = time.perf_counter() - started
                while not finished(page):
                    time.sleep(0.2)
                rows.append(dict(lesson=lesson.key, first_chart_seconds=round(first, 1), app_seconds=round(time.perf_counter() - started, 1)))
                print(f"{lesson.key:<14} {first:>12.1f} {rows[-1]['app_seconds']:>18.1f}", flush=True)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    if a.csv:
        timed = pd.DataFrame(rows)
        if a.lesson and Path(a.csv).exists():
            kept = pd.read_csv(a.csv)
            timed = pd.concat([kept[~kept.lesson.isin(timed.lesson)], timed], ignore_index=True)
        timed.to_csv(a.csv, index=False)


if __name__ == "__main__":
    main()
