"""End to end in a real headless Chromium (Debian's), driven by Playwright: the Playground trains live.

Skips with a message when Chromium or Playwright is missing (CI installs both). Set
MTL_SCREENSHOTS=DIR to keep screenshots (the README's come from here).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mtl_core.serve.classroom import answers, free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


LOGS: list[Path] = []   # the servers' logs, newest last (a failure shows the tail of the latest)


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port, its output in `log` (a file, not a pipe nobody reads: a full pipe
    blocks the server); (process, url) once it answers. Its store is the test session's (MTL_STORE, conftest.py)."""
    LOGS.append(log)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                "--server.address", "127.0.0.1", "--server.headless", "true"],
                               cwd=ROOT, stdout=log.open("a"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    if answers(url):
        return process, url
    process.kill()
    pytest.fail("streamlit did not start: " + log.read_text()[-2000:])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, url = start_server(tmp_path_factory.mktemp("server") / "streamlit.log")
    yield url
    process.terminate()
    process.wait(timeout=20)


def shot(page, name):
    folder = os.environ.get("MTL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def charts_drawn(page, seconds: float = 60) -> None:
    """Wait for the page's first chart; on a timeout, fail with what the page shows instead."""
    try:
        page.locator("[data-testid=stVegaLiteChart]").first.wait_for(state="attached", timeout=seconds * 1000)
    except playwright.TimeoutError:
        cookies = {c["name"]: c["value"][:6] for c in page.context.cookies()}
        log = LOGS[-1].read_text()[-3000:] if LOGS and LOGS[-1].exists() else ""
        pytest.fail("no chart after %.0f s; the browser's cookies (first characters): %s; the page shows: %s\n"
                    "the server's log ends: %s" % (seconds, cookies, page.inner_text("body")[-1500:], log))


def steps(page) -> int:
    """The training step the first progress bar reports ("Shared-Bottom: step 120/1560 · training")."""
    text = page.get_by_text(re.compile(r"step \d+/\d+")).first.inner_text()
    return int(re.search(r"step (\d+)/", text).group(1))


def press(page, button: str, then: str) -> None:
    """Press `button` and wait until the page shows it took effect (the button `then` enabled: Play/Pause exist,
    disabled, while they do not apply, so waiting for one to exist waited for nothing). On a busy machine a click can
    land while the page redraws and be lost; a student would press again, and so does this, once, saying so."""
    for attempt in range(2):
        page.get_by_role("button", name=button).click(timeout=90_000)   # the first race waits for the workers to start
        try:
            playwright.expect(page.get_by_role("button", name=then)).to_be_enabled(timeout=45_000)
            return
        except AssertionError:
            print(f"\n{button} pressed {attempt + 1} time(s): {then} still disabled after 45 s")
    pytest.fail(f"{button} did not take effect: " + page.inner_text("body")[-1500:] + "\nthe server's log ends: "
                + (LOGS[-1].read_text()[-3000:] if LOGS and LOGS[-1].exists() else ""))


def test_playground_trains_live_and_keeps_the_run_across_pages(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # first request to a fresh server is a deep link: app.py must still run (its menu, its layout)
        page.goto(f"{server}/playground?arch=Shared-Bottom&arch=MMoE&samples=20000&epochs=200")  # 15,600 steps: a fast CI machine is still training at Pause
        page.get_by_role("heading", name="Playground").wait_for(timeout=60_000)
        page.get_by_role("link", name="Start & lessons").wait_for(timeout=10_000)  # app.py's menu, not the legacy one

        # change the correlation with the keyboard, as a student would
        slider = page.get_by_role("slider", name="task correlation p")
        slider.focus()
        for _ in range(8):   # 0.5 -> 0.3 in steps of 0.05; a press a busy page dropped is pressed again
            if slider.get_attribute("aria-valuetext") == "0.30":
                break
            slider.press("ArrowLeft")
            time.sleep(0.2)
        page.wait_for_url(re.compile(r"corr=0\.3(&|$)"), timeout=20_000)   # 0.3 itself, not 0.35

        press(page, "Play", then="Pause")
        charts = page.locator("[data-testid=stVegaLiteChart]")
        deadline = time.perf_counter() + 60
        while charts.count() < 3:  # loss curves, gate heatmap, sparsity bars (redrawn every update)
            assert time.perf_counter() < deadline, "the charts did not appear"
            time.sleep(0.2)
        first = steps(page)
        seen, started = {first}, time.perf_counter()
        while time.perf_counter() - started < 4:
            seen.add(steps(page))
            time.sleep(0.05)
        rate = (len(seen) - 1) / (time.perf_counter() - started)
        print(f"\nchart updates per second while training: {rate:.1f} (steps seen {min(seen)}..{max(seen)})")
        assert max(seen) > first and rate >= 1  # the charts move while training runs (the rate is reported)
        assert page.get_by_text("Gate weights").is_visible() and page.get_by_text("Expert sparsity").is_visible()
        shot(page, "playground")
        drawn = charts.count()
        page.get_by_text("Draw the network").click()   # off by default (it costs a class chart updates)
        while charts.count() < drawn + 2:   # the chosen model's network, and the other racing model's, small
            time.sleep(0.2)
        network = charts.nth(1)   # the network view: its links follow the snapshots (every 50 steps)
        network.scroll_into_view_if_needed()
        before, at = network.screenshot(), steps(page)
        while steps(page) < at + 150:
            time.sleep(0.2)
        time.sleep(3)  # the inside view redraws less often than the curves
        assert network.screenshot() != before, "the network view did not change between snapshots"
        shot(page, "network")

        press(page, "Pause", then="Play")
        time.sleep(2)  # let an update that was in flight when we pressed Pause land
        paused_at = steps(page)
        time.sleep(1)
        assert steps(page) == paused_at  # paused means paused
        page.get_by_role("link", name="Inside the experts").click()
        page.get_by_role("heading", name="Inside the experts").wait_for(timeout=30_000)
        charts_drawn(page)
        shot(page, "inside")
        page.reload()  # a new session: the runs come back from the server, found by this browser's cookie
        page.get_by_role("heading", name="Inside the experts").wait_for(timeout=30_000)
        charts_drawn(page)
        chosen = page.locator("[data-testid=stSelectbox]").first.evaluate(
            "box => box.textContent + [...box.querySelectorAll('input')].map(i => i.value).join(' ')")
        assert re.search(r"MMoE · seed 0 · race \d+ · step [1-9]", chosen), chosen
        page.get_by_role("link", name="Data").click()   # the same knobs on another page: the browser's other widgets
        page.get_by_role("heading", name="Data").wait_for(timeout=30_000)
        page.get_by_role("link", name="Playground").click()
        page.get_by_role("heading", name="Playground").wait_for(timeout=30_000)
        page.get_by_text(re.compile(r"step \d+/\d+")).first.wait_for(timeout=30_000)
        assert steps(page) == paused_at > 0  # the run was kept, paused where we left it
        slider = page.get_by_role("slider", name="task correlation p")   # and the knobs show it (they once showed -1)
        playwright.expect(slider).to_have_attribute("aria-valuetext", "0.30", timeout=30_000)   # a rerun may still be drawing it

        page.get_by_role("link", name="Start & lessons").click()
        page.get_by_role("heading", name="MTL Playground").wait_for(timeout=30_000)
        page.locator("[data-testid=stVegaLiteChart]").first.wait_for(timeout=30_000)
        shot(page, "start")
        browser.close()


def test_a_link_shows_bad_values_as_text_and_fetches_nothing(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{server}/data?tasks=%5Blog%20in%5D(http://evil.example/x)&seed=!%5Bx%5D(http://127.0.0.1:9/a.png)"
                  "&noise=%3Cimg%20src%3Dhttp://127.0.0.1:9/b.png%3E")
        page.get_by_role("heading", name="Data").wait_for(timeout=60_000)
        alerts = page.locator("[data-testid=stAlert]")
        alerts.nth(2).wait_for(timeout=30_000)
        assert alerts.count() == 3
        assert alerts.locator("a").count() == 0 and alerts.locator("img").count() == 0
        assert "[log in](http://evil.example/x)" in alerts.first.inner_text()
        time.sleep(1)
        assert not [url for url in requested if urlsplit(url).netloc in ("127.0.0.1:9", "evil.example")]
        browser.close()


def test_a_restarted_server_finds_the_run_and_start_links_open_the_start_page(tmp_path):
    """What a browser kept survives the server: step a race, stop the server, start a new one, reload."""
    log = tmp_path / "streamlit.log"
    process, url = start_server(log)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/playground?arch=MMoE&samples=2000&epochs=20")
            page.get_by_role("button", name="Step 50").click(timeout=90_000)
            page.get_by_text("step 50/160").first.wait_for(timeout=90_000)
            process.terminate()
            process.wait(timeout=20)
            process, url = start_server(log)   # a new process (and port); the same store file, the same browser cookie
            page.goto(f"{url}/inside")
            page.get_by_role("heading", name="Inside the experts").wait_for(timeout=60_000)
            charts_drawn(page)
            chosen = page.locator("[data-testid=stSelectbox]").first.evaluate(
                "box => box.textContent + [...box.querySelectorAll('input')].map(i => i.value).join(' ')")
            assert re.search(r"MMoE · seed 0 · race \d+ · step 50", chosen), chosen
            page.goto(f"{url}/start?corr=0.2")   # the start page under its own name, with the link's parameters
            page.get_by_role("heading", name="MTL Playground").wait_for(timeout=30_000)
            time.sleep(1)   # Streamlit's "Page not found" dialog came a moment after the page
            assert "Page not found" not in page.inner_text("body")
        finally:
            browser.close()
            process.terminate()
            process.wait(timeout=20)


def free_ports(count: int) -> int:
    """A port with the `count - 1` ports after it free as well."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65536 and all(_free(base + i) for i in range(1, count)):
            return base
    pytest.fail("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx)")
def test_a_class_over_two_processes_loses_nothing_when_the_students_process_dies(tmp_path):
    """`python -m mtl_core serve --processes 2`: a browser sticks to one process; kill it mid-class and the
    browser's next page comes from the other process with the run it kept; the dead process is started again.
    A browser that holds a teacher's key is served by the teachers' own process."""
    import threading
    import urllib.request

    from mtl_core.serve.classroom import Classroom

    port = free_ports(4)
    room = Classroom(2, port, "127.0.0.1", log_dir=tmp_path)
    stopped = threading.Event()
    room.start()
    supervisor = threading.Thread(target=room.supervise, args=(stopped.is_set,), daemon=True)
    supervisor.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for app_port in [*room.app_ports, room.teacher_port]:
            for _ in range(120):
                if not _free(app_port):
                    break
                time.sleep(0.5)
        def served(cookie):   # which process answers a browser with this cookie
            return urllib.request.urlopen(urllib.request.Request(f"{url}/class", headers={"Cookie": cookie}), timeout=30).headers["X-MTL-Process"]

        key = "ABC234." + "k" * 32   # the form of a teacher's key (pages/classes.py TEACHER_VALUE)
        assert served(f"mtl_teacher={key}") == f"127.0.0.1:{room.teacher_port}"
        assert served("mtl_teacher=ABC234.x; mtl_route=r") != f"127.0.0.1:{room.teacher_port}"   # not a key: a student's process
        teachers = room.apps[room.teacher_port]
        os.killpg(teachers.pid, 9)
        teachers.wait(10)
        tried = served(f"mtl_teacher={key}; mtl_route=r").split(" : ")   # nginx names each process it tried
        assert tried[0] == f"127.0.0.1:{room.teacher_port}" and tried[-1] in {f"127.0.0.1:{p}" for p in room.app_ports}
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                serving = page.goto(f"{url}/playground?arch=MMoE&samples=2000&epochs=20").headers["x-mtl-process"]
                page.get_by_role("button", name="Step 50").click(timeout=90_000)
                page.get_by_text("step 50/160").first.wait_for(timeout=90_000)
                assert page.goto(f"{url}/data").headers["x-mtl-process"] == serving   # sticky
                dead = room.apps[int(serving.rsplit(":", 1)[1])]
                os.killpg(dead.pid, 9)   # the process and its training workers, as a crash would
                dead.wait(10)
                answer = page.goto(f"{url}/inside")
                assert answer.headers["x-mtl-process"] != serving
                page.get_by_role("heading", name="Inside the experts").wait_for(timeout=60_000)
                charts_drawn(page)
                chosen = page.locator("[data-testid=stSelectbox]").first.evaluate(
                    "box => box.textContent + [...box.querySelectorAll('input')].map(i => i.value).join(' ')")
                assert re.search(r"MMoE · seed 0 · race \d+ · step 50", chosen), chosen
            finally:
                browser.close()
        for _ in range(40):   # the supervisor looks every 3 s
            restarted = room.apps[int(serving.rsplit(":", 1)[1])]
            if restarted is not dead:
                break
            time.sleep(0.5)
        assert restarted is not dead and restarted.poll() is None   # the supervisor started it again
    finally:
        stopped.set()
        supervisor.join(10)
        room.stop()


def test_a_class_pools_a_students_lesson_on_the_teachers_projected_dashboard(server):
    """A teacher opens a class in one browser; a student joins from the join link in another, predicts, plays the
    lesson, and the run arrives on the dashboard by itself; revealed, the student sees the pooled result."""
    question = "One shared layer in front of MMoE's experts: what do the gates do?"   # the shared-input lesson: seconds
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        teacher = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        teacher.goto(f"{server}/class")
        teacher.get_by_text("Open a class (teachers)").wait_for(timeout=60_000)
        teacher.get_by_test_id("stSelectbox").click()
        teacher.get_by_role("option", name=question).click()
        teacher.get_by_role("button", name="Open the class").click()
        heading = teacher.get_by_text(re.compile(r"Join the class: [A-Z0-9]{3} [A-Z0-9]{3}"))
        heading.wait_for(timeout=30_000)
        code = heading.inner_text().split(": ", 1)[1].replace(" ", "")
        teacher.locator("[data-testid=stImage] img").first.wait_for(timeout=30_000)   # the QR code

        student = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        student.goto(f"{server}/class?join={code}")
        student.get_by_label("your name (optional: only your teacher sees it)").fill("Ada <b>Lovelace</b>")
        student.get_by_role("button", name="Join").click()
        student.get_by_text("Ada <b>Lovelace</b>").wait_for(timeout=30_000)   # the name as typed: plain text, never markup
        student.get_by_text("They lean on one expert (over 40% of their weight)").click(timeout=30_000)
        shot(student, "class-student-predicts")
        student.get_by_role("button", name="Send my prediction").click()
        student.get_by_role("button", name=re.compile("Open the lesson")).click(timeout=30_000)
        student.get_by_text(re.compile(r"step 0/\d+ · ready")).wait_for(timeout=60_000)   # the lesson's race, drawn
        student.get_by_role("button", name="Play").click()
        student.get_by_text(re.compile("Your run (shows it|did not show it)")).wait_for(timeout=180_000)

        teacher.get_by_text("Every student's run").wait_for(timeout=30_000)   # arrived without a reload
        assert [m.inner_text() for m in teacher.get_by_test_id("stMetricValue").all()] == ["1", "1", "1"]
        shot(teacher, "class-dashboard")
        teacher.get_by_role("button", name="Reveal the result to students").click()

        student.goto(f"{server}/class")
        student.get_by_text("The class's result").wait_for(timeout=30_000)
        assert "1 of 1 runs" in student.inner_text("body") or "0 of 1 runs" in student.inner_text("body")
        shot(student, "class-student-result")
        wrong = browser.new_context().new_page()   # the dashboard's address without the key
        wrong.goto(f"{server}/class?code={code}&key=not-the-key")
        wrong.get_by_text("Only the teacher who opened this class").wait_for(timeout=30_000)
        assert wrong.get_by_test_id("stMetricValue").count() == 0
        browser.close()


def test_an_own_file_is_uploaded_raced_and_its_model_runs_outside_the_app(server, tmp_path):
    """The example file on the Data page: its columns, two labels chosen, their correlation; a hostile file gets a
    notice and changes nothing; Shared-Bottom and MMoE race on it; MMoE's zip runs as `python model.py`."""
    import zipfile

    from mtl_core.data.census import EXAMPLE

    hostile = tmp_path / "formulas.csv"
    hostile.write_text("a,b\n1,=HYPERLINK(\"http://e.x\")\n")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(f"{server}/data?source=file")
        page.get_by_text("No file yet").wait_for(timeout=60_000)
        uploader = page.locator("[data-testid=stFileUploader]").filter(has_text="Your file").locator("input[type=file]")
        uploader.set_input_files(str(EXAMPLE))
        page.get_by_text("4,000 rows, 13 columns").wait_for(timeout=30_000)
        labels = page.locator("[data-testid=stMultiSelect]").filter(has_text="Label columns")
        for name in ("income_over_50k", "never_married"):   # typed into the box and taken, as a student would
            labels.locator("input").click()
            page.keyboard.type(name)
            page.keyboard.press("Enter")
            page.keyboard.press("Escape")
            playwright.expect(labels).to_contain_text(name, timeout=30_000)
        page.get_by_text("income_over_50k against never_married").wait_for(timeout=30_000)
        charts_drawn(page)
        assert page.get_by_text(re.compile(r"income_over_50k: [0-9.]+% positive")).is_visible()
        shot(page, "own-data")

        uploader.set_input_files(str(hostile))
        page.get_by_text("reads as a spreadsheet formula").wait_for(timeout=30_000)
        assert page.get_by_text("Nothing was changed").is_visible()
        assert page.get_by_text("4,000 rows, 13 columns").is_visible()   # still the example, labels and all
        playwright.expect(labels).to_contain_text("never_married")

        page.get_by_role("link", name="Race the architectures on these tasks in the Playground").click()
        page.get_by_role("heading", name="Playground").wait_for(timeout=30_000)
        page.get_by_role("button", name="Play").click(timeout=90_000)
        download = page.get_by_role("button", name="Download MMoE as plain PyTorch (zip)")
        download.wait_for(timeout=120_000)
        page.get_by_text(re.compile(r"MMoE: step (\d+)/\1")).first.wait_for(timeout=30_000)
        shot(page, "own-race")
        with page.expect_download() as saved:
            download.click()
        saved.value.save_as(tmp_path / "mmoe.zip")
        browser.close()
    with zipfile.ZipFile(tmp_path / "mmoe.zip") as archive:
        archive.extractall(tmp_path / "model")
    folder = next((tmp_path / "model").iterdir())
    ran = subprocess.run([sys.executable, "-I", "model.py"], cwd=folder, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and "'income_over_50k':" in ran.stdout, ran.stderr[-2000:]
    about = json.loads((folder / "preprocessing.json").read_text())
    assert "age" in about["inputs"]["features"] and "sex=Female" in about["inputs"]["features"]
