"""loadgen and compare: they count exactly, check every answer, and compare runs end to end."""
import json
import pathlib
import socket
import subprocess
import threading

import pytest

from harness import kv

LOADGEN_TIMEOUT = 60


def loadgen(bin_dir, port, *args):
    """Runs loadgen --json against 127.0.0.1:port; returns (exit code, parsed report)."""
    done = subprocess.run([bin_dir / "loadgen", "--port", str(port), "--json", *args],
                          capture_output=True, text=True, timeout=LOADGEN_TIMEOUT)
    assert done.stdout.strip(), f"loadgen printed no report; stderr: {done.stderr}"
    return done.returncode, json.loads(done.stdout)


class TinyServer:
    """A deliberately wrong text server: answers every line with `answer`
    (or closes without answering when answer is None), one thread per connection."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                while conn.recv(4096):
                    if self.answer is None:
                        return
                    conn.sendall(self.answer)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def tiny():
    servers = []

    def _tiny(answer):
        servers.append(TinyServer(answer))
        return servers[-1]

    yield _tiny
    for s in servers:
        s.close()


@pytest.mark.parametrize("mode", [[], ["--conn-per-request"]], ids=["keep-alive", "conn-per-request"])
def test_loadgen_counts_exactly_what_it_sent(start, bin_dir, mode):
    server = start("prefork", "--workers", "2")
    rc, report = loadgen(bin_dir, server.port, "--requests", "1000", "--connections", "4", *mode)
    assert rc == 0
    assert (report["sent"], report["ok"], report["errors"]) == (1000, 1000, 0), \
        f"loadgen's own count is off: {report}"
    with server.connect() as c:
        stats = kv(c.ask("STATS"))
    assert stats["requests"] == "1000", \
        f"the server answered {stats['requests']} requests before STATS, loadgen says it sent 1000"


def test_loadgen_checks_work_digits_and_http_bodies(start, bin_dir):
    server = start("single_process")
    rc, report = loadgen(bin_dir, server.port, "--requests", "50", "--request", "WORK 1000",
                         "--request", "ECHO hi there")
    assert (rc, report["ok"], report["errors"]) == (0, 50, 0), report
    assert [r["ok"] for r in report["by_request"]] == [25, 25], "the two requests should alternate"
    rc, report = loadgen(bin_dir, server.port, "--protocol", "http", "--requests", "50",
                         "--path", "/work?n=1000", "--path", "/echo?msg=a+b")
    assert (rc, report["ok"], report["errors"]) == (0, 50, 0), report


def test_loadgen_detects_wrong_answers(tiny, bin_dir):
    server = tiny(b"PANG\n")
    rc, report = loadgen(bin_dir, server.port, "--requests", "20", "--connections", "2")
    assert report["ok"] == 0 and report["failures"]["wrong"] == 20, \
        f"every PANG should count as a wrong answer: {report['failures']}"
    assert rc == 1, "no right answer at all: loadgen should exit 1"
    assert report["wrong_samples"][0] == "PING -> PANG", report["wrong_samples"]


def test_loadgen_detects_a_wrong_work_digit(tiny, bin_dir):
    server = tiny(b"WORKED 3 06c45d188009454e\n")  # the right last digit is f
    _, report = loadgen(bin_dir, server.port, "--requests", "5", "--request", "WORK 3")
    assert report["failures"]["wrong"] == 5, report


def test_loadgen_sorts_errors_by_kind(tiny, bin_dir):
    closer = tiny(None)
    _, report = loadgen(bin_dir, closer.port, "--requests", "10", "--connections", "1")
    assert report["failures"]["closed"] + report["failures"]["reset"] == 10, \
        f"a server that closes without answering: {report['failures']}"

    silent = tiny(b"")  # reads, never answers
    _, report = loadgen(bin_dir, silent.port, "--requests", "2", "--connections", "2", "--timeout", "0.3")
    assert report["failures"]["timeout"] == 2, report["failures"]

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]  # bound, not listening: connects are refused
    try:
        _, report = loadgen(bin_dir, port, "--requests", "3")
    finally:
        sock.close()
    assert report["failures"]["refused"] == 3, report["failures"]


def test_loadgen_rejects_bad_options(bin_dir):
    for args, words in [(["--port", "1", "--path", "/ping"], "--path needs --protocol http"),
                        (["--port", "1", "--protocol", "http", "--path", "ping"], "starts with '/'"),
                        (["--port", "1", "--request", "PING", "--weight", "1", "--weight", "2"], "one weight per request"),
                        (["--port", "70000"], "port")]:
        done = subprocess.run([bin_dir / "loadgen", *args], capture_output=True, text=True, timeout=10)
        assert done.returncode != 0 and words in done.stderr, f"{args}: {done.stderr!r}"


def test_loadgen_rate_holds_the_schedule(start, bin_dir):
    server = start("prefork_threads", "--workers", "1")
    _, report = loadgen(bin_dir, server.port, "--rate", "200", "--duration", "1", "--connections", "4")
    assert 150 <= report["sent"] <= 210, f"--rate 200 for 1 s sent {report['sent']} requests"


def test_compare_quick_runs_end_to_end(bin_dir, tmp_path):
    done = subprocess.run([bin_dir / "compare", "--quick", "--models", "03", "--scenarios", "hello,slow",
                           "--out", str(tmp_path), "--no-plot"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"compare failed: {done.stderr}"
    (out,) = tmp_path.iterdir()
    data = json.loads((out / "results.json").read_text())
    runs = {r["scenario"]: r for r in data["runs"]}
    assert set(runs) == {"hello", "slow"} and all(r["model"] == "prefork" for r in runs.values())
    hello = runs["hello"]
    assert hello["load"]["ok"] > 0, "hello: no right answer"
    assert hello["server"]["processes"] == data["machine"]["cpus"] + 1, \
        f"prefork with workers = CPUs should show master + {data['machine']['cpus']} processes"
    assert "## hello" in (out / "results.md").read_text()
    assert (out / "results.csv").read_text().splitlines()[0].startswith("scenario,model,label,requests_per_s")


def test_compare_c10k_shows_who_holds_idle_connections_and_cost_charges_each_model(bin_dir, tmp_path):
    done = subprocess.run([bin_dir / "compare", "--quick", "--models", "01,05", "--scenarios", "c10k,cost",
                           "--idle", "300", "--out", str(tmp_path), "--no-plot"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"compare failed: {done.stderr}"
    (out,) = tmp_path.iterdir()
    data = json.loads((out / "results.json").read_text())
    runs = {(r["scenario"], r["label"]): r for r in data["runs"]}
    held = {label: runs[("c10k", label)]["idle"]["held"] for label in ("01", "05")}
    assert held["05"] == 300, f"the event loop should hold all 300 idle connections, it held {held['05']}"
    assert held["01"] <= 2, f"the iterative server holds one connection at a time, it held {held['01']}"
    assert runs[("c10k", "05")]["load"]["ok"] > 0, "05's active clients got no answer among 300 idle connections"
    for label in ("01", "05"):
        cost = runs[("cost", label)]
        assert cost["load"]["ok"] == data["settings"]["cost_connections"] and cost["load"]["errors"] == 0, cost["load"]
        assert cost["server"]["cpu_user_s"] + cost["server"]["cpu_sys_s"] > 0, f"{label}: no server CPU measured"
    text = (out / "results.md").read_text()
    assert "## c10k" in text and "## cost" in text and "µs CPU per connection" in text


def test_plot_draws_the_three_charts_of_a_compare_run(tmp_path):
    """tools/compare/plot.py on the run docs/results.md explains (copied): rps, p99 and cpu charts, as PNG."""
    import shutil
    run = pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "20261123-233115"
    shutil.copy(run / "results.json", tmp_path)
    r = subprocess.run(["/usr/bin/python3", str(run.parents[2] / "tools" / "compare" / "plot.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for chart in ("rps.png", "p99.png", "cpu.png"):
        data = (tmp_path / chart).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, f"{chart} was not drawn"
