"""The status views every model serves: STATUS, GET /status.json, GET /status (docs/status.md)."""
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest

from harness import children_of, kv, wait_until
from models import MODELS

ARGS = {"prefork": ["--workers", "2"], "prefork_threads": ["--workers", "2", "--threads", "2"],
        "prefork_event_loop": ["--workers", "2"]}
WORKER_PROCESSES = {"prefork": 2, "prefork_threads": 2, "prefork_event_loop": 2}


def get(server, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def start_ready(start, model, *extra):
    server = start(model, *ARGS.get(model, []), *extra)
    if model in WORKER_PROCESSES:
        assert wait_until(lambda: len(children_of(server.pid)) == WORKER_PROCESSES[model], timeout=10)
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
        assert sum(1 for r in rows if r["thread"] is not None) == 4, f"2 workers x 2 threads: {rows}"
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
    for pid in children_of(server.pid):
        assert f"<td>{pid}</td>" in page, f"worker {pid} has no row"


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


@pytest.mark.skipif(not chromium(), reason="Debian's chromium is not installed (./lab setup)")
def test_a_real_browser_renders_the_page(start, tmp_path):
    """Headless Chromium loads the page of a loaded 03 and draws it: the
    screenshot is the picture on docs/status.md (tools/status-screenshot.sh)."""
    server = start("prefork", "--workers", "4")
    assert wait_until(lambda: len(children_of(server.pid)) == 4, timeout=10)
    def sleep():
        with server.connect(timeout=10) as c:
            c.ask("SLEEP 3000")
    sleepers = [threading.Thread(target=sleep) for _ in range(2)]
    for t in sleepers:
        t.start()
    try:
        time.sleep(0.3)
        shot = tmp_path / "status.png"
        dom = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             "--dump-dom", f"http://127.0.0.1:{server.port}/status"],
            capture_output=True, text=True, timeout=60)
        assert "<table>" in dom.stdout and "prefork" in dom.stdout, f"chromium saw: {dom.stdout[:300]} {dom.stderr[-300:]}"
        assert dom.stdout.count('class="state W"') >= 2, "the two sleepers' workers in state W"
        subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             "--hide-scrollbars", "--window-size=900,420", f"--screenshot={shot}",
             f"http://127.0.0.1:{server.port}/status"],
            capture_output=True, timeout=60)
        assert shot.exists() and shot.stat().st_size > 5000, "chromium drew no screenshot"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        for t in sleepers:
            t.join(timeout=10)
