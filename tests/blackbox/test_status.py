"""The status views every model serves: STATUS, GET /status.json, GET /status (docs/status.md)."""
import json
import pathlib
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from harness import children_of, kv, wait_until
from models import MODELS

ROOT = pathlib.Path(__file__).resolve().parents[2]

ARGS = {"prefork": ["--workers", "2"], "prefork_threads": ["--workers", "2", "--threads", "2"],
        "prefork_event_loop": ["--workers", "2"]}
WORKER_PROCESSES = {"prefork": 2, "prefork_threads": 2, "prefork_event_loop": 2}
THREAD_ROWS = {"prefork_threads": 4}  # 2 workers x 2 threads


def get(server, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def start_ready(start, model, *extra):
    server = start(model, *ARGS.get(model, []), *extra)
    if model in WORKER_PROCESSES:
        assert wait_until(lambda: len(children_of(server.pid)) == WORKER_PROCESSES[model], timeout=10)
        # A child is in /proc a moment before its pid is in its slot (the
        # child and the master both write it just after fork, and a loaded
        # machine may run neither for a while): ready once the table has them all.
        def table_has_every_worker():
            rows = json.loads(get(server, "/status.json")[1])["workers"]
            threads_started = sum(r["thread"] is not None for r in rows) == THREAD_ROWS.get(model, 0)
            return {r["pid"] for r in rows if r["thread"] is None} == set(children_of(server.pid)) and threads_started
        assert wait_until(table_has_every_worker, timeout=10), \
            f"{model}: workers {children_of(server.pid)} never all had a row in /status.json"
    return server


def status_while_sleeping(server, model):
    """/status.json taken while one client's SLEEP 1500 runs (on its own connection)."""
    def sleep():
        with server.connect(timeout=10) as c:
            c.ask("SLEEP 1500")
    sleeper = threading.Thread(target=sleep)
    sleeper.start()
    try:
        def working():
            _, body = get(server, "/status.json")
            doc = json.loads(body)
            # The SLEEP's row: 'W', with its connection open. In 01 the
            # status request itself waits behind the SLEEP, so it only sees itself.
            busy = [r for r in doc["workers"] if r["state"] == "W" and r["open"] >= 1]
            return doc if model == "single_process" or len(busy) >= 1 else None
        return wait_until(working, timeout=5)
    finally:
        sleeper.join(timeout=10)


@pytest.mark.parametrize("model", MODELS)
def test_status_json_has_a_row_per_worker_with_its_state(start, model):
    server = start_ready(start, model)
    doc = status_while_sleeping(server, model)
    assert doc, f"{model}: no worker in state W with an open connection while a SLEEP ran"
    assert doc["model"] == model and doc["pid"] == server.pid, doc
    rows = doc["workers"]
    if model in WORKER_PROCESSES:
        processes = {r["pid"] for r in rows if r["thread"] is None}
        assert processes == set(children_of(server.pid)), f"{model}: rows for {processes}, workers are " \
                                                          f"{children_of(server.pid)}"
    if model == "prefork_threads":
        assert sum(1 for r in rows if r["thread"] is not None) == THREAD_ROWS[model], f"2 workers x 2 threads: {rows}"
    assert set(doc["legend"]) >= {r["state"] for r in rows}, f"a state letter missing from the legend: {doc}"
    for key in ("generation", "accepts", "requests", "wakeups", "spurious", "open", "cpu_ms"):
        assert all(key in r for r in rows), f"{model}: rows without {key}: {rows}"


@pytest.mark.parametrize("model", MODELS)
def test_status_text_says_how_many_rows_follow(start, model):
    server = start_ready(start, model)
    with server.connect() as c:
        header = c.ask("STATUS")
        assert header.startswith("STATUS "), header
        fields = kv(header[len("STATUS "):])
        lines = [c.line() for _ in range(int(fields["rows"]))]
        assert c.ask("PING") == "PONG", "the answer after STATUS's rows is the next request's"
    assert fields["model"] == model and int(fields["pid"]) == server.pid, header
    assert all(line.startswith("worker=") and "state=" in line for line in lines), lines


def test_prefork_page_is_html_that_refreshes_itself(start):
    server = start_ready(start, "prefork")
    content_type, page = get(server, "/status")
    assert content_type.startswith("text/html"), content_type
    assert '<meta http-equiv="refresh"' in page, "the page must reload itself"
    assert "<script" not in page and "src=" not in page and "<link" not in page, "the page fetches nothing"
    # start_ready waited for the JSON table; the page must show the same rows.
    def rows_for_every_worker():
        _, page = get(server, "/status")
        missing = [pid for pid in children_of(server.pid) if f"<td>{pid}</td>" not in page]
        return page if not missing else None
    assert wait_until(rows_for_every_worker, timeout=5), \
        f"workers {children_of(server.pid)} do not all have a row on the page"


@pytest.mark.parametrize("model", ["prefork", "prefork_threads", "prefork_event_loop"])
def test_a_worker_finishing_its_last_request_after_a_hup_shows_G(start, model):
    server = start_ready(start, model)
    sleeper = server.connect(timeout=10)
    try:
        pid = int(kv(sleeper.ask("WHO"))["pid"])  # the worker that serves this connection
        sleeper.send("SLEEP 2500\n")
        time.sleep(0.2)
        server.signal(signal.SIGHUP)
        def its_letter():
            rows = json.loads(get(server, "/status.json")[1])["workers"]
            mine = [r["state"] for r in rows if r["pid"] == pid and r["thread"] is None]
            return mine[0] if mine and mine[0] == "G" else None
        assert wait_until(its_letter, timeout=2), (
            f"{model}: worker {pid}, asked to leave by the HUP while its SLEEP runs, is not shown as G (exiting)")
        assert sleeper.line() == "SLEPT 2500", "the leaving worker's request was not answered"
    finally:
        sleeper.close()


def test_a_request_being_read_shows_R_and_an_idle_keepalive_shows_K(start):
    server = start("prefork", "--workers", "3")
    assert wait_until(lambda: len(children_of(server.pid)) == 3, timeout=10)
    reading, waiting = server.connect(), server.connect()
    try:
        reading.send("SLE")                  # half a request
        assert waiting.ask("PING") == "PONG"  # answered, connection kept
        def letters():
            _, body = get(server, "/status.json")
            found = sorted(r["state"] for r in json.loads(body)["workers"])
            return found if found == ["K", "R", "W"] else None
        assert wait_until(letters, timeout=5), "three workers: one holding half a request (R), one an answered " \
                                               "connection (K), and the one executing the status request (W)"
    finally:
        reading.close()
        waiting.close()


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not chromium(), reason="Debian's chromium is not installed (./lab setup)")
def test_a_real_browser_renders_the_page(start, tmp_path):
    """Headless Chromium loads the page of 03 while two workers sleep, and sees their rows in W."""
    server = start("prefork", "--workers", "4")
    assert wait_until(lambda: len(children_of(server.pid)) == 4, timeout=10)
    # Long enough for Chromium to start on a loaded machine (it took over 4 s
    # beside an ASan suite, and the sleepers were done when the page loaded).
    def sleep():
        with server.connect(timeout=30) as c:
            c.ask("SLEEP 12000")
    sleepers = [threading.Thread(target=sleep) for _ in range(2)]
    for t in sleepers:
        t.start()
    try:
        def both_working():
            _, body = get(server, "/status.json")
            return sum(r["state"] == "W" and r["open"] >= 1 for r in json.loads(body)["workers"]) >= 2
        assert wait_until(both_working, timeout=5), "the two sleepers' workers never showed W in /status.json"
        dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--dump-dom", f"http://127.0.0.1:{server.port}/status"],
                             capture_output=True, text=True, timeout=60)
        assert "<table>" in dom.stdout and "prefork" in dom.stdout, f"chromium saw: {dom.stdout[:300]} {dom.stderr[-300:]}"
        assert dom.stdout.count('class="state W"') >= 2, "the page Chromium loaded lacks the two sleepers' W rows"
    finally:
        for t in sleepers:
            t.join(timeout=20)


