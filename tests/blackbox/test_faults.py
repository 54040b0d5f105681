"""Calls that fail inside the server, made to fail on purpose (tests/fault/inject.cpp, LD_PRELOAD).

A failed setsockopt() or sigaction() cannot be provoked through the kernel, so
a small library placed in front of libc makes it fail, and each test checks
that the failure is looked at: logged or refused, and never silently ignored.
"""
import os
import signal
import subprocess
import time

import pytest

from harness import Client, Server, children_of, kv


def with_faults(bin_dir, faults):
    env = dict(os.environ, LD_PRELOAD=str(bin_dir / "libfault_inject.so"), SERVERLAB_FAULTS=faults)
    # Under AddressSanitizer (./lab asan) the preloaded library comes before ASan's runtime: allowed here.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    return env


@pytest.mark.parametrize("option", ["SO_RCVTIMEO", "SO_SNDTIMEO"])
def test_a_connection_whose_timeouts_cannot_be_set_is_closed_and_logged(bin_dir, option):
    """Without its timeouts a silent client would hold the connection past --idle-timeout and every stop."""
    server = Server([bin_dir / "single_process", "--port", "0", "--idle-timeout", "1"],
                    env=with_faults(bin_dir, f"setsockopt:{option}@1"))
    try:
        silent = Client("127.0.0.1", server.port, timeout=5)
        began = time.monotonic()
        closed = silent.closed_by_server(timeout=3)
        took = time.monotonic() - began
        silent.close()
        assert closed and took < 0.5, \
            f"setsockopt {option} failed for the first connection; it should be closed at once, not after {took:.1f} s"
        assert f"setsockopt SO_SNDTIMEO/SO_RCVTIMEO: Cannot allocate memory" in server.stderr(), server.stderr()
        with Client("127.0.0.1", server.port) as c:
            assert c.ask("PING") == "PONG", "the next connection (whose setsockopt works) is served"
    finally:
        server.kill()


def test_a_handler_that_cannot_be_installed_stops_the_start(bin_dir):
    r = subprocess.run([bin_dir / "prefork", "--port", "0"], capture_output=True, text=True, timeout=10,
                       env=with_faults(bin_dir, "sigaction:SIGTERM"))
    assert r.returncode == 1, f"sigaction(SIGTERM) failed, yet the server went on (exit {r.returncode})"
    assert "sigaction SIGTERM: Invalid argument" in r.stderr, r.stderr


def test_loadgen_counts_a_failed_epoll_ctl_as_a_failed_connection(bin_dir):
    with Server([bin_dir / "single_process", "--port", "0"]) as server:
        r = subprocess.run([bin_dir / "loadgen", "--port", str(server.port), "--requests", "5", "--timeout", "3",
                            "--connections", "1", "--json"],
                           capture_output=True, text=True, timeout=30, env=with_faults(bin_dir, "epoll_ctl"))
    import json
    report = json.loads(r.stdout)
    f = report["failures"]
    assert f["timeout"] == 0 and f["connect"] == 5, \
        f"a connection epoll cannot watch must fail as 'connect' at once, not wait for a timeout: {f}"


def test_edge_triggered_an_aborted_connection_does_not_end_the_accept_drain(bin_dir):
    """Edge-triggered, the listener is reported once per arrival: an accept that
    fails with ECONNABORTED (a client that gave up in the backlog) must not end
    the drain, or the connections behind it wait for the next arrival."""
    server = Server([bin_dir / "event_loop", "--port", "0", "--trigger", "edge"],
                    env=with_faults(bin_dir, "accept4@1"))
    try:
        with Client("127.0.0.1", server.port, timeout=2) as c:
            assert c.ask("PING") == "PONG", "the connection queued behind an aborted accept was never accepted"
    finally:
        server.kill()


def holding_the_accept_lock(pids):
    """The worker blocked in accept() (the others wait on the mutex, in futex)."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/wchan") as f:
                where = f.read()
        except OSError:
            continue
        if "accept" in where or "inet_csk" in where:
            return pid
    return None


def test_a_lock_mutex_that_cannot_be_recovered_is_reported_not_ignored(bin_dir):
    """--accept lock-mutex: a worker killed holding the robust mutex leaves it
    to the next locker with EOWNERDEAD, which must make it consistent. If that
    fails, the worker must stop with the call's name, not go on with a mutex
    that every later lock would refuse."""
    server = Server([bin_dir / "prefork", "--port", "0", "--workers", "2", "--accept", "lock-mutex"],
                    env=with_faults(bin_dir, "pthread_mutex_consistent"))
    try:
        holder = None
        deadline = time.monotonic() + 5
        while holder is None and time.monotonic() < deadline:
            holder = holding_the_accept_lock(children_of(server.pid))
            time.sleep(0.05)
        assert holder, "no worker was seen blocked in accept() holding the lock"
        os.kill(holder, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while "pthread_mutex_consistent: Invalid argument" not in server.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "pthread_mutex_consistent: Invalid argument" in server.stderr(), (
            "the mutex's recovery failed and nobody said so:\n" + server.stderr()[-1000:])
    finally:
        server.kill()


@pytest.mark.parametrize("model, args", [("prefork", ["--workers", "1"]), ("fork_per_conn", [])])
def test_a_worker_has_its_pid_in_the_table_before_the_master_writes_it(bin_dir, model, args):
    """The master (02: the parent) stores a worker's pid once fork() returns
    to it; on a loaded machine the worker may serve before that. Its STATUS
    row must still name it, not pid 0: the worker stores its own pid as it starts.
    (In 02 the first fork is for the STATUS connection itself.)"""
    server = Server([bin_dir / model, "--port", "0", *args], env=with_faults(bin_dir, "fork:slow-parent@1"))
    try:
        with Client("127.0.0.1", server.port, timeout=2) as c:
            header = c.ask("STATUS")
            rows = [c.line() for _ in range(int(kv(header[len("STATUS "):])["rows"]))]
            children = children_of(server.pid)  # while 02's child still serves this connection
        pids = [int(kv(row)["pid"]) for row in rows]
        assert pids == children, f"{model}: the worker's row says pid {pids}, the worker is {children} " \
                                 "(its master is still in fork)"
    finally:
        server.kill()
