"""Screenshots of every page at a projector's and a laptop's window size, for the chart review.

    python -m bench.screens --out /tmp/after                         # this checkout
    python -m bench.screens --out /tmp/before --root /tmp/old-tree   # another checkout (a git worktree)

Starts the app from `--root`, plays a short race on the Playground (Shared-Bottom, MMoE and PLE on the
lesson preset), pauses it, then takes two screenshots of each page at a projector's 1280 x 720 and 1920 x 1080:
the first screen, as a class sees it before anyone scrolls (OUT/{width}x{height}-{page}-screen.png), and the
whole page (OUT/{width}x{height}-{page}.png). `--link` adds link parameters to the Playground's race (e.g.
"&present=true", with `--pages playground`: that layout folds the menu). Needs Chromium and Playwright (see tests/test_e2e.py).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.load import start_server

SIZES = ((1280, 720), (1920, 1080))
PAGES = {"Start & lessons": ("MTL Playground", "start"), "Data": ("Data", "data"), "Playground": ("Playground", "playground"),
         "Inside the experts": ("Inside the experts", "inside"), "Correlation sweep": ("Correlation sweep", "sweep"),
         "HoME ablation": ("HoME ablation", "ablation"),
         "Does sharing help?": ("Does sharing help each task?", "transfer")}   # menu link -> (page heading, file name)
RACE = "playground?preset=lesson&arch=Shared-Bottom&arch=MMoE&arch=PLE&corr=0.2&epochs=50"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def settle(page, seconds: float = 4) -> None:
    """Give the page's script time to finish and its charts time to draw."""
    time.sleep(seconds)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--train", type=float, default=12, help="seconds the race plays before the screenshots")
    parser.add_argument("--network", action="store_true", help="switch the Playground's network view on (a checkout that has it)")
    parser.add_argument("--link", default="", help="more link parameters for the Playground's race, e.g. '&present=true'")
    parser.add_argument("--pages", help="only these pages (file names, e.g. playground: the presentation layout folds the menu)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    server, url = start_server(args.root, idle=900)   # the paused race stays for every page's picture
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/{RACE}{args.link}")
            settle(page, 1)
            page.get_by_role("button", name="Play").click(timeout=90_000)
            time.sleep(args.train)
            page.get_by_role("button", name="Pause").click()
            page.get_by_role("button", name="Play").wait_for(timeout=20_000)
            for width, height in SIZES:
                page.set_viewport_size({"width": width, "height": height})
                for link, (heading, slug) in PAGES.items():
                    if args.pages and slug not in args.pages.split(","):
                        continue
                    if not page.url.split("?")[0].endswith(f"/{slug}"):
                        page.get_by_role("link", name=link).click()   # in the session (a new address would start a new one)
                    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
                    if args.network and slug == "playground":
                        page.get_by_text("Draw the network").click()
                    settle(page)
                    page.screenshot(path=str(args.out / f"{width}x{height}-{slug}-screen.png"))
                    tall = page.evaluate("Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
                    page.set_viewport_size({"width": width, "height": max(height, tall)})  # the app scrolls inside an element
                    time.sleep(2)
                    page.screenshot(path=str(args.out / f"{width}x{height}-{slug}.png"))
                    page.set_viewport_size({"width": width, "height": height})
                    print("wrote", args.out / f"{width}x{height}-{slug}.png", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
