"""Load benchmark, class mode: N students join a class, predict, play its lesson and send their results while the
teacher's dashboard is open.

    python -m bench.class_load                       # 25 students, the shared-input lesson (about 2 minutes on 2 cores)
    python -m bench.class_load --students 10 --screenshot docs/class-dashboard.png

It starts the app on a free port (or `--processes N` behind nginx) with a fresh store, opens a class in that store (as the Class page's "Open the
class" does), and starts the teacher: the dashboard's page over Streamlit's websocket protocol, rerunning its
live fragment every interval the server asks for, as a browser does. Each student is a protocol client too
(bench/load.py explains why: the same server code without a browser's own CPU cost on this machine) that does
what a student's clicks do: opens the join link, presses Join, chooses an answer and sends it, opens the
lesson, waits for its race to be drawn, presses Play, and waits for its result to go to the class.

It prints the dashboard's updates (how often its live fragment finished, and the longest gap between two),
whether every student's result reached the dashboard (its 'finished' count against the students who were told
their result went), how long a student took from joining to a sent result (min, median, max), and the
page process's CPU. With --screenshot, a headless Chromium opens the teacher link at the end, reveals the result
and saves the dashboard.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import re
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

from bench.load import CHROMIUM_ARGS, cpu_seconds, messages, start_class, start_server, total
from mtl_core.serve.classes import Classes
from mtl_core.serve.store import Store
from mtl_core.studies import lessons

SENT = re.compile(r"Your result went to class")


class Session:
    """One browser tab over Streamlit's websocket protocol: reruns with widget states, the auto-reruns of live
    fragments, page switches; `elements` maps a label (or a text) to the latest element of a full or fragment run."""

    def __init__(self, ws, page: str, query: str):
        self.ws = ws
        self.page, self.page_hash, self.query = page, "", query
        self.lock = threading.Lock()
        self.timers: dict[str, threading.Event] = {}
        self.elements: dict[str, object] = {}
        self.texts: list[str] = []
        self.fragment_runs: list[float] = []   # when a fragment run finished
        self.full_runs = 0
        self.closed = threading.Event()

    def rerun(self, widgets=(), fragment: str = "") -> None:
        """`widgets`: (id, kind, value) with kind a WidgetState field (trigger_value, string_value, ...)."""
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query
        if self.page_hash:
            state.page_script_hash = self.page_hash
        else:
            state.page_name = self.page
        if fragment:
            state.fragment_id, state.is_auto_rerun = fragment, True
        for widget_id, kind, value in widgets:
            widget = state.widget_states.widgets.add()
            widget.id = widget_id
            setattr(widget, kind, value)
        with self.lock:
            self.ws.send(message.SerializeToString())

    def _auto_rerun(self, fragment: str, interval: float, cancel: threading.Event) -> None:
        while not cancel.wait(interval) and not self.closed.is_set():
            try:
                self.rerun(fragment=fragment)
            except Exception:  # noqa: BLE001 - the socket closed under us
                return

    def pump(self, done, timeout: float) -> bool:
        """Handle messages until `done(self)` after a finished run, or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        for message in messages(self.ws, lambda: time.monotonic() >= deadline):
            kind = message.WhichOneof("type")
            if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                element = message.delta.new_element
                which = element.WhichOneof("type")
                inner = getattr(element, which)
                label = getattr(inner, "label", "") or getattr(inner, "body", "") or getattr(inner, "text", "")
                if label:
                    self.elements[label] = (which, inner)
                    self.texts.append(label)
            elif kind == "navigation":
                self.page_hash = message.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query = message.page_info_changed.query_string
            elif kind == "new_session" and not message.metadata.run.fragment_ids:
                for cancel in self.timers.values():
                    cancel.set()
                self.timers.clear()
            elif kind == "auto_rerun" and message.auto_rerun.fragment_id not in self.timers:
                cancel = self.timers[message.auto_rerun.fragment_id] = threading.Event()
                threading.Thread(target=self._auto_rerun, args=(message.auto_rerun.fragment_id, message.auto_rerun.interval,
                                                               cancel), daemon=True).start()
            elif kind == "stop_auto_rerun":
                for fragment in message.stop_auto_rerun.fragment_ids:
                    self.timers.pop(fragment, threading.Event()).set()
            elif kind == "script_finished":
                if message.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                    self.fragment_runs.append(time.monotonic())
                else:
                    self.full_runs += 1
                if done(self):
                    return True
        return False

    def find(self, kind: str, pattern: str):
        """The latest element of `kind` whose label matches `pattern`, or None."""
        for label, (which, inner) in reversed(list(self.elements.items())):
            if which == kind and re.search(pattern, label):
                return inner
        return None

    def close(self) -> None:
        self.closed.set()
        for cancel in self.timers.values():
            cancel.set()


