"""01_single_process: its lesson, and the lifecycle every model shares."""
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from harness import Server


def test_one_slow_client_stalls_everyone(start):
    """While client A holds its connection, client B's PING waits until A's connection ends."""
    server = start("single_process")
    events = {}
    a = server.connect(timeout=10)
    began = time.monotonic()
    a.send("SLEEP 1000\n")

    def client_b():
        with server.connect(timeout=10) as b:
            events["b_sent"] = time.monotonic() - began
            assert b.ask("PING") == "PONG"
            events["b_answered"] = time.monotonic() - began

    t = threading.Thread(target=client_b)
    time.sleep(0.1)
    t.start()
    assert a.line() == "SLEPT 1000"
    time.sleep(0.5)  # A keeps its connection open, idle, a little longer
    events["a_closed"] = time.monotonic() - began
    a.close()
    t.join(timeout=10)
    assert "b_answered" in events, "client B was never answered"
    assert events["b_answered"] >= events["a_closed"], (
        f"client B's PING was answered at {events['b_answered']:.2f} s, before client A's connection "
        f"ended at {events['a_closed']:.2f} s: the iterative server must serve one connection at a time")


def test_sigterm_lets_the_request_in_progress_finish(start):
    server = start("single_process")
    with server.connect(timeout=10) as c:
        c.send("SLEEP 500\n")
        time.sleep(0.1)
        server.signal(signal.SIGTERM)
        assert c.line() == "SLEPT 500", "the request in progress must complete during a graceful stop"
        assert c.closed_by_server(), "after its request, the connection is closed"
    status = server.wait(timeout=5)
    assert status == 0, f"exit status {status} after SIGTERM; stderr: {server.stderr()}"
    summary = server.stderr()
    assert "single_process stopped: 1 connections, 1 requests, CPU user" in summary, summary


def test_sigint_closes_idle_connections_and_exits_zero(start):
    server = start("single_process")
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
        server.signal(signal.SIGINT)
        assert c.closed_by_server(), "an idle connection is closed on stop"
    assert server.wait(timeout=5) == 0


def test_port_in_use_is_reported(start, bin_dir):
    first = start("single_process")
    r = subprocess.run([bin_dir / "single_process", "--port", str(first.port)], capture_output=True, timeout=10)
    assert r.returncode == 1, f"exit status {r.returncode} for a port in use"
    assert f"bind 127.0.0.1:{first.port}: Address already in use" in r.stderr.decode(), r.stderr


def test_trace_names_pid_and_role(start):
    server = start("single_process", "--trace")
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
    server.stop()
    err = server.stderr()
    assert f"pid {server.pid} tid {server.pid} single_process: started" in err, err
    assert "single_process: conn 1: PING -> PONG" in err, err


def test_summary_counts_only_the_servers_own_cpu(bin_dir):
    """CPU used before exec (e.g. by ./lab building first) must not appear in the server's summary."""
    def burn_cpu_then_exec():
        began = time.process_time()
        while time.process_time() - began < 0.6:
            pass

    with Server([bin_dir / "single_process", "--port", "0"], preexec_fn=burn_cpu_then_exec) as server:
        assert server.stop() == 0
        m = re.search(r"CPU user ([\d.]+) s sys ([\d.]+) s", server.stderr())
        assert m, server.stderr()
        used = float(m.group(1)) + float(m.group(2))
        assert used < 0.3, (f"the summary reports {used:.2f} s of CPU for an idle server whose process "
                            "burnt 0.6 s before exec: it must count from its own start")


def test_work_really_spends_cpu(start):
    """WORK is the CPU-bound request: its steps must run, not be folded into the last one by the compiler."""
    server = start("single_process")

    def cpu_seconds():
        with open(f"/proc/{server.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before = cpu_seconds()
    with server.connect(timeout=30) as c:
        assert c.ask("WORK 500000000").startswith("WORKED 500000000 ")
    used = cpu_seconds() - before
    # Folded, 500 million steps take microseconds; done, about half a second of
    # CPU here, and still several ticks of 10 ms on a CPU ten times faster.
    assert used >= 0.05, f"WORK 500000000 cost the server only {used:.3f} s of CPU: its steps were not all done"


def test_untraced_connections_make_no_getpeername_call(bin_dir, tmp_path):
    """Without --trace, a trace line's arguments are not even computed (SL_TRACE is a macro for that):
    the peer's address (getpeername, one system call per connection) is only asked for under --trace."""
    import os
    import shutil
    import signal
    from harness import Server, children_of
    if not shutil.which("strace"):
        pytest.skip("needs strace (./lab setup installs it)")
    log = tmp_path / "strace.log"
    server = Server(["strace", "-f", "-qq", "-e", "trace=getpeername", "-o", log, bin_dir / "single_process",
                     "--port", "0"])
    try:
        for _ in range(20):
            with server.connect() as c:
                assert c.ask("PING") == "PONG"
        (model,) = children_of(server.pid)
        os.kill(model, signal.SIGTERM)
        server.wait(10)
    finally:
        server.kill()
    calls = [line for line in log.read_text().splitlines() if "getpeername" in line]
    assert not calls, f"without --trace, 20 connections made {len(calls)} getpeername calls: {calls[:2]}"
