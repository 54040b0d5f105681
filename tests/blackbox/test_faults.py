"""Calls that fail inside the server, made to fail on purpose (tests/fault/inject.cpp, LD_PRELOAD).

A failed setsockopt() or sigaction() cannot be provoked through the kernel, so
a small library placed in front of libc makes it fail, and each test checks
that the failure is looked at: logged or refused, and never silently ignored.
"""
import json
import re
import os
import signal
import subprocess
import time

import pytest

from conftest import with_faults
from harness import Client, children_of, kv, wait_until


@pytest.mark.parametrize("option", ["SO_RCVTIMEO", "SO_SNDTIMEO"])
def test_a_connection_whose_timeouts_cannot_be_set_is_closed_and_logged(start, option):
    """Without its timeouts a silent client would hold the connection past --idle-timeout and every stop."""
    server = start("single_process", "--idle-timeout", "1", faults=f"setsockopt:{option}@1")
    silent = Client("127.0.0.1", server.port, timeout=5)
    began = time.monotonic()
    closed = silent.closed_by_server(timeout=3)
    took = time.monotonic() - began
    silent.close()
    assert closed and took < 0.5, \
        f"setsockopt {option} failed for the first connection; it should be closed at once, not after {took:.1f} s"
    assert "setsockopt SO_SNDTIMEO/SO_RCVTIMEO: Cannot allocate memory" in server.stderr(), server.stderr()
    with Client("127.0.0.1", server.port) as c:
        assert c.ask("PING") == "PONG", "the next connection (whose setsockopt works) is served"


def test_a_handler_that_cannot_be_installed_stops_the_start(bin_dir):
    r = subprocess.run([bin_dir / "prefork", "--port", "0"], capture_output=True, text=True, timeout=10,
                       env=with_faults(bin_dir, "sigaction:SIGTERM"))
    assert r.returncode == 1, f"sigaction(SIGTERM) failed, yet the server went on (exit {r.returncode})"
    assert "sigaction SIGTERM: Invalid argument" in r.stderr, r.stderr


def test_loadgen_counts_a_failed_epoll_ctl_as_a_failed_connection(start, bin_dir):
    server = start("single_process")
    r = subprocess.run([bin_dir / "loadgen", "--port", str(server.port), "--requests", "5", "--timeout", "3",
                        "--connections", "1", "--json"],
                       capture_output=True, text=True, timeout=30, env=with_faults(bin_dir, "epoll_ctl"))
    report = json.loads(r.stdout)
    f = report["failures"]
    assert f["timeout"] == 0 and f["connect"] == 5, \
        f"a connection epoll cannot watch must fail as 'connect' at once, not wait for a timeout: {f}"


def test_edge_triggered_an_aborted_connection_does_not_end_the_accept_drain(start):
    """Edge-triggered, the listener is reported once per arrival: an accept that
    fails with ECONNABORTED (a client that gave up in the backlog) must not end
    the drain, or the connections behind it wait for the next arrival."""
    server = start("event_loop", "--trigger", "edge", faults="accept4@1")
    with Client("127.0.0.1", server.port, timeout=2) as c:
        assert c.ask("PING") == "PONG", "the connection queued behind an aborted accept was never accepted"


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


def test_a_lock_mutex_that_cannot_be_recovered_is_reported_not_ignored(start):
    """--accept lock-mutex: a worker killed holding the robust mutex leaves it
    to the next locker with EOWNERDEAD, which must make it consistent. If that
    fails, the worker must stop with the call's name, not go on with a mutex
    that every later lock would refuse."""
    server = start("prefork", "--workers", "2", "--accept", "lock-mutex", faults="pthread_mutex_consistent")
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


@pytest.mark.parametrize("model, args", [("prefork", ["--workers", "1"]), ("fork_per_conn", [])])
def test_a_worker_has_its_pid_in_the_table_before_the_master_writes_it(start, model, args):
    """The master (02: the parent) stores a worker's pid once fork() returns
    to it; on a loaded machine the worker may serve before that. Its STATUS
    row must still name it, not pid 0: the worker stores its own pid as it starts.
    (In 02 the first fork is for the STATUS connection itself.)"""
    server = start(model, *args, faults="fork:slow-parent@1")
    with Client("127.0.0.1", server.port, timeout=2) as c:
        header = c.ask("STATUS")
        rows = [c.line() for _ in range(int(kv(header[len("STATUS "):])["rows"]))]
        children = children_of(server.pid)  # while 02's child still serves this connection
    pids = [int(kv(row)["pid"]) for row in rows]
    assert pids == children, f"{model}: the worker's row says pid {pids}, the worker is {children} " \
                             "(its master is still in fork)"


@pytest.mark.parametrize("fault,side", [("send:EAGAIN@1", "a worker saying it is ready"),
                                        ("sendmsg:EAGAIN@1", "the master passing a connection")])
def test_pass_fd_a_full_channel_is_waited_for_not_taken_for_a_closed_one(start, fault, side):
    """pass-fd: EAGAIN means the channel is full, not closed (passfd.cpp). Taken
    for closed, the worker left and was replaced at once, with no backoff
    (send), or the master dropped the connection it was passing (sendmsg)."""
    server = start("prefork", "--workers", "2", "--accept", "pass-fd", "--trace", faults=fault)
    assert wait_until(lambda: len(children_of(server.pid)) == 2, 10)
    answers = []
    for n in range(10):
        with Client("127.0.0.1", server.port, timeout=5) as c:
            try:
                answers.append(c.ask(f"ECHO {n}"))
            except (ConnectionError, OSError) as e:
                answers.append(repr(e))
    assert answers == [str(n) for n in range(10)], f"with {side} finding the channel full once: {answers}"
    trace = server.stderr()
    assert "left on its own" not in trace and "sendmsg to worker" not in trace and \
        len(re.findall(r"master: spawned worker", trace)) == 2, (
            f"a full channel (EAGAIN on {side}) was taken for a closed one:\n{trace[-1500:]}")
