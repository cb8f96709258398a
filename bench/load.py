"""Load benchmark: one real server, N students playing the default race at once.

    python -m bench.load                    # N = 1, 5, 10 (about 3 minutes on 2 cores)
    python -m bench.load --students 1,30 --seconds 30 --browsers 2
    python -m bench.load --network          # each class size twice: network view off, then on (every student)
    python -m bench.load --students 15,30 --browsers 0 --warm   # each size on a fresh server, then on one warm server
    python -m bench.load --students 10,15 --browsers 0 --store-compare   # each size with the store on disk, then in memory
    python -m bench.class_load --students 25   # class mode: students join a class, play its lesson, the dashboard watches

It starts the app on a free port as a class gets it (`python serve_app.py`; `--plain`: `streamlit run app.py`) and, for every N, that many students who open the
Playground and press Play: `--browsers` of them are real headless Chromium pages (Playwright), the
others speak Streamlit's websocket protocol the way the browser does (the same BackMsg/ForwardMsg
protobufs, the same auto-rerun of the live fragment every interval the server asks for, a per-browser
cookie), so they drive the same server code without a browser's own CPU cost on this machine.
Each student counts chart updates (fragment redraws that reached it) and race-steps (the step of the
race's first model, read from the progress bar text). Meanwhile the server's health endpoint is
polled, and the CPU time of the page process and of its training workers is read from /proc (Linux).
It prints, per N: chart updates/s and race-steps/s per student (min and mean), total race-steps/s,
health latency p50/p95, CPU seconds per second of the page process and of the workers, and the page
process's CPU time per chart update (the cost of one redraw, all included), how many students got
nothing and how many were told the server is full.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

from mtl_core.serve.classroom import answers, Classroom, free_port

ROOT = Path(__file__).resolve().parent.parent
LOG = open(os.environ.get("MTL_BENCH_LOG", os.devnull), "w")  # the server's output, when asked
QUERY = {"samples": "50000", "epochs": "50"}   # the default race (Shared-Bottom + MMoE), long enough not to finish
IDLE = 20   # seconds before a worker lets an untouched race go (15 minutes in a real class), so "after" is measurable
STEP_TEXT = re.compile(r"step (\d+)/\d+")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Student:
    """What one student saw: (time, race step) at every chart update."""

    name: str
    updates: list[tuple[float, int]] = field(default_factory=list)
    error: str = ""
    told_full: bool = False   # the page said "The server is full" (protocol students only)

    def rates(self, start: float, end: float) -> tuple[float, float]:
        seen = [(t, s) for t, s in self.updates if start <= t <= end]
        if len(seen) < 2:
            return 0.0, 0.0
        return (len(seen) - 1) / (seen[-1][0] - seen[0][0]), (seen[-1][1] - seen[0][1]) / (seen[-1][0] - seen[0][0])


def messages(ws, until) -> Iterator[ForwardMsg]:
    """The server's messages to a browser's websocket, decoded, until `until()` (asked at least every 0.5 s)."""
    while not until():
        try:
            raw = ws.recv(timeout=0.5)
        except TimeoutError:
            continue
        message = ForwardMsg()
        message.ParseFromString(raw)
        yield message


def protocol_student(url: str, student: Student, stop: threading.Event, network: bool = False) -> None:
    """A student without a browser: the websocket protocol of Streamlit's frontend. With `network`, the
    student switches "Draw the network" on once it appears (and, as a browser, sends it with every rerun)."""
    host = url.split("//", 1)[1]
    lock = threading.Lock()
    try:
        with connect(f"ws://{host}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
                     additional_headers={"Cookie": f"mtl_browser={secrets.token_urlsafe(18)}", "Origin": url}) as ws:
            page = {"hash": ""}  # as the browser: the page by name first, then by the hash its navigation named
            toggle = {"id": None}  # the network toggle's widget id, once seen (network students only)

            def rerun(fragment: str = "", widgets=()):
                message = BackMsg()
                state = message.rerun_script
                state.query_string = urlencode(QUERY)
                if page["hash"]:
                    state.page_script_hash = page["hash"]
                else:
                    state.page_name = "playground"
                if fragment:
                    state.fragment_id, state.is_auto_rerun = fragment, True
                for widget_id in widgets:
                    widget = state.widget_states.widgets.add()
                    widget.id, widget.trigger_value = widget_id, True
                if toggle["id"] is not None:
                    widget = state.widget_states.widgets.add()
                    widget.id, widget.bool_value = toggle["id"], True
                with lock:
                    ws.send(message.SerializeToString())

            timers: dict[str, threading.Event] = {}

            def auto_rerun(fragment: str, interval: float, cancel: threading.Event):
                while not cancel.wait(interval) and not stop.is_set():
                    rerun(fragment)

            rerun()
            play, step, pressed = None, None, False
            for message in messages(ws, stop.is_set):
                kind = message.WhichOneof("type")
                if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                    element = message.delta.new_element
                    if element.WhichOneof("type") == "button" and element.button.label == "Play":
                        play = element.button.id
                    elif (network and toggle["id"] is None and element.WhichOneof("type") == "checkbox"
                          and element.checkbox.label == "Draw the network"):
                        toggle["id"] = element.checkbox.id   # switched on with the press of Play (every rerun sends it)
                    elif element.WhichOneof("type") == "markdown" and element.markdown.body.startswith("The server is full"):
                        student.told_full = True
                    elif element.WhichOneof("type") == "progress" and step is None:
                        found = STEP_TEXT.search(element.progress.text)
                        step = int(found.group(1)) if found else None
                elif kind == "navigation":   # the page the run resolved to (a first run starts as app.py's)
                    page["hash"] = message.navigation.page_script_hash
                elif kind == "new_session" and not message.metadata.run.fragment_ids:
                    for cancel in timers.values():  # a full run: the browser drops every auto-rerun timer
                        cancel.set()
                    timers.clear()
                elif kind == "auto_rerun" and message.auto_rerun.fragment_id not in timers:
                    cancel = timers[message.auto_rerun.fragment_id] = threading.Event()
                    threading.Thread(target=auto_rerun, args=(message.auto_rerun.fragment_id, message.auto_rerun.interval, cancel),
                                     daemon=True).start()
                elif kind == "stop_auto_rerun":
                    for fragment in message.stop_auto_rerun.fragment_ids:
                        timers.pop(fragment, threading.Event()).set()
                elif kind == "script_finished":
                    if message.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY and step is not None:
                        student.updates.append((time.monotonic(), step))
                    elif not pressed and play is not None:
                        pressed = True
                        rerun(widgets=[play])
                    step = None
            for cancel in timers.values():
                cancel.set()
    except Exception as error:  # noqa: BLE001 - reported in the table
        student.error = f"{type(error).__name__}: {error}"


# In the page: every 20 ms read the first progress bar's text (textContent, no layout) and log (wall-clock
# ms, step) when the step moved, i.e. when a redraw reached the screen's DOM.
WATCH_PROGRESS = """() => {
  window.__steps = [];
  let last = null;
  setInterval(() => {
    const bar = document.querySelector('[data-testid="stProgress"]');
    const found = bar && /step (\\d+)\\/\\d+/.exec(bar.textContent);
    if (found && found[1] !== last) { last = found[1]; window.__steps.push([Date.now(), Number(found[1])]); }
  }, 20);
}"""


def browser_student(url: str, student: Student, stop: threading.Event, network: bool = False) -> None:
    """A student in a real headless Chromium (who switches the network view on, with `network`)."""
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/playground?{urlencode(QUERY)}")
            page.get_by_role("button", name="Play").click(timeout=120_000)
            if network:
                page.get_by_text("Draw the network").click(timeout=120_000)
            page.evaluate(WATCH_PROGRESS)   # the page logs its own redraws: polling it from here would cost its CPU
            while not stop.is_set():
                time.sleep(0.5)
                offset = time.monotonic() - time.time()
                student.updates = [(t / 1000 + offset, step) for t, step in page.evaluate("window.__steps")]
            browser.close()
    except Exception as error:  # noqa: BLE001
        student.error = f"{type(error).__name__}: {error}"


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def over_workers(pid: int, measure) -> float:
    """`measure` (resident MB or CPU seconds) summed over the worker processes of the server `pid`."""
    total = 0.0
    for child in children(pid):
        try:
            total += measure(child)
        except OSError:  # a worker that just ended
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError):
                pass
    return found


def start_server(root: Path = ROOT, idle: int = IDLE, plain: bool = False, store: str = "") -> tuple[subprocess.Popen, str]:
    """The app of the checkout at `root` on a free port, started as a class gets it (`python serve_app.py`,
    warmed up before it listens) or, `plain` or in a checkout without it, with `streamlit run app.py`;
    (process, url) once it answers. A race untouched for `idle` seconds is let go. `store`: its MTL_STORE."""
    port = free_port()
    env = {**os.environ, "MTL_RACE_IDLE_SECONDS": str(idle), **({"MTL_STORE": store} if store else {})}
    start = ["serve_app.py"] if (root / "serve_app.py").exists() and not plain else ["-m", "streamlit", "run", "app.py"]
    server = subprocess.Popen([sys.executable, *start, "--server.port", str(port),
                               "--server.address", "127.0.0.1", "--server.disconnectedSessionTTL", "5"],
                              cwd=root, stdout=LOG, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    if answers(url):
        return server, url
    server.kill()
    raise SystemExit("the server did not start")


def start_class(processes: int):
    """`python -m mtl_core serve --processes N` on free ports: (classroom, url, app pids) once every process answers."""
    port = free_port()
    os.environ["MTL_RACE_IDLE_SECONDS"] = str(IDLE)
    room = Classroom(processes, port, "127.0.0.1")
    room.start()
    for app_port in [*room.app_ports, room.teacher_port]:
        answers(f"http://127.0.0.1:{app_port}")
    return room, f"http://127.0.0.1:{port}", [app.pid for app in room.apps.values()]


def total(pids: list[int], measure) -> float:
    return sum(measure(pid) for pid in pids)


def measure(url: str, pids: list[int], students: int, browsers: int, seconds: float, network: bool = False,
            settle: bool = True) -> dict:
    """One class size on the server at `url` (app processes `pids`, their figures summed): the figures of the
    table; with `settle`, also the memory once the students have left and their races were let go."""
    stop = threading.Event()
    crowd = [Student(f"student {i}") for i in range(students)]
    threads = [threading.Thread(target=browser_student if i < browsers else protocol_student, args=(url, s, stop, network),
                                daemon=True) for i, s in enumerate(crowd)]
    memory = dict(page_start=total(pids, rss_mb))
    for t in threads:
        t.start()
    deadline = time.monotonic() + 180
    while any(len(s.updates) < 3 and not s.error for s in crowd) and time.monotonic() < deadline:
        time.sleep(0.2)  # everyone playing (the workers started, the first charts drawn)
    latencies, start = [], time.monotonic()
    page0, workers0 = total(pids, cpu_seconds), sum(over_workers(pid, cpu_seconds) for pid in pids)
    while time.monotonic() - start < seconds:
        began = time.perf_counter()
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=10).read()
            latencies.append(time.perf_counter() - began)
        except OSError:
            latencies.append(10.0)
        time.sleep(0.2)
    end = time.monotonic()
    page = total(pids, cpu_seconds) - page0
    workers = sum(over_workers(pid, cpu_seconds) for pid in pids) - workers0
    memory.update(page_playing=total(pids, rss_mb), workers_playing=sum(over_workers(pid, rss_mb) for pid in pids))
    stop.set()
    for t in threads:
        t.join(timeout=30)
    if settle:
        time.sleep(IDLE + 15)  # the students left: their races pause, then the workers let them go; sessions close
        memory.update(page_after=total(pids, rss_mb), workers_after=sum(over_workers(pid, rss_mb) for pid in pids))
    rates = [s.rates(start, end) for s in crowd]
    updates = sum(len([u for u in s.updates if start <= u[0] <= end]) for s in crowd)
    latencies.sort()
    return dict(students=students, errors=[s.error for s in crowd if s.error],
                starved=sum(1 for r in rates if r[0] == 0 or r[1] == 0), told_full=sum(s.told_full for s in crowd),
                updates_min=min(r[0] for r in rates), updates_mean=statistics.mean(r[0] for r in rates),
                updates_browsers=[r[0] for r in rates[:browsers]],
                updates_protocol_min=min((r[0] for r in rates[browsers:]), default=None),
                steps_min=min(r[1] for r in rates), steps_mean=statistics.mean(r[1] for r in rates),
                steps_total=sum(r[1] for r in rates), p50=latencies[len(latencies) // 2], p95=latencies[int(len(latencies) * 0.95)],
                page_cpu=page / (end - start), workers_cpu=workers / (end - start), redraw_ms=1000 * page / max(updates, 1),
                **memory)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", default="1,5,10", help="class sizes to measure, e.g. 1,5,10")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per class size")
    parser.add_argument("--browsers", type=int, default=1, help="students that are real Chromium pages (the rest use the protocol)")
    parser.add_argument("--network", action="store_true", help="measure each class size again with every student's network view on")
    parser.add_argument("--warm", action="store_true", help="also measure each class size on one server kept warm across sizes")
    parser.add_argument("--plain", action="store_true", help="start the server with plain `streamlit run app.py` (it imports on the "
                        "first visit) instead of `python serve_app.py`")
    parser.add_argument("--store-compare", action="store_true",
                        help="measure each class size twice on fresh servers: the store in a new SQLite file on disk (as a class "
                             "has it), then in the page process's memory (MTL_STORE=:memory:, nothing written to disk)")
    parser.add_argument("--processes", type=int, default=1,
                        help="app processes behind nginx (python -m mtl_core serve); page CPU and memory are their sums")
    a = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores; {a.processes} app process(es); default race Shared-Bottom + MMoE ({urlencode(QUERY)}); "
          f"{a.seconds:.0f} s measured per class size")
    print(f"{'students':>8} {'updates/s min':>13} {'mean':>6} {'race-steps/s min':>16} {'mean':>6} {'total':>7} "
          f"{'health p50':>10} {'p95':>7} {'page CPU':>8} {'workers CPU':>11} {'ms/redraw':>9}")
    solo, memory_rows, with_network, by_store, warm = None, [], [], [], None
    stores = (str(Path(tempfile.mkdtemp()) / "store.sqlite"), ":memory:") if a.store_compare else ("",)
    plan = [(int(v), on, False, store) for v in a.students.split(",") for on in ((False, True) if a.network else (False,))
            for store in stores]
    plan += [(int(v), False, True, "") for v in a.students.split(",")] if a.warm else []
    for n, network, on_warm, store in plan:
        if on_warm and warm is None:
            warm = start_server(plain=a.plain)   # one server for every size: what a class that arrives in waves meets
        if a.processes > 1:
            room, url, pids = start_class(a.processes)
        else:
            server, url = warm if on_warm else start_server(plain=a.plain, store=store)  # else a fresh server per class size
            pids = [server.pid]
        try:
            r = measure(url, pids, n, min(a.browsers, n), a.seconds, network)
        finally:
            if a.processes > 1:
                room.stop()
            elif not on_warm:
                server.terminate()
                server.wait(timeout=30)
        if network:
            with_network.append((memory_rows[-1], r))
        solo = solo or r["steps_mean"]
        print(f"{n:>8} {r['updates_min']:>13.1f} {r['updates_mean']:>6.1f} {r['steps_min']:>16.0f} {r['steps_mean']:>6.0f} "
              f"{r['steps_total']:>7.0f} {1000 * r['p50']:>8.0f}ms {1000 * r['p95']:>5.0f}ms {r['page_cpu']:>8.2f} "
              f"{r['workers_cpu']:>11.2f} {r['redraw_ms']:>9.1f}"
              + (f"   Chromium: {', '.join(f'{u:.1f}' for u in r['updates_browsers'])} updates/s" if r["updates_browsers"] else "")
              + (f", protocol students min {r['updates_protocol_min']:.1f}" if r["updates_protocol_min"] is not None else "")
              + f"   got nothing: {r['starved']}, told full: {r['told_full']}" + ("   (warm server)" if on_warm else "")
              + (f"   errors: {r['errors']}" if r["errors"] else "") + ("   network view on" if network else "")
              + ("   (store in memory)" if store == ":memory:" else ""), flush=True)
        if store == ":memory:":
            by_store.append((memory_rows[-1], r))
        elif not network and not on_warm:
            memory_rows.append(r)
    if warm is not None:
        warm[0].terminate()
        warm[0].wait(timeout=30)
    print("total race-steps/s relative to one student alone: "
          + (", ".join(f"{r['students']}: {r['steps_total'] / solo:.2f}x" for r in memory_rows) if solo else
             "no student's race moved in the first class size, so there is nothing to compare with"))
    for off, on in with_network:
        print(f"network view on/off, {off['students']} students: updates/s min {on['updates_min'] / off['updates_min']:.2f}x, "
              f"Chromium {on['updates_browsers'][0] / off['updates_browsers'][0]:.2f}x, "
              f"page CPU per redraw {on['redraw_ms'] / off['redraw_ms']:.2f}x" if off["updates_browsers"] and on["updates_browsers"]
              and off["updates_min"] and off["redraw_ms"] else f"network view, {off['students']} students: no updates to compare")
    for disk, ram in by_store:
        print(f"store on disk / in memory, {disk['students']} students: page CPU per redraw {disk['redraw_ms'] / ram['redraw_ms']:.2f}x, "
              f"updates/s min {disk['updates_min']:.1f} / {ram['updates_min']:.1f}" if ram["redraw_ms"] and ram["updates_min"]
              else f"store on disk / in memory, {disk['students']} students: no updates to compare")
    print(f"\nmemory (MB resident): page process at start, playing, {IDLE + 15} s after the students left; "
          "workers playing, after; and what each student beyond the first class size added while playing")
    first = memory_rows[0]
    for r in memory_rows:
        extra = max(r["students"] - first["students"], 1)
        print(f"{r['students']:>8} students: page {r['page_start']:.0f} -> {r['page_playing']:.0f} -> {r['page_after']:.0f}; "
              f"workers {r['workers_playing']:.0f} -> {r['workers_after']:.0f}"
              + (f"; per extra student: page {(r['page_playing'] - first['page_playing']) / extra:.1f}, "
                 f"workers {(r['workers_playing'] - first['workers_playing']) / extra:.1f}" if r is not first else ""))

if __name__ == "__main__":
    main()
