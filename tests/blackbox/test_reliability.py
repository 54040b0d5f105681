"""Reliability under faults (docs/reliability.md): each promise, and a test that fails when it breaks.

Every test is bounded in time, uses 127.0.0.1 only, and its servers are
killed at teardown (the `start` fixture) even when an assertion fails.
"""
import contextlib
import json
import os
import pathlib
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import time

import pytest

from fdlimit import limit_files, no_sanitizer_at_the_fd_limit
from harness import Client, children_of, proc_stat, wait_until, zombies_of
from models import MODELS

POOLS = ["prefork", "prefork_threads"]


class Load:
    """loadgen in the background: PING, a connection per request, checked answers."""

    def __init__(self, bin_dir, port, seconds, connections=8, extra=()):
        self.proc = subprocess.Popen(
            [bin_dir / "loadgen", "--port", str(port), "--json", "--conn-per-request", "--connections",
             str(connections), "--duration", str(seconds), "--timeout", "3", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout=60):
        out, err = self.proc.communicate(timeout=timeout)
        assert out.strip(), f"loadgen printed nothing: {err}"
        return json.loads(out)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary_counts(stderr):
    """(connections, requests) from the 'MODEL stopped: N connections, M requests' line."""
    m = re.search(r"stopped: (\d+) connections, (\d+) requests", stderr)
    assert m, f"no summary line in the server's stderr:\n{stderr[-2000:]}"
    return int(m.group(1)), int(m.group(2))


# ---- chaos: workers killed under load ---------------------------------------------------------

@pytest.mark.parametrize("model", POOLS)
def test_workers_killed_every_200ms_under_load(start, bin_dir, model):
    threads = ["--threads", "4"] if model == "prefork_threads" else []
    per_worker = 4 if threads else 1  # connections a worker can have in flight
    server = start(model, "--workers", "3", *threads)
    assert wait_until(lambda: len(children_of(server.pid)) == 3, 10)
    fds_before = fd_count(server.pid)
    load = Load(bin_dir, server.port, seconds=11)
    time.sleep(0.5)
    kills, rng, began = 0, random.Random(7), time.monotonic()
    while time.monotonic() - began < 10:
        workers = children_of(server.pid)
        if workers:
            os.kill(rng.choice(workers), signal.SIGKILL)
            kills += 1
        time.sleep(0.2)
    r = load.result()
    f = r["failures"]
    print(f"\n{model}: {kills} kills, {r['ok']} right answers, failures {f}")  # pytest -s: the figures of docs/reliability.md
    assert f["timeout"] == f["refused"] == f["wrong"] == f["connect"] == 0, \
        f"only requests in flight on a killed worker may fail (closed or reset), got {f}"
    assert r["errors"] <= kills * per_worker, \
        f"{r['errors']} failed requests for {kills} kills of workers holding at most {per_worker} each"
    assert r["ok"] >= 500, f"only {r['ok']} right answers in 11 s of load: the server did not keep serving"
    assert wait_until(lambda: len(children_of(server.pid)) == 3, 5), \
        f"the worker count did not come back to 3: {children_of(server.pid)}"
    assert wait_until(lambda: not zombies_of(server.pid), 2), f"zombies left: {zombies_of(server.pid)}"
    assert fd_count(server.pid) == fds_before, \
        f"the master held {fds_before} descriptors before {kills} kills and {fd_count(server.pid)} after"


# ---- signals around fork ----------------------------------------------------------------------

@pytest.mark.parametrize("model", ["fork_per_conn", "prefork", "prefork_threads", "prefork_event_loop"])
def test_children_signalled_right_after_fork_stop_alone(start, bin_dir, model):
    """SIGTERM to every child as soon as it exists, for 2 s, under load.

    A child that runs its parent's handlers before it has its own pipes
    writes "stop" into the parent's pipe: the parent then wakes forever
    (02 spun at 100% CPU and stopped accepting). fork_child() blocks signals
    until the child is set up."""
    server = start(model, *(["--workers", "2"] if model != "fork_per_conn" else []))
    load = Load(bin_dir, server.port, seconds=2.5)
    began, sent = time.monotonic(), 0
    while time.monotonic() - began < 2:
        for child in children_of(server.pid):
            try:
                os.kill(child, signal.SIGTERM)
                sent += 1
            except ProcessLookupError:
                pass
    load.result()
    time.sleep(0.5)
    before = cpu_seconds(server.pid)
    time.sleep(1.5)
    used = cpu_seconds(server.pid) - before
    print(f"\n{model}: {sent} SIGTERMs to children; then {used:.2f} s of parent CPU in 1.5 idle s")
    assert used < 0.2, (f"after {sent} SIGTERMs to its newborn children, {model}'s parent used {used:.2f} s of CPU "
                        "in 1.5 idle seconds: a child's handler woke the parent's loop")
    assert server.alive(), f"{model} stopped although only its children were signalled"
    with Client("127.0.0.1", server.port, timeout=3) as c:
        assert c.ask("PING") == "PONG", f"{model} no longer answers after the storm"


# ---- graceful stop and rolling restart under load -------------------------------------------

@pytest.mark.parametrize("model", ["fork_per_conn", *POOLS, "event_loop", "event_loop_threads", "uring"])
def test_graceful_stop_under_load_answers_every_accepted_connection(start, bin_dir, model):
    server = start(model, *(["--workers", "2"] if model in POOLS else []))
    load = Load(bin_dir, server.port, seconds=3)
    time.sleep(1)
    assert server.stop(timeout=15) == 0, "a graceful stop exits with status 0"
    r = load.result()
    connections, requests = summary_counts(server.stderr())
    assert connections == requests > 0, \
        f"the server accepted {connections} connections (one PING each) and answered {requests}"
    f = r["failures"]
    assert f["closed"] == f["wrong"] == f["timeout"] == 0, \
        f"accepted connections must be answered; refused or reset after the listener closed are fine: {f}"


# ---- resources exhausted ---------------------------------------------------------------------

@contextlib.contextmanager
def crowded_worker(bin_dir, *args):
    """04 with one worker of 64 threads but only 32 descriptors, and 60 clients
    connected: more than it can hold. Yields (server, worker pid, a function
    that closes the clients); everything is closed and killed afterwards."""
    from harness import Server
    server = Server([bin_dir / "prefork_threads", "--port", "0", "--workers", "1", "--threads", "64", *args],
                    preexec_fn=limit_files(32))
    clients = []

    def release():
        for c in clients:
            c.close()
        clients.clear()

    try:
        assert wait_until(lambda: children_of(server.pid), 10)
        (worker,) = children_of(server.pid)
        for _ in range(60):
            clients.append(Client("127.0.0.1", server.port, timeout=5))
        yield server, worker, release
    finally:
        release()
        server.kill()


@no_sanitizer_at_the_fd_limit
def test_fd_exhaustion_no_crash_no_busy_loop_and_recovery(bin_dir):
    with crowded_worker(bin_dir) as (server, worker, release):
        time.sleep(1)  # the worker runs out of descriptors (EMFILE) and backs off
        cpu_before = cpu_seconds(worker)
        time.sleep(2)
        busy = cpu_seconds(worker) - cpu_before
        print(f"\nEMFILE: worker CPU {busy:.2f} s in 2 s")
        assert server.alive() and proc_stat(worker) and proc_stat(worker)[0] != "Z", "the server died on EMFILE"
        assert busy < 0.3, f"the worker used {busy:.2f} s of CPU in 2 s while out of descriptors: a busy loop"
        assert "Too many open files" in server.stderr() or "EMFILE" in server.stderr(), \
            f"EMFILE should be logged: {server.stderr()[-500:]}"
        release()
        with Client("127.0.0.1", server.port, timeout=5) as c:
            assert c.ask("PING") == "PONG", "no service after the clients left"


@no_sanitizer_at_the_fd_limit
def test_pass_fd_worker_out_of_descriptors_loses_a_client_not_itself(bin_dir):
    """pass-fd: a descriptor the worker has no room for arrives as MSG_CTRUNC.

    That one client is lost (the kernel closes it); the worker must say so and
    go on, not take "no descriptor" for "the master is gone" and leave."""
    with crowded_worker(bin_dir, "--accept", "pass-fd", "--thread-accept", "mutex") as (server, worker, release):
        assert wait_until(lambda: "MSG_CTRUNC" in server.stderr(), 5), \
            f"60 clients for a worker with 32 descriptors: the lost descriptor should be logged: {server.stderr()[-500:]}"
        assert children_of(server.pid) == [worker], \
            f"worker {worker} left (or was replaced: {children_of(server.pid)}) when a descriptor did not arrive"
        release()
        with Client("127.0.0.1", server.port, timeout=5) as c:
            assert c.ask("PING") == "PONG", "no service once the clients left"
        assert children_of(server.pid) == [worker]


@no_sanitizer_at_the_fd_limit
def test_a_failed_socketpair_delays_the_worker_and_nothing_spins(bin_dir):
    """pass-fd: the master makes a channel per worker before fork(). With 13
    descriptors it has room for some, not all four (EMFILE). A worker must not
    be started without a channel (it spun on descriptor -1): it waits, and
    starts once the limit is raised."""
    from harness import Server
    # Soft limit 13, hard 64: raising the soft one later needs no privilege.
    server = Server([bin_dir / "prefork", "--port", "0", "--workers", "4", "--accept", "pass-fd"],
                    preexec_fn=limit_files(13, 64))
    try:
        assert wait_until(lambda: "socketpair: Too many open files" in server.stderr(), 5), server.stderr()
        time.sleep(0.5)
        workers = children_of(server.pid)
        cpu = {w: cpu_seconds(w) for w in workers}
        time.sleep(1)
        busy = {w: round(cpu_seconds(w) - cpu[w], 2) for w in workers if proc_stat(w)}
        assert all(b < 0.1 for b in busy.values()), f"workers used CPU while idle: {busy}"
        assert 0 < len(workers) < 4, f"{len(workers)} workers with 13 descriptors: some channels cannot fit"
        with Client("127.0.0.1", server.port) as c:
            assert c.ask("PING") == "PONG", "the workers that have a channel serve meanwhile"
        subprocess.run(["prlimit", "--pid", str(server.pid), "--nofile=64:64"], check=True, timeout=10)
        assert wait_until(lambda: len(children_of(server.pid)) == 4, 5), \
            f"the missing workers were not started once descriptors were free: {children_of(server.pid)}"
    finally:
        server.kill()


def run_as_nobody_with_nproc(n):
    def preexec():
        resource.setrlimit(resource.RLIMIT_NPROC, (n, 64))  # soft n: the hard 64 lets nobody raise it later
        os.setgid(65534)
        os.setuid(65534)
    return preexec


def where_nobody_can_run_it(exe):
    """`exe`, copied where user nobody can run it: the clone may be in a directory others cannot
    enter (a mktemp -d directory, /root, mode 0700), and so may pytest's tmp_path. A directory of
    its own in the system's temporary directory, open to all; the caller removes it."""
    import shutil
    import tempfile
    place = pathlib.Path(tempfile.mkdtemp(prefix="serverlab-nobody-"))
    place.chmod(0o755)
    copy = place / exe.name
    shutil.copy2(exe, copy)
    copy.chmod(0o755)
    return copy


@pytest.mark.skipif(os.geteuid() != 0, reason="RLIMIT_NPROC binds only a non-root user: needs root to switch to nobody")
@pytest.mark.parametrize("model", ["fork_per_conn", "prefork"])
def test_fork_failure_is_logged_survived_and_recovered(bin_dir, model):
    """RLIMIT_NPROC as user nobody: fork() fails with EAGAIN, for real."""
    import shutil
    from harness import Server
    def nobody_processes():
        found = []
        for p in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.stat(f"/proc/{p}").st_uid == 65534:
                    found.append(int(p))
            except OSError:
                pass
        return found
    # The previous parametrization's processes may take a moment to go.
    if not wait_until(lambda: not nobody_processes(), 5):
        pytest.skip(f"processes of user nobody are running ({nobody_processes()}): RLIMIT_NPROC would count them")
    args = ["--workers", "2"] if model == "prefork" else []
    exe = where_nobody_can_run_it(bin_dir / model)
    server = Server([exe, "--port", "0", *args], preexec_fn=run_as_nobody_with_nproc(1 if model == "fork_per_conn" else 2),
                    cwd="/")
    try:
        if model == "prefork":
            assert wait_until(lambda: "fork: Resource temporarily unavailable" in server.stderr(), 5), \
                f"the failed fork should be logged: {server.stderr()[-500:]}"
            assert len(children_of(server.pid)) == 1, "one worker fits under the limit"
            with Client("127.0.0.1", server.port) as c:
                assert c.ask("PING") == "PONG", "the one worker serves meanwhile"
        else:
            with Client("127.0.0.1", server.port) as c:
                c.send("PING\n")
                assert c.closed_by_server(), "no child could be forked: the connection is closed"
            assert wait_until(lambda: "fork: Resource temporarily unavailable" in server.stderr(), 5)
        assert server.alive(), "the server died when fork failed"
        # Root may lack CAP_SYS_RESOURCE (a container): raise the soft limit as nobody itself.
        subprocess.run(["prlimit", "--pid", str(server.pid), "--nproc=64:64"], check=True, timeout=10,
                       preexec_fn=run_as_nobody_with_nproc(64))
        if model == "prefork":
            assert wait_until(lambda: len(children_of(server.pid)) == 2, 5), "the missing worker was not forked later"
        with Client("127.0.0.1", server.port) as c:
            assert c.ask("PING") == "PONG", "no recovery once fork works again"
    finally:
        server.kill()
        shutil.rmtree(exe.parent, ignore_errors=True)


# ---- slow and rude clients -------------------------------------------------------------------

SLOWLORIS = [b"", b"PIN", b"ECHO never finis", b"GET /ping HTTP/1.1\r\nHost: x\r\n", b"GET /pi"]


@pytest.mark.parametrize("model", ["fork_per_conn", *POOLS, "event_loop", "event_loop_threads", "uring"])
def test_slowloris_connections_are_closed_after_the_idle_timeout(start, model):
    server = start(model, "--idle-timeout", "1", *(["--workers", "2"] if model in POOLS else []))
    # 02 and 04 hold them all at once; 03's 2 workers take 2 at a time, a second each.
    count = 10 if model != "prefork" else 4
    began = time.monotonic()
    clients = [Client("127.0.0.1", server.port, timeout=10) for _ in range(count)]
    try:
        for i, c in enumerate(clients):
            c.send(SLOWLORIS[i % len(SLOWLORIS)])
        limit = 3.5 if model != "prefork" else 4.5
        for i, c in enumerate(clients):
            assert c.closed_by_server(timeout=limit - (time.monotonic() - began)), \
                f"connection {i} ({SLOWLORIS[i % len(SLOWLORIS)]!r}) still open {limit} s in, --idle-timeout 1"
    finally:
        for c in clients:
            c.close()
    with Client("127.0.0.1", server.port) as c:
        assert c.ask("PING") == "PONG"


def test_slowloris_stalls_the_iterative_server_until_the_idle_timeout(start):
    """01 serves one connection at a time by design: 3 silent clients delay a PING by about 3 timeouts."""
    server = start("single_process", "--idle-timeout", "1")
    silent = [Client("127.0.0.1", server.port) for _ in range(3)]
    try:
        began = time.monotonic()
        with Client("127.0.0.1", server.port, timeout=10) as c:
            assert c.ask("PING") == "PONG"
            waited = time.monotonic() - began
        assert 2.5 <= waited <= 5.5, f"a PING behind 3 silent clients waited {waited:.2f} s (expected about 3)"
    finally:
        for c in silent:
            c.close()


@pytest.mark.parametrize("model", MODELS)
def test_rude_clients_get_an_error_or_a_close_and_the_server_goes_on(start, model):
    server = start(model)
    rng = random.Random(11)
    # A reset while the answer is being computed and sent.
    with Client("127.0.0.1", server.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.send("WORK 20000000\nECHO " + "x" * 100000 + "\n")
    # Binary garbage, in lines: every line gets an answer (ERR for garbage) or the connection closes.
    with Client("127.0.0.1", server.port) as c:
        garbage = bytes(rng.randrange(256) for _ in range(4000)).replace(b"\n", b"")
        c.send(garbage[:2000] + b"\n" + garbage[2000:] + b"\nPING\n")
        try:
            answers = [c.line(), c.line(), c.line()]
            assert answers[0].startswith("ERR") and answers[2] == "PONG", answers
        except ConnectionError:
            pass  # a close is allowed too
    # A 1 MB line.
    with Client("127.0.0.1", server.port) as c:
        try:
            c.send(b"ECHO " + b"y" * (1 << 20) + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed while we were still sending: allowed
        assert c.closed_by_server(), "a 1 MB line must end the connection"
        assert c.buf.startswith(b"ERR line too long") or c.buf == b"", c.buf[:100]
    with Client("127.0.0.1", server.port) as c:
        assert c.ask("PING") == "PONG", "the server stopped serving after rude clients"