@pytest.mark.skipif(not chromium(), reason="Debian's chromium is not installed (./lab setup)")
def test_the_screenshot_on_the_status_page_is_drawn_by_its_script(bin_dir, tmp_path):
    """tools/views/status-screenshot.sh draws docs/status.md's picture: a loaded 03's table, every worker in a red W."""
    if not (ROOT / "build" / "bin").samefile(bin_dir):
        pytest.skip("the script uses the release build (build/bin)")
    image = pytest.importorskip("matplotlib.image")
    shot = tmp_path / "status.png"
    run = subprocess.run([ROOT / "tools" / "views" / "status-screenshot.sh", shot], capture_output=True, text=True, timeout=90)
    assert run.returncode == 0 and shot.exists(), f"the script failed: {run.stderr[-500:]}"
    pixels = image.imread(shot)[:, :, :3]  # RGB floats in [0, 1]
    height, width = pixels.shape[:2]
    assert (width, height) == (1100, 420), f"a {width}x{height} picture, not the 1100x420 the page shows"
    white = (pixels.min(axis=2) > 0.9).mean()
    assert 0.5 < white < 0.99, f"{white:.0%} of the picture is white: it is blank, or not the page"
    # The state letters are coloured (common/protocol/status.cpp: W #b00, _ #080, R #a60, K #06a), in the
    # state column, about a third of the way across: one per worker row, and the busy ones red.
    band = pixels[:, int(width * 0.26):int(width * 0.38)]
    coloured = (band.max(axis=2) - band.min(axis=2)) > 0.4
    red = coloured & (band[:, :, 0] > 0.55) & (band[:, :, 1] < 0.25)
    def runs(mask):  # runs of picture rows with such pixels: one per letter, the letters being on separate lines
        rows = mask.any(axis=1)
        return int((rows[1:] & ~rows[:-1]).sum())
    assert runs(coloured) >= 4, f"the picture shows {runs(coloured)} state letters; 03 with 4 workers has 4 rows"
    assert runs(red) >= 1, "no worker is shown in a red W, though the load keeps them busy"