def browser(url: str, cookies: str = ""):
    """A new browser's websocket to the server (its own cookie, and `cookies` besides), to use in `with`."""
    return connect(f"ws://{url.split('//', 1)[1]}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
                   additional_headers={"Cookie": f"mtl_browser={secrets.token_urlsafe(18)}{cookies}", "Origin": url})


@dataclass
class Student:
    number: int
    answer: str
    joined: float = 0.0
    sent: float = 0.0
    error: str = ""


def student(url: str, code: str, who: Student) -> None:
    """One student in a browser of its own (errors are kept for the table)."""
    try:
        with browser(url) as ws:
            _play(Session(ws, "class", urlencode({"join": code})), who)
    except Exception as error:  # noqa: BLE001 - reported in the table
        who.error = f"{type(error).__name__}: {error}"


def _play(s: Session, who: Student) -> None:
    """What a student's clicks do, from the join link to the result sent."""
    s.rerun()
    assert s.pump(lambda s: s.find("button", "^Join$"), 120), "no Join button"
    who.joined = time.monotonic()
    s.rerun([(s.find("button", "^Join$").id, "trigger_value", True)])
    assert s.pump(lambda s: s.find("radio", "your prediction"), 120), "no prediction to make"
    radio = (s.find("radio", "your prediction").id, "string_value", who.answer)
    s.rerun([radio])
    assert s.pump(lambda s: s.full_runs >= 3, 60)
    s.rerun([radio, (s.find("button", "Send my prediction").id, "trigger_value", True)])
    assert s.pump(lambda s: s.find("button", "Open the lesson"), 120), "the lesson did not open after the prediction"
    s.rerun([radio, (s.find("button", "Open the lesson").id, "trigger_value", True)])
    assert s.pump(lambda s: s.find("progress", r"step 0/\d+ · ready") and s.find("button", "^Play$"), 180), "no race drawn"
    s.rerun([(s.find("button", "^Play$").id, "trigger_value", True)])
    assert s.pump(lambda s: any(SENT.search(t) for t in s.texts[-200:]), 900), "no result sent"
    who.sent = time.monotonic()
    s.close()


def teacher(url: str, code: str, key: str, stop, seen) -> None:
    """The dashboard's page: every finished run of its live fragment, with the 'finished' count it showed, put on the
    queue `seen`. It runs in a process of its own, so that the students' clients (which parse every message of their
    live pages) cannot delay its clock. It holds the teacher's cookie, as the teacher's browser does once the Class
    page kept the key (behind `serve`'s proxy it reaches the teachers' own process)."""
    with browser(url, f"; mtl_teacher={code}.{key}") as ws:
        s = Session(ws, "class", urlencode({"code": code, "key": key}))
        s.rerun()
        while not stop.is_set():
            before = len(s.fragment_runs)
            s.pump(lambda s: len(s.fragment_runs) > before, 2)
            if len(s.fragment_runs) > before:
                finished = s.find("metric", "^finished$")
                seen.put((s.fragment_runs[-1], int(finished.body) if finished is not None else 0))
        s.close()


