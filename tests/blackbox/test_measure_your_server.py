"""The measuring tools take a student's server as well as the models: `compare --cmd`
puts it in the tables (in the text protocol), `herd --cmd` counts what its idle
workers do per connection, and `top --pid` shows any server's processes, threads
and connections from /proc."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "docs" / "labs" / "solutions"
CHEATS = ROOT / "tests" / "labs" / "cheats"


def student_dir(tmp_path, *files):
    place = tmp_path / "student"
    place.mkdir()
    for f in (SOLUTIONS / "protocol.py", SOLUTIONS / "prefork.py", *files):
        shutil.copy(f, place / f.name)
    return place


def test_herd_counts_the_workers_a_connection_wakes_in_a_students_server(bin_dir, tmp_path):
    place = student_dir(tmp_path, SOLUTIONS / "prefork_exclusive.py", CHEATS / "herd_poll.py")
    commands = [f"python3 {name} --port {{port}} --workers 4" for name in ("prefork_exclusive.py", "herd_poll.py")]
    done = subprocess.run([(bin_dir / "herd").resolve(), "--connections", "60", "--duration", "0", "--json",
                           *(a for c in commands for a in ("--cmd", c))],
                          cwd=place, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {r["command"]: r for r in json.loads(done.stdout)["rows"]}
    assert set(rows) == set(commands), rows
    exclusive, herd = rows[commands[0]], rows[commands[1]]
    assert exclusive["accepts"] == herd["accepts"] == 60 and exclusive["wakeups_per_accept"] is None, rows
    # Poll wakes the 4 idle workers, EPOLLEXCLUSIVE one: the herd costs about 3 more switches per accept.
    assert herd["switches_per_accept"] > exclusive["switches_per_accept"] + 1.5, (
        f"context switches per accept: {herd['switches_per_accept']:.2f} with poll, "
        f"{exclusive['switches_per_accept']:.2f} with EPOLLEXCLUSIVE: the herd should cost more")


def test_compare_puts_a_students_server_beside_a_model_in_the_text_protocol(bin_dir, tmp_path):
    place = student_dir(tmp_path, SOLUTIONS / "iterative.py")
    command = "python3 iterative.py --port {port}"
    done = subprocess.run([(bin_dir / "compare").resolve(), "--cmd", command, "--models", "05", "--scenarios",
                           "hello,cpu", "--duration", "0.5", "--connections", "4", "--no-plot",
                           "--out", tmp_path / "out"],
                          cwd=place, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(next((tmp_path / "out").glob("*/results.json")).read_text())
    assert results["settings"]["protocol"] == "text", results["settings"]
    runs = {(r["scenario"], r["model"]): r for r in results["runs"]}
    assert set(runs) == {(s, m) for s in ("hello", "cpu") for m in ("event_loop", command)}, sorted(runs)
    assert "WORK" in runs["cpu", command]["skipped"], runs["cpu", command]
    for model in ("event_loop", command):  # (the iterative server keeps 3 of the 4 clients waiting: timeouts)
        load = runs["hello", model]["load"]
        assert load["ok"] > 0 and load["protocol"] == "text", (model, load)
    assert command in done.stdout, f"the tables should name the command:\n{done.stdout}"


def test_top_shows_any_servers_processes_threads_and_connections(tmp_path):
    place = student_dir(tmp_path, SOLUTIONS / "prefork_threads.py")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "prefork_threads.py", "--port", str(port)], cwd=place,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        server.stdout.readline()  # listening
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"SLEEP 2000\n")
            time.sleep(0.3)
            done = subprocess.run([ROOT / "lab", "top", "--pid", str(server.pid), "--once"], capture_output=True,
                                  text=True, timeout=30)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert done.returncode == 0, done.stderr
    head, *rows = done.stdout.splitlines()
    # The master and its 2 workers, each worker with its 8 threads and its main thread.
    assert f"pid {server.pid}" in head and "processes 3" in head and "threads 19" in head \
        and "connections 1" in head, done.stdout
    table = [r.split() for r in rows if r.strip() and r.split()[0].isdigit()]
    assert len(table) == 19, done.stdout
    holding = [r for r in table if len(r) > 6 and r[6] == "1"]
    assert len(holding) == 1, f"one worker should hold the connection:\n{done.stdout}"
