"""The contracts a lab's server must meet, checked from outside, in any language.

Each contract is marked with the labs it belongs to. Its docstring's first
line is the property in words; `hint` says where to look when it fails.
Only the text framing is required (PING, ECHO, SLEEP, QUIT, ERR for the
rest); STATS is an optional contract, skipped when a server does not speak it.
"""
import os
import platform
import re
import signal
import subprocess
import threading
import time

import pytest

HINTS = {}


def contract(*labs, hint):
    def mark(fn):
        HINTS[fn.__name__] = hint
        for lab in labs:
            fn = getattr(pytest.mark, lab)(fn)
        return fn
    return mark


def settle(predicate, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def sleepers_and_a_ping(server, sleepers, ms):
    """`sleepers` clients send SLEEP ms then QUIT at once; then one more client PINGs.

    Returns (seconds the PING took, seconds until every sleeper was answered);
    a PING with no answer within 5 s counts as inf.
    """
    holders = [server.connect(timeout=15) for _ in range(sleepers)]
    try:
        began = time.monotonic()
        for h in holders:
            h.send(f"SLEEP {ms}\nQUIT\n")  # each connection ends after its sleep: a stalled PING gets through later
        time.sleep(0.1)
        with server.connect(timeout=5) as c:
            pinged = time.monotonic()
            try:
                assert c.ask("PING") == "PONG"
                ping_s = time.monotonic() - pinged
            except (TimeoutError, OSError):
                ping_s = float("inf")
        for h in holders:
            got = h.line()
            assert got == f"SLEPT {ms}", f"SLEEP {ms} was answered {got!r}"
        return ping_s, time.monotonic() - began
    finally:
        for h in holders:
            h.close()


# ---- protocol ------------------------------------------------------------------------------

@contract("single", "fork", "prefork", "herd", "threads", "supervision", "event",
          hint="docs/protocol.md, text framing: one request per line, one answer line each")
def test_protocol_answers(server):
    """PING, ECHO, SLEEP and QUIT are answered as docs/protocol.md says."""
    with server.connect() as c:
        got = c.ask("PING")
        assert got == "PONG", f"PING was answered {got!r}, not 'PONG'"
        got = c.ask("ECHO hello world")
        assert got == "hello world", f"'ECHO hello world' was answered {got!r}"
        got = c.ask("SLEEP 10")
        assert got == "SLEPT 10", f"'SLEEP 10' was answered {got!r}"
        got = c.ask("QUIT")
        assert got == "BYE", f"QUIT was answered {got!r}, not 'BYE'"
        assert c.closed_by_server(), "after BYE the server should close the connection"


@contract("single", "fork", "prefork", "herd", "threads", "supervision", "event",
          hint="split the input on LF, not on recv() calls; answer unknown words with 'ERR ...' and keep reading")
def test_protocol_pipelining_and_errors(server):
    """Several requests in one write are answered in order; an unknown one gets ERR and the connection goes on."""
    with server.connect() as c:
        c.send("PING\r\nECHO a\nFOO\nping\n")
        got = [c.line() for _ in range(4)]
    assert got[0] == "PONG" and got[1] == "a", f"pipelined PING, ECHO a were answered {got[:2]}"
    assert got[2].startswith("ERR"), f"an unknown command 'FOO' was answered {got[2]!r}: it should start with 'ERR'"
    assert got[3] == "PONG", f"after the error, 'ping' (any case) was answered {got[3]!r}"


@contract("single", "fork", "prefork", "herd", "threads", "supervision", "event",
          hint="a recv() of 0 bytes or ECONNRESET ends that client only; ignore SIGPIPE or send with MSG_NOSIGNAL")
def test_survives_rude_clients(server):
    """A client that vanishes mid-request, or resets the connection, does not bring the server down."""
    import socket
    import struct
    with server.connect() as c:
        c.send("ECHO half a line")  # no LF, then gone
    with server.connect() as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.send("SLEEP 50\n")  # closes with RST before the answer
    time.sleep(0.2)
    for n in range(5):
        with server.connect() as c:
            got = c.ask("PING")
            assert got == "PONG", f"client {n + 1} after two rude ones was answered {got!r}"


@contract("single", "fork", "prefork", "herd", "threads", "supervision", "event",
          hint="install a SIGTERM handler (or keep the default); a master forwards it to its children and waits for them")
def test_clean_sigterm(server):
    """SIGTERM stops the whole server within 5 s: no process of it is left."""
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
    tree = server.processes()
    server.proc.send_signal(signal.SIGTERM)
    left = settle(lambda: not server.processes(), timeout=5)
    assert left, (f"5 s after SIGTERM, {len(server.processes())} of its {len(tree)} processes are still running "
                  f"(pids {server.processes()})")


# ---- processes -------------------------------------------------------------------------------

@contract("fork", "prefork", "herd", "threads", "event",
          hint="a process (or thread) per connection, or a pool of them: accept must not wait for a client to finish")
def test_concurrency(server):
    """A PING is answered at once while another client sleeps on its own connection."""
    ping_s, _ = sleepers_and_a_ping(server, 1, 1500)
    assert ping_s < 0.75, (f"client B's PING took {ping_s:.2f} s while client A slept 1.5 s on another "
                           f"connection: connections are not served concurrently")


@contract("fork", "prefork", "herd", "supervision",
          hint="reap every child: after SIGCHLD (a flag or a self-pipe), the main loop calls waitpid(-1, WNOHANG) "
               "until it returns 0 or fails with ECHILD")
def test_no_zombies(server):
    """After 20 connections have come and gone, no child is left a zombie."""
    for n in range(20):
        with server.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    settle(lambda: not server.zombies(), timeout=2)
    zombies = server.zombies()
    assert not zombies, (f"{len(zombies)} zombie processes (state Z in /proc) 2 s after 20 connections "
                             f"closed: nobody called wait() for them")


@contract("single", "fork", "prefork", "herd", "threads", "event",
          hint="close every accepted socket in the process that does not serve it (the parent after fork), and on every error path")
def test_no_fd_leak(server):
    """The server holds no more file descriptors after 30 connections than before."""
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
    time.sleep(0.3)
    before = server.fds()
    for n in range(30):
        with server.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    settle(lambda: server.fds() <= before, timeout=2)
    after = server.fds()
    assert after <= before, (f"the server's processes held {before} descriptors before 30 connections and "
                             f"{after} after them: about {(after - before) / 30:.1f} leaked per connection")


@contract("prefork", "herd", "threads", "supervision",
          hint="fork the workers once at start; a worker loops on accept and never forks per connection")
def test_fixed_pool(server):
    """The workers are forked before clients arrive, and their number does not change with the load."""
    settle(lambda: len(server.workers()) >= 2, timeout=5)
    before = sorted(server.workers())
    assert len(before) >= 2, (f"the server has {len(before)} child processes while no client is connected: a pool "
                              f"forks at least 2 workers before clients arrive (give it --workers 2)")
    for n in range(20):
        with server.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    after = sorted(server.workers())
    assert after == before, (f"workers before 20 connections: {before}, after: {after}: the pool should be the "
                             f"same processes, not a fork per connection")


@contract("herd",
          hint="every worker takes connections from the shared listening socket; after poll/epoll says readable, "
               "accept may find nothing (EAGAIN): go back to waiting")
def test_burst_served_by_many(server):
    """50 clients that connect at once are all answered, and more than one worker holds their connections."""
    settle(lambda: len(server.workers()) >= 2, timeout=5)
    answers, errors, owners = [], [], set()

    def client(n):
        try:
            with server.connect(timeout=15) as c:
                answers.append(c.ask("SLEEP 200"))
        except Exception as e:  # noqa: BLE001 - the message goes into the report
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    began = time.monotonic()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 15
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        owners |= connection_owners(server)  # which processes hold the server side of the connections
        time.sleep(0.05)
    took = time.monotonic() - began
    for t in threads:
        t.join(timeout=1)
    # Answers and owners, not connects: a connect() succeeds once the kernel has queued the connection,
    # whether or not the server ever serves it.
    assert not errors and len(answers) == 50, (f"of 50 clients connecting at once, {len(answers)} were answered; "
                                               f"first errors: {errors[:3]}")
    assert len(owners) >= 2, (f"the 50 connections were all held by {len(owners)} process(es) {sorted(owners)} "
                              f"over {took:.1f} s: the burst was not served by many workers")


# The first field of /proc/PID/task/TID/syscall is the number of the system
# call the thread is blocked in (syscall(2) numbers differ by architecture).
SYSCALLS = {
    "x86_64": {7: "poll", 23: "select", 232: "epoll_wait", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait",
               441: "epoll_pwait2", 43: "accept", 288: "accept4", 0: "read", 45: "recvfrom", 202: "futex",
               61: "wait4", 230: "clock_nanosleep", 34: "pause", 128: "rt_sigtimedwait", 72: "fcntl"},
    "aarch64": {72: "pselect6", 73: "ppoll", 22: "epoll_pwait", 441: "epoll_pwait2", 202: "accept",
                242: "accept4", 63: "read", 207: "recvfrom", 98: "futex", 260: "wait4", 115: "clock_nanosleep",
                137: "rt_sigtimedwait", 25: "fcntl"},
}
POLL_FAMILY = {"poll", "select", "epoll_wait", "pselect6", "ppoll", "epoll_pwait", "epoll_pwait2"}
ACCEPTS = {"accept", "accept4"}


def blocked_in(pid, tid):
    """The system call thread `tid` of `pid` is blocked in ('poll', 'accept4', 'syscall 999'), or
    'running'; None when it is gone. Where the architecture's numbers are not in SYSCALLS, the
    kernel function it sleeps in (/proc/.../wchan) is mapped onto the same names."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            first = f.read().split()[0]
        table = SYSCALLS.get(platform.machine())
        if first == "running":
            return "running"
        if table is not None:
            return table.get(int(first), f"syscall {first}")
        with open(f"/proc/{pid}/task/{tid}/wchan") as f:
            wchan = f.read()
    except (OSError, IndexError, ValueError):
        return None
    if "accept" in wchan:
        return "accept"
    return "poll" if "poll" in wchan or "select" in wchan else f"kernel function {wchan}"


def waits(pid):
    """What each thread of `pid` is blocked in: {tid: name}."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return {}
    return {tid: what for tid in tids if (what := blocked_in(pid, tid))}


def listening_sockets(server):
    """{pid: [(fd, nonblocking)]}: the descriptors of the server's listening sockets on its port, per process."""
    out = subprocess.run(["ss", "-Hltne", f"( sport = :{server.port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    inodes = {f"socket:[{ino}]" for ino in re.findall(r"\bino:(\d+)", out)}
    held = {}
    for pid in server.processes():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        flags = next(int(line.split()[1], 8) for line in f if line.startswith("flags:"))
                    held.setdefault(pid, []).append((int(fd), bool(flags & os.O_NONBLOCK)))
        except (OSError, StopIteration):
            pass
    return held


@contract("herd",
          hint="set the listening socket non-blocking (O_NONBLOCK) before fork; a worker waits in poll/select/epoll "
               "for it to be readable, then calls accept, and goes back to the wait on EAGAIN")
def test_workers_wait_in_poll(server):
    """Idle workers wait in poll, select or epoll on a non-blocking listening socket, not in accept."""
    settle(lambda: len(server.workers()) >= 2, timeout=5)
    for n in range(5):  # a few connections first: a worker that lost a race shows where it went next
        with server.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    problems = []

    def idle_workers_poll():
        problems.clear()
        workers, found = server.workers(), {}  # what is wrong -> the workers it is wrong with
        if len(workers) < 2:
            problems.append(f"the server has {len(workers)} worker processes; this lab needs a pool of at least 2")
        for pid in workers:
            calls = set(waits(pid).values())
            if calls & ACCEPTS:
                found.setdefault(f"wait in {', '.join(sorted(calls & ACCEPTS))}", []).append(pid)
            elif calls and not calls & POLL_FAMILY:
                found.setdefault(f"wait in {', '.join(sorted(calls))}, not in poll, select or epoll", []).append(pid)
        for what, pids in found.items():
            problems.append(f"worker{'s' * (len(pids) > 1)} {', '.join(map(str, pids))} {what}")
        return not problems

    settle(idle_workers_poll, timeout=3)  # a worker may be between two calls: look again
    held, blocking = listening_sockets(server), []
    for pid in server.workers():
        if pid not in held:
            problems.append(f"worker {pid} holds no listening socket of port {server.port}")
        blocking += [f"/proc/{pid}/fdinfo/{fd}" for fd, nonblocking in held.get(pid, []) if not nonblocking]
    if blocking:
        problems.append(f"the listening socket is blocking (no O_NONBLOCK in the flags of {', '.join(blocking)})")
    assert not problems, ("while the pool was idle, " + "; ".join(problems) + ": each worker must wait in poll, "
                          "select or epoll on a non-blocking listening socket, and accept when it is readable")


def connection_owners(server):
    """Pids of the server's processes that hold an established connection on its port.

    `ss` asks the kernel for just those sockets (sock_diag, filtered in the
    kernel) with the processes holding them: reading /proc/net/tcp instead
    means parsing every socket of the machine, which takes longer than the
    burst lasts on a machine with many connections in TIME_WAIT."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{server.port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    mine = set(server.processes())
    return {pid for pid in map(int, re.findall(r"pid=(\d+)", out)) if pid in mine}


@contract("threads",
          hint="M threads per process, each serving one connection: N processes x M threads connections at once")
def test_threads_serve_more_than_processes(server):
    """8 clients sleeping at once are served together, by fewer than 8 processes."""
    processes = len(server.processes())
    ping_s, total_s = sleepers_and_a_ping(server, 8, 1000)
    assert total_s < 1.8, (f"8 clients each sleeping 1 s took {total_s:.2f} s in all: they were not served at "
                           f"the same time")
    assert ping_s < 0.5, f"a PING beside 8 sleeping clients took {ping_s:.2f} s"
    assert processes < 8 and server.threads() > processes, (
        f"{processes} processes with {server.threads()} threads in all: this lab asks for threads, "
        f"fewer than 8 processes")


# ---- supervision ---------------------------------------------------------------------------

@contract("supervision",
          hint="the master waits for its children (waitpid) and forks a new worker for each one that died")
def test_respawn(server):
    """A worker killed with SIGKILL is replaced within 5 s, and the server keeps answering."""
    workers = settle(lambda: len(server.workers()) >= 2 and server.workers(), timeout=5) or []
    assert len(workers) >= 2, f"the server has {len(workers)} workers; this lab needs a pool of at least 2"
    os.kill(workers[0], signal.SIGKILL)
    back = settle(lambda: len(server.workers()) >= len(workers) and workers[0] not in server.workers(), timeout=5)
    assert back, (f"after SIGKILL of worker {workers[0]}, the server had {len(server.workers())} workers for 5 s "
                  f"(it had {len(workers)}): the dead worker was not replaced")
    for n in range(5):
        with server.connect() as c:
            assert c.ask("PING") == "PONG", "the server stopped answering after a worker died"


@contract("supervision",
          hint="on SIGTERM stop accepting, let workers finish the request in hand, then exit; SIGKILL only after a timeout")
def test_graceful_stop(server):
    """SIGTERM during a request: that request is still answered, then the server exits."""
    with server.connect(timeout=10) as c:
        c.send("SLEEP 1000\n")
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        try:
            got = c.line()
        except (ConnectionError, OSError) as e:
            got = repr(e)
    assert got == "SLEPT 1000", f"the request in flight at SIGTERM got {got!r} instead of 'SLEPT 1000'"
    assert settle(lambda: not server.processes(), timeout=5), "the server was still running 5 s after SIGTERM"


# ---- optional: the toolkit's own servers -------------------------------------------------------

@pytest.mark.optional
@contract("herd", hint="STATS: accepts=, wakeups= and spurious= summed over every worker (docs/protocol.md)")
def test_herd_counters(server):
    """If STATS reports accept counters, they are consistent: every accept follows a wakeup."""
    with server.connect() as c:
        stats = c.ask("STATS")
    if "accepts=" not in stats:
        pytest.skip("STATS without accept counters (optional for students)")
    fields = dict(p.split("=", 1) for p in stats.split() if "=" in p)
    accepts, wakeups, spurious = (int(fields.get(k, -1)) for k in ("accepts", "wakeups", "spurious"))
    assert wakeups >= accepts >= 1 and 0 <= spurious <= wakeups, \
        f"STATS says {stats!r}: expected wakeups >= accepts >= 1 and spurious <= wakeups"


# ---- lab 7: the event loop -------------------------------------------------------------------

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except OSError:
        return 0


@contract("event",
          hint="one loop (select, poll, epoll, kqueue, selectors, asyncio) in the process you started: no fork, no thread")
def test_one_process_one_thread(server):
    """While 20 clients hold connections, the server is one process with one thread."""
    holders = [server.connect(timeout=10) for _ in range(20)]
    try:
        for h in holders:
            h.send("SLEEP 700\n")
        time.sleep(0.3)
        processes, threads = server.processes(), server.threads()
    finally:
        for h in holders:
            h.close()
    assert len(processes) == 1 and threads == 1, (
        f"while 20 clients held connections the server was {len(processes)} process(es) with {threads} "
        f"thread(s) in all (from /proc): lab 7 asks for one process with one thread")


@contract("event",
          hint="SLEEP must be a timer the loop comes back to (a heap of deadlines, the select/epoll timeout), "
               "never a sleep() that blocks the loop")
def test_hundred_sleepers_at_once(server):
    """100 clients send SLEEP 1000 at the same moment; all are answered within 2.5 s."""
    clients = [server.connect(timeout=5) for _ in range(100)]
    answers = []
    try:
        began = time.monotonic()
        for c in clients:
            c.send("SLEEP 1000\n")
        deadline = began + 5
        for c in clients:
            c.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                answers.append(c.line())
            except (TimeoutError, OSError):
                break
        took = time.monotonic() - began
    finally:
        for c in clients:
            c.close()
    assert len(answers) == 100 and took < 2.5, (
        f"100 clients sent SLEEP 1000 at once: {len(answers)} answered after {took:.1f} s. The sleeps ran one "
        f"after another, so SLEEP blocked the loop")
    wrong = [a for a in answers if a != "SLEPT 1000"]
    assert not wrong, f"{len(wrong)} of 100 SLEEP 1000 were answered wrongly, e.g. {wrong[0]!r}"


@contract("event",
          hint="keep an input buffer per connection; answer only complete lines; never block in recv() "
               "waiting for the rest of one client's line")
def test_split_request_does_not_stall_others(server):
    """A request that arrives a byte at a time is answered once complete; meanwhile other clients are served."""
    with server.connect(timeout=5) as slow, server.connect(timeout=5) as other:
        slow.send("EC")
        began = time.monotonic()
        assert other.ask("PING") == "PONG", "another client's PING"
        other_took = time.monotonic() - began
        for piece in ("HO ", "sp", "lit", "\n"):
            time.sleep(0.05)
            slow.send(piece)
        got = slow.line()
    assert got == "split", f"'ECHO split' sent in five pieces was answered {got!r}"
    assert other_took < 0.5, (f"another client's PING took {other_took:.2f} s while one client had sent half a "
                              f"request: the loop waited for the rest of that line")


@contract("event",
          hint="bound each connection's output buffer: above a limit, stop reading that connection (stop watching "
               "it for input) until the client has read some; the kernel then pushes back on the sender")
def test_backpressure_for_a_client_that_never_reads(server):
    """A client pipelining ECHOs without reading does not grow the server's memory without bound or stall others."""
    import socket
    line = b"ECHO " + b"x" * 4000 + b"\n"
    flood = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    flood.settimeout(2)  # a send blocked this long: the server has stopped reading
    before = sum(rss_kib(p) for p in server.processes())
    sent, began = 0, time.monotonic()
    try:
        chunk = line * 256  # about 1 MiB per sendall
        while sent < 96 * 1024 * 1024 and time.monotonic() - began < 15:
            flood.sendall(chunk)
            sent += len(chunk)
    except (TimeoutError, socket.timeout, OSError):
        pass
    try:
        began = time.monotonic()
        with server.connect(timeout=5) as c:
            assert c.ask("PING") == "PONG", "another client's PING while the flood's answers pile up"
        ping_s = time.monotonic() - began
        grew_mib = (sum(rss_kib(p) for p in server.processes()) - before) / 1024
    finally:
        flood.close()
    assert ping_s < 1.0, f"another client's PING took {ping_s:.2f} s while one client sent and never read"
    assert grew_mib < 32, (f"a client sent {sent / 2**20:.0f} MiB of ECHO requests and read nothing: the server "
                           f"grew by {grew_mib:.0f} MiB. Without a limit its output buffer holds every answer")
    time.sleep(0.2)
    with server.connect(timeout=5) as c:
        assert c.ask("PING") == "PONG", "the server serves on after the flood's client closed"