def screenshot(url: str, code: str, key: str, path: str) -> None:
    """The dashboard in headless Chromium, the result revealed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/class?{urlencode({'code': code, 'key': key})}")
        page.get_by_role("button", name="Reveal the result to students").click(timeout=60_000)
        page.get_by_text("showed what the lesson predicts").wait_for(timeout=30_000)
        time.sleep(2)
        page.screenshot(path=path, full_page=True)
        browser.close()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.class_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=25)
    parser.add_argument("--lesson", default="shared-input", choices=[lesson.key for lesson in lessons.LESSONS if lesson.page == "playground"])
    parser.add_argument("--screenshot", metavar="PATH", help="save the revealed dashboard (headless Chromium) at the end")
    parser.add_argument("--processes", type=int, default=1,
                        help="app processes behind nginx (python -m mtl_core serve); page CPU is their sum")
    a = parser.parse_args(argv)
    lesson = lessons.lesson(a.lesson)
    location = str(Path(tempfile.mkdtemp()) / "store.sqlite")
    if a.processes > 1:
        os.environ["MTL_STORE"] = location
        room, url, pids = start_class(a.processes)
    else:
        server, url = start_server(store=location)
        pids = [server.pid]
    store = Store(location)
    opened = Classes(store).open(lesson.key, 0, lesson.seeds_per_run, len(lesson.answers))
    store.close()
    stop, updates = multiprocessing.Event(), multiprocessing.Queue()
    watcher = multiprocessing.Process(target=teacher, args=(url, opened.code, opened.key, stop, updates), daemon=True)
    watcher.start()
    seen: list[tuple[float, int]] = []
    crowd = [Student(n + 1, lesson.answers[n % len(lesson.answers)]) for n in range(a.students)]
    cpu0, began = total(pids, cpu_seconds), time.monotonic()
    threads = [threading.Thread(target=student, args=(url, opened.code, who), daemon=True) for who in crowd]
    for t in threads:
        t.start()
        time.sleep(0.2)   # students arrive over a few seconds, not in the same millisecond
    for t in threads:
        t.join(timeout=1200)
    sent = [who for who in crowd if who.sent]
    deadline = time.monotonic() + 10
    while (not seen or seen[-1][1] < len(sent)) and time.monotonic() < deadline:   # the next update shows the last result
        try:
            seen.append(updates.get(timeout=0.2))
        except queue.Empty:
            pass
    ended = time.monotonic()
    cpu = total(pids, cpu_seconds) - cpu0
    stop.set()
    watcher.join(timeout=10)
    while not updates.empty():
        seen.append(updates.get())
    seen.sort()
    try:
        if a.screenshot:
            screenshot(url, opened.code, opened.key, a.screenshot)
    finally:
        if a.processes > 1:
            room.stop()
        else:
            server.terminate()
            server.wait(timeout=30)
    during = [t for t, _ in seen if began <= t <= ended]
    gaps = [b - a for a, b in zip(during, during[1:])]
    took = sorted(who.sent - who.joined for who in sent)
    late = [(round(a - began), round(b - a, 1)) for a, b in zip(during, during[1:]) if b - a > 1.0]   # the target: every second
    print(f"machine: {os.cpu_count()} cores; {a.processes} app process(es); lesson {lesson.key}; {a.students} students; "
          f"{ended - began:.0f} s from the first "
          "join to the last result on the dashboard")
    print(f"dashboard: {len(during)} updates in {ended - began:.0f} s ({len(during) / (ended - began):.2f}/s); longest gap "
          f"{max(gaps, default=float('nan')):.2f} s, gaps over 1 s: {len(late)} {late} (s from the start, gap); showed finished = "
          f"{seen[-1][1] if seen else 0} of {len(sent)} results sent")
    joins, sends = sorted(who.joined - began for who in sent), sorted(who.sent - began for who in sent)
    if took:
        print(f"students joined from {joins[0]:.0f} s to {joins[-1]:.0f} s; results sent from {sends[0]:.0f} s to {sends[-1]:.0f} s")
        print(f"join -> result sent, per student: min {took[0]:.0f} s, median {statistics.median(took):.0f} s, max {took[-1]:.0f} s")
    print(f"page process CPU: {cpu / (ended - began):.2f} s per s" + (" (all of them)" if a.processes > 1 else ""))
    for who in crowd:
        if who.error:
            print(f"student {who.number}: {who.error}")


if __name__ == "__main__":
    main()
