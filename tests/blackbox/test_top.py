"""./lab top: the live terminal view, driven inside tmux and its screen read back."""
import pathlib
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from harness import children_of, unused_port, wait_until

TOP = pathlib.Path(__file__).resolve().parents[2] / "tools" / "views" / "top.py"
needs_tmux = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed (./lab setup)")


def start_three_workers(start):
    server = start("prefork", "--workers", "3")
    assert wait_until(lambda: len(children_of(server.pid)) == 3, timeout=10)
    return server


def pinger(server, seconds):
    """A client that connects, PINGs and closes, over and over, in the background."""
    stop = time.monotonic() + seconds

    def run():
        try:
            while time.monotonic() < stop:
                with server.connect() as c:
                    c.ask("PING")
        except OSError:  # the server was stopped: the test is over
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def table(screen):
    """The rows under the header (WRK THR PID ...), each split into its columns."""
    lines = screen.splitlines()
    start = next((i for i, line in enumerate(lines) if line.split()[:1] == ["WRK"]), None)
    return [] if start is None else [line.split() for line in lines[start + 1:] if line.strip()]


class Pane:
    """A detached 80x24 tmux session running `command`; killed on exit."""

    def __init__(self, command):
        self.name = f"serverlab-top-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", "80", "-y", "24", command],
                       check=True, timeout=10)

    def screen(self):
        r = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True,
                           timeout=10)
        return r.stdout

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, timeout=10)


def shell(port):
    # After top exits, the shell prints its status and stays, so the pane can be read.
    return f"/usr/bin/python3 {TOP} --port {port}; echo EXITED $?; sleep 60"


@needs_tmux
def test_top_shows_every_worker_live_and_q_restores_the_terminal(start):
    server = start_three_workers(start)
    pinger(server, 8)
    with Pane(shell(server.port)) as pane:
        def live_rows():
            screen = pane.screen()
            rows = [r for r in table(screen) if len(r) == 13 and int(r[2]) in children_of(server.pid)]
            moving = [r for r in rows if int(r[8]) > 0]  # the REQ/S column
            return screen if len(rows) == 3 and moving else None
        screen = wait_until(live_rows, timeout=8)
        assert screen, f"no row per worker with requests/s moving in 8 s; the screen:\n{pane.screen()}"
        assert "prefork" in screen and "accept blocking" in screen, screen
        assert all(len(line) <= 80 for line in screen.splitlines()), "a line wider than the 80-column terminal"
        pane.keys("q")
        after = wait_until(lambda: "EXITED 0" in pane.screen() and pane.screen(), timeout=5)
        assert after, f"q did not end top with status 0; the screen:\n{pane.screen()}"
        assert "WRK" not in after, "top's screen is still shown: the alternate screen was not left"


@needs_tmux
def test_top_says_when_the_server_is_gone_and_keeps_trying(start):
    server = start_three_workers(start)
    with Pane(shell(server.port)) as pane:
        assert wait_until(lambda: "WRK" in pane.screen(), timeout=8), pane.screen()
        server.kill()
        assert wait_until(lambda: "connection refused" in pane.screen(), timeout=8), pane.screen()
        pane.keys("q")
        assert wait_until(lambda: "EXITED 0" in pane.screen(), timeout=5), pane.screen()


def test_once_prints_a_plain_snapshot(start):
    server = start_three_workers(start)
    pinger(server, 3)
    r = subprocess.run(["/usr/bin/python3", str(TOP), "--port", str(server.port), "--once"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout, "--once must print no escape sequences"
    pids = {int(row[2]) for row in table(r.stdout)}
    assert pids == set(children_of(server.pid)), f"rows for {pids}, workers {children_of(server.pid)}:\n{r.stdout}"


def test_without_a_server_it_says_so_and_exits_non_zero():
    port = unused_port()
    r = subprocess.run(["/usr/bin/python3", str(TOP), "--port", str(port), "--once"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and "no status from" in r.stderr, (r.returncode, r.stderr)


def test_once_shows_a_row_per_loop_of_07(start):
    # 07 is one process: its rows are its loops, each a thread of its own
    # (THR set, WRK empty), and each row's TID is a thread of the server.
    server = start("event_loop_threads", "--threads", "2")
    pinger(server, 2)
    r = subprocess.run(["/usr/bin/python3", str(TOP), "--port", str(server.port), "--once"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    tasks = {int(p.name) for p in pathlib.Path(f"/proc/{server.pid}/task").iterdir()}
    assert [row[0] for row in rows] == ["0", "1"], f"a row per loop, THR 0 and 1:\n{r.stdout}"
    assert all(int(row[1]) == server.pid and int(row[2]) in tasks for row in rows), (
        f"each loop's row names the server's pid and one of its threads {sorted(tasks)}:\n{r.stdout}")
