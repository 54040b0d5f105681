"""The contracts a lab's server must meet, checked from outside, in any language.

Each contract's labs and points are in labs.py. Its docstring's first line is
the property in words; its hint says where to look when it fails. Each checks
the property itself, not a sign of it: simultaneous answers (not connects,
not idle processes), connections held by the pool's workers (not the
existence of workers), every process the server ever forked (not only those
still below it), a SLEEP that takes its time. tests/blackbox/test_grader.py
runs servers that fake each property (tests/labs/cheats/) through the
contracts they fake. Only the text framing is required (PING, ECHO, SLEEP,
QUIT, ERR for the rest; lab 8 adds INCR and GET); STATS is an optional
contract, skipped when a server does not speak it. Lab 9's server is a proxy:
its contracts run it in front of the grader's own backend (backend.py), and
watch both.
"""
import collections
import os
import re
import signal
import socket
import threading
import time

import pytest

import proc
from labs import POINTS, labs_of
from observe import (ACCEPTS, LOCKS, POLL_FAMILY, SLEEP_RULE, answers_within, asked_at_once, close_wait_sockets,
                     echo_load, flood_without_reading, held_connections, holder_pids, incr_load, listening_sockets,
                     ping_seconds, port_of, reset_on_close, settle, sleepers_and_a_ping, slept_too_little, waits)

HINTS = {}


def contract(hint):
    """Marks a contract with the labs that check it (labs.py); optional when it is worth no points."""
    def mark(fn):
        name = fn.__name__.removeprefix("test_")
        HINTS[fn.__name__] = hint
        for lab in labs_of(name):
            fn = getattr(pytest.mark, lab)(fn)
        if all(POINTS[lab][name][0] == 0 for lab in labs_of(name)):
            fn = pytest.mark.optional(fn)
        return fn
    return mark


def duration(took, limit):
    """A time for a message: '0.42', or 'more than 5' for a wait that gave up (inf) after `limit` s."""
    return f"more than {limit}" if took == float("inf") else f"{took:.2f}"


def still_running(server, seconds):
    """The complaint when processes of the server outlive `seconds` after a stop, or None."""
    if settle(lambda: not server.processes(), timeout=seconds):
        return None
    left, adopted = server.processes(), server.adopted()
    why = ""
    if adopted:
        why = (f"; {len(adopted)} of them outlived their parent (pids {adopted}, adopted by the grader, their "
               f"subreaper): a master must stop its workers, and wait for them, before it exits")
    return f"{seconds} s after SIGTERM, {len(left)} process(es) of the server are still running (pids {left}){why}"


# ---- protocol ------------------------------------------------------------------------------

@contract(hint="docs/protocol.md, text framing: one request per line, one answer line each; SLEEP n waits n ms")
def test_protocol_answers(server):
    """PING, ECHO, SLEEP and QUIT are answered as docs/protocol.md says."""
    with server.connect() as c:
        got = c.ask("PING")
        assert got == "PONG", f"PING was answered {got!r}, not 'PONG'"
        got = c.ask("ECHO hello world")
        assert got == "hello world", f"'ECHO hello world' was answered {got!r}"
        began = time.monotonic()
        got = c.ask("SLEEP 100")
        assert got == "SLEPT 100", f"'SLEEP 100' was answered {got!r}"
        complaint = slept_too_little(100, time.monotonic() - began)
        assert not complaint, complaint
        got = c.ask("QUIT")
        assert got == "BYE", f"QUIT was answered {got!r}, not 'BYE'"
        assert c.closed_by_server(), "after BYE the server should close the connection"


@contract(hint="split the input on LF, not on recv() calls; answer unknown words with 'ERR ...' and keep reading")
def test_protocol_pipelining_and_errors(server):
    """Several requests in one write are answered in order; an unknown one gets ERR and the connection goes on."""
    requests = ["PING", "ECHO a", "FOO", "ping"]
    with server.connect() as c:
        c.send("PING\r\nECHO a\nFOO\nping\n")
        got = []
        while len(got) < 4 and not (got and got[-1].startswith("no answer (")):  # the next would wait as long
            got.append(answer_or_why(c))
    missing = next((n for n, a in enumerate(got) if a.startswith("no answer (")), None)
    if missing is not None:
        why = ("the requests after the first in one read were lost: split the input on LF, not on recv() calls "
               "(one read may hold several requests, or part of one)" if missing < 2 else
               "an unknown command gets 'ERR ...', and the server goes on reading the connection")
        pytest.fail(f"4 requests sent in one write ({', '.join(requests)}) were answered {got[:missing]}, then "
                    f"{requests[missing]!r} got {got[missing]}: {why}", pytrace=False)
    assert got[0] == "PONG" and got[1] == "a", f"pipelined PING, ECHO a were answered {got[:2]}"
    assert got[2].startswith("ERR"), f"an unknown command 'FOO' was answered {got[2]!r}: it should start with 'ERR'"
    assert got[3] == "PONG", f"after the error, 'ping' (any case) was answered {got[3]!r}"


@contract(hint="a recv() of 0 bytes or ECONNRESET ends that client only; a write to a client that closed or reset "
               "fails (the first with ECONNRESET, the next with EPIPE and SIGPIPE): ignore SIGPIPE or send with "
               "MSG_NOSIGNAL")
def test_survives_rude_clients(server):
    """Clients that vanish mid-request, reset, or close before their answers are sent do not bring the server down."""
    with server.connect() as c:
        c.send("ECHO half a line")  # no LF, then gone
    with server.connect() as c:
        reset_on_close(c)
        c.send("SLEEP 50\nPING\nPING\n")  # reset before the answers: each write after the first raises SIGPIPE
    with server.connect() as c:
        c.send("PING\nSLEEP 100\nPING\n")  # then closed unread: the first answer draws an RST, the next write SIGPIPE
    time.sleep(0.4)
    if server.proc.poll() is not None:
        code = server.proc.returncode
        how = (f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}")
        extra = (": a write to a client that closed or reset raised SIGPIPE, whose default action ends the process"
                 if code == -signal.SIGPIPE else "")
        pytest.fail(f"after three rude clients the server was {how}{extra}", pytrace=False)
    for n in range(5):
        with server.connect() as c:
            got = c.ask("PING")
            assert got == "PONG", f"client {n + 1} after three rude ones was answered {got!r}"


@contract(hint="install a SIGTERM handler (or keep the default); a master forwards it to its children and waits "
               "for them; a command that is a shell script must exec the server")
def test_clean_sigterm(server):
    """SIGTERM stops the whole server within 5 s: no process it ever forked is left, adopted ones included."""
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
    server.proc.send_signal(signal.SIGTERM)
    complaint = still_running(server, 5)
    assert not complaint, complaint


# ---- processes -------------------------------------------------------------------------------

@contract(hint="a process (or thread) per connection, a pool of them, or an event loop: accept must not wait "
               "for a client to finish, and a client's half line must not hold up the others")
def test_concurrency(server):
    """A PING is answered at once while another client stalls in the middle of a line, and while another sleeps."""
    with server.connect(timeout=10) as stalled:
        stalled.send("ECHO hal")  # half a line, then nothing for a while
        time.sleep(0.1)
        ping_s = ping_seconds(server, timeout=2)
        assert ping_s < 0.75, (f"client B's PING took {'more than 2' if ping_s == float('inf') else f'{ping_s:.2f}'} s "
                               f"while client A had sent half a line: the server waited for A's line, so "
                               f"connections are not served concurrently")
        stalled.send("f\n")
        got = stalled.line()
        assert got == "half", f"'ECHO hal' then 'f' was answered {got!r}, not 'half'"
    ping_s, _, complaint = sleepers_and_a_ping(server, 1, 1500)
    assert not complaint, complaint
    assert ping_s < 0.75, (f"client B's PING took {ping_s:.2f} s while client A slept 1.5 s on another "
                           f"connection: connections are not served concurrently")


@contract(hint="one SIGCHLD may stand for several dead children: after it (a flag or a self-pipe), the main loop "
               "calls waitpid(-1, WNOHANG) until it returns 0 or fails with ECHILD")
def test_no_zombies(server, lab):
    """Children that exit at the same moment are all reaped: none is left a zombie."""
    if lab == "fork":
        clients = [server.connect(timeout=5) for _ in range(20)]
        try:
            for c in clients:
                c.send("PING\n")
            pongs = sum(line == "PONG" for line, _ in answers_within(clients, 3).values())
            held = held_connections(server, {port_of(c) for c in clients})
            by_children = {p for owners in held.values() for p in owners} - {server.pid}
            assert pongs == 20 and all(owners - {server.pid} for owners in held.values()), (
                f"of 20 clients connected at once, {pongs} got their PONG, and the server's side of their "
                f"connections was held by {sorted({p for o in held.values() for p in o})} (the command's process "
                f"is {server.pid}): lab 2 serves each connection in a child of its own")
            for c in clients:  # the 20 children exit within a millisecond or so of each other
                c.send("QUIT\n")
            answers_within(clients, 3)
        finally:
            for c in clients:
                c.close()
        what = f"{len(by_children)} children, one per connection, exited at the same moment (QUIT)"
        settle(lambda: not set(by_children) & set(server.processes()), timeout=3)
    else:
        workers = settle(lambda: len(server.workers()) >= 2 and server.workers(), timeout=5) or []
        assert len(workers) >= 2, f"the server has {len(workers)} workers; this lab needs a pool of at least 2"
        for w in workers[:2]:
            os.kill(w, signal.SIGKILL)
        what = f"workers {workers[0]} and {workers[1]} were killed at the same moment (SIGKILL)"
    settle(lambda: not server.zombies(), timeout=5)  # a busy machine may keep a master from its loop a while
    zombies = server.zombies()
    assert not zombies, (f"{len(zombies)} zombie process(es) (state Z in /proc) 5 s after {what}: signals of one "
                         f"kind do not queue, so one SIGCHLD stood for several children and nobody waited for the rest")


@contract(hint="close every accepted socket in the process that does not serve it (the parent after fork), and on "
               "every error path")
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


@contract(hint="fork the workers once at start; each worker accepts and serves connections itself, never forks "
               "per connection, and the master accepts nothing")
def test_fixed_pool(server):
    """The connections are served by at least 2 workers forked before the clients came, and the pool stays the same."""
    settle(lambda: len(server.workers()) >= 2, timeout=5)
    time.sleep(0.2)
    workers = sorted(server.workers())
    assert len(workers) >= 2, (f"the server has {len(workers)} child processes while no client is connected: a pool "
                               f"forks at least 2 workers before clients arrive (give it --workers 2)")
    forked_before = set(server.processes()) - {server.pid}
    clients, held = [], {}
    try:
        # Batches of 8 clients (96 at most), until two workers hold connections: a worker with many
        # threads (or a loop) may take a whole batch; whether the next goes to another is what a pool shows.
        while len(clients) < 96:
            batch = [server.connect(timeout=5) for _ in range(8)]
            for c in batch:
                c.send(f"ECHO {len(clients)}\n")
            clients += batch
            answers_within(batch, 3, quiet=0.3)
            held = held_connections(server, {port_of(c) for c in clients})
            if len({p for owners in held.values() for p in owners & forked_before}) >= 2 or \
                    any(not owners & forked_before for owners in held.values()):
                break
    finally:
        for c in clients:
            c.close()
    outside = sorted({p for owners in held.values() if not owners & forked_before for p in owners})
    by_workers = {p for owners in held.values() for p in owners & forked_before}
    strays = sum(not o & forked_before for o in held.values())
    assert held and not outside, (
        f"of {len(clients)} clients connected at once, the server accepted {len(held)}, and {strays} of those "
        f"connections {'was' if strays == 1 else 'were'} held only by "
        + (f"the command's own process {server.pid}" if outside == [server.pid] else
           f"processes that were not workers before the clients came ({outside}; the command's process is "
           f"{server.pid})") +
        ": a pool's workers, forked in advance, accept and serve the connections")
    waiting = len(clients) - len(held)
    assert len(by_workers) >= 2, (f"of {len(clients)} clients connected at once, the {len(held)} connections accepted "
                                  f"were all held by one worker ({sorted(by_workers)})"
                                  + (f" and the other {waiting} waited in the backlog" if waiting else "")
                                  + ": a pool serves them with several workers")
    for n in range(20):
        with server.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    after = sorted(server.workers())
    assert after == workers, (f"workers before 20 connections: {workers}, after: {after}: the pool should be the "
                              f"same processes, not a fork per connection")


@contract(hint="every worker takes connections from the shared listening socket; after poll/epoll says readable, "
               "accept may find nothing (EAGAIN): go back to waiting")
def test_burst_served_by_many(server):
    """50 clients that connect at once are all answered, and more than one worker holds their connections."""
    settle(lambda: len(server.workers()) >= 2, timeout=5)
    answers, errors, owners = [], [], set()

    def client(n):
        try:
            with server.connect(timeout=15) as c:
                got = c.ask("SLEEP 200")
                answers.append(got)
        except Exception as e:  # noqa: BLE001 - the message goes into the report
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
    began = time.monotonic()
    for t in threads:
        t.start()
    deadline = time.monotonic() + 15
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        owners |= holder_pids(server)
        time.sleep(0.05)
    took = time.monotonic() - began
    for t in threads:
        t.join(timeout=1)
    assert not errors and len(answers) == 50, (f"of 50 clients connecting at once, {len(answers)} were answered; "
                                               f"first errors: {errors[:3]}")
    wrong = [a for a in answers if a != "SLEPT 200"]
    assert not wrong, f"{len(wrong)} of 50 SLEEP 200 were answered wrongly, e.g. {wrong[0]!r}"
    assert len(owners) >= 2, (f"the 50 connections were all held by {len(owners)} process(es) {sorted(owners)} "
                              f"over {took:.1f} s: the burst was not served by many workers")


def idle_waits(server):
    """{what the idle workers are blocked in: [worker pids]}, after the pool has settled."""
    found = {}
    for pid in server.workers():
        for what in set(waits(pid).values()):
            found.setdefault(what, []).append(pid)
    return found


@contract(hint="set the listening socket non-blocking (O_NONBLOCK) before fork; a worker waits in poll/select/epoll "
               "for it to be readable (or in a lock while another worker does), then calls accept, and goes back "
               "to the wait on EAGAIN")
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
        polling = False
        for pid in workers:
            calls = set(waits(pid).values())
            polling |= bool(calls & POLL_FAMILY)
            if calls & ACCEPTS:
                found.setdefault(f"in {', '.join(sorted(calls & ACCEPTS))}", []).append(pid)
            elif calls and not calls & (POLL_FAMILY | LOCKS):
                found.setdefault(f"in {', '.join(sorted(calls))}, not in poll, select or epoll", []).append(pid)
        if workers and not polling and not found:
            problems.append("no worker waits in poll, select or epoll")
        for where, pids in found.items():
            problems.append(f"worker {pids[0]} waits {where}" if len(pids) == 1 else
                            f"workers {', '.join(map(str, pids))} wait {where}")
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


WORKERS_FOR_THE_HERD = 4


@contract(hint="wake one worker per connection: EPOLLEXCLUSIVE on each worker's epoll, SO_REUSEPORT (a listening "
               "socket per worker), or a lock that lets one worker at a time wait in poll and accept")
def test_few_workers_woken(server):
    """A connection wakes one or two of the idle workers waiting in poll or epoll, not all of them."""
    workers = sorted(settle(lambda: len(server.workers()) >= WORKERS_FOR_THE_HERD and server.workers(),
                            timeout=5) or server.workers())
    assert len(workers) >= WORKERS_FOR_THE_HERD, (
        f"the pool has {len(workers)} workers: start at least {WORKERS_FOR_THE_HERD} (--workers "
        f"{WORKERS_FOR_THE_HERD}), with fewer a herd and its cure look too much alike")
    for n in range(3):
        with server.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)

    def all_asleep():
        return all(proc.asleep(w) for w in workers)

    settle(all_asleep, timeout=1, interval=0.002)
    waiting = idle_waits(server)
    in_accept = sorted(p for what, pids in waiting.items() if what in ACCEPTS for p in pids)
    assert not in_accept, (f"idle workers {in_accept} wait in accept, which wakes one worker per connection: this lab "
                           f"asks for workers that wait in poll or epoll (which can watch more than the listening "
                           f"socket) and still wake only one")
    woken, busy = [], 0
    for n in range(20):
        busy += not settle(all_asleep, timeout=0.5, interval=0.002)
        before = {w: proc.voluntary_switches(w) for w in workers}
        with server.connect() as c:
            assert c.ask("PING") == "PONG", "a PING between two idle moments"
        settle(all_asleep, timeout=0.5, interval=0.002)
        woken.append(sum(proc.voluntary_switches(w) > before[w] for w in workers))
    mean, bound = sum(woken) / len(woken), len(workers) / 2 + 0.5
    note = f" ({busy} of them found a worker still awake)" if busy else ""
    assert mean <= bound, (
        f"a connection woke {mean:.1f} of the {len(workers)} idle workers on average, over {len(woken)} connections "
        f"one after another{note} (a worker counts as woken when its voluntary_ctxt_switches in "
        f"/proc/PID/task/*/status grew): the thundering herd, where at most {bound:g} may wake")


@contract(hint="M threads per process, each serving one connection: N processes x M threads connections at once")
def test_threads_serve_more_than_processes(server):
    """8 clients sleeping at once are served together, by fewer than 8 processes."""
    processes = len(server.processes())
    ping_s, total_s, complaint = sleepers_and_a_ping(server, 8, 1000)
    assert not complaint, complaint
    assert total_s < 1.8, (f"8 clients each sleeping 1 s took {total_s:.2f} s in all: they were not served at "
                           f"the same time")
    assert ping_s < 0.5, f"a PING beside 8 sleeping clients took {ping_s:.2f} s"
    assert processes < 8 and server.threads() > processes, (
        f"{processes} processes with {server.threads()} threads in all: this lab asks for threads, "
        f"fewer than 8 processes")


# ---- supervision ---------------------------------------------------------------------------

@contract(hint="the master waits for its children (waitpid(-1, WNOHANG) in a loop) and forks a new worker for each "
               "one that died")
def test_respawn(server):
    """Two workers killed with SIGKILL at the same moment are both replaced within 5 s; the server keeps answering."""
    workers = settle(lambda: len(server.workers()) >= 2 and server.workers(), timeout=5) or []
    assert len(workers) >= 2, f"the server has {len(workers)} workers; this lab needs a pool of at least 2"
    dead = workers[:2]
    for w in dead:
        os.kill(w, signal.SIGKILL)
    back = settle(lambda: len(server.workers()) >= len(workers) and not set(dead) & set(server.workers()), timeout=5)
    assert back, (f"after SIGKILL of workers {dead[0]} and {dead[1]} at the same moment, the server had "
                  f"{len(server.workers())} workers for 5 s (it had {len(workers)}): the dead were not replaced")
    for n in range(5):
        with server.connect() as c:
            assert c.ask("PING") == "PONG", "the server stopped answering after workers died"


@contract(hint="on SIGTERM stop accepting, let workers finish the request in hand, then exit; SIGKILL only after a "
               "timeout")
def test_graceful_stop(server):
    """SIGTERM during a request: that request is still answered, then the whole server exits."""
    with server.connect(timeout=10) as c:
        began = time.monotonic()  # before the send: the server may start sleeping before send() returns
        c.send("SLEEP 1000\n")
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        try:
            got = c.line()
        except (ConnectionError, OSError) as e:
            got = repr(e)
        took = time.monotonic() - began
    assert got == "SLEPT 1000", f"the request in flight at SIGTERM got {got!r} instead of 'SLEPT 1000'"
    complaint = slept_too_little(1000, took)
    assert not complaint, complaint
    complaint = still_running(server, 5)
    assert not complaint, complaint


# ---- optional: the toolkit's own servers -------------------------------------------------------

@contract(hint="STATS: accepts=, wakeups= and spurious= summed over every worker (docs/protocol.md)")
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

BUSIEST_SHARE = 0.5  # of the process's CPU under load, for the thread that runs the loop (Node.js: 80 to 95%,
                     # its other threads collect garbage; a thread per connection or a pool: 3 to 15%)


@contract(hint="one loop (select, poll, epoll, selectors, asyncio, Node.js) in the process you started: no fork, "
               "no thread per connection or per SLEEP (a runtime's own helper threads may exist, idle)")
def test_one_thread_serves_all(server):
    """One process, and one thread of it does the work: no thread per connection, none per SLEEP."""
    time.sleep(0.2)
    idle_threads = server.threads()
    holders = [server.connect(timeout=10) for _ in range(50)]
    try:
        for h in holders:
            h.send("SLEEP 700\n")
        time.sleep(0.3)
        processes, threads = server.processes(), server.threads()
    finally:
        for h in holders:
            h.close()
    assert len(processes) == 1, (f"while 50 clients held connections the server was {len(processes)} processes "
                                 f"(pids {processes}): lab 7 asks for one process")
    assert threads - idle_threads < 10, (
        f"while 50 clients each waited in a SLEEP the server ran {threads} threads, {threads - idle_threads} more than "
        f"idle: a thread per connection or per SLEEP, where one loop should hold them all")
    used, total, took, rounds = echo_load(server)
    busiest = max(used.values(), default=0)
    share = busiest / total if total else 1.0
    active = sorted((ticks for ticks in used.values() if ticks), reverse=True)
    assert share >= BUSIEST_SHARE, (
        f"under {rounds} rounds of pipelined ECHOs from 20 clients ({took:.1f} s), the busiest thread used "
        f"{share:.0%} of the process's {total / proc.TICKS:.2f} s of CPU ({len(active)} threads worked; from "
        f"/proc/PID/task/*/stat): the connections were served by several threads, not by one loop")


@contract(hint="SLEEP must be a timer the loop comes back to (a heap of deadlines, the select/epoll timeout), "
               "never a sleep() that blocks the loop")
def test_hundred_sleepers_at_once(server):
    """100 clients send SLEEP 1000 at the same moment; all are answered within 2.5 s, none before 1 s."""
    clients = [server.connect(timeout=5) for _ in range(100)]
    try:
        began = time.monotonic()
        for c in clients:
            c.send("SLEEP 1000\n")
        got = answers_within(clients, 5, since=began)
    finally:
        for c in clients:
            c.close()
    answers = [line for line, _ in got.values() if line is not None]
    took = max((s for _, s in got.values()), default=0.0)
    assert len(answers) == 100 and took < 2.5, (
        f"100 clients sent SLEEP 1000 at once: {len(answers)} were answered, the last after {took:.1f} s. The "
        f"sleeps held up other clients, as a sleep() in the loop (or a thread each for a few clients) does")
    wrong = [a for a in answers if a != "SLEPT 1000"]
    assert not wrong, f"{len(wrong)} of 100 SLEEP 1000 were answered wrongly, e.g. {wrong[0]!r}"
    first = min(s for _, s in got.values())
    assert first >= 1.0, f"the first of 100 SLEEP 1000 was answered after {first * 1000:.0f} ms: {SLEEP_RULE}"


@contract(hint="keep an input buffer per connection; answer only complete lines; never block in recv() "
               "waiting for the rest of one client's line")
def test_split_request_does_not_stall_others(server):
    """A request that arrives a byte at a time is answered once complete; meanwhile other clients are served."""
    with server.connect(timeout=5) as slow, server.connect(timeout=5) as other:
        slow.send("EC")
        began = time.monotonic()
        pong = answer_or_why(other, "PING")
        other_took = time.monotonic() - began
        assert pong == "PONG", (f"another client's PING got {pong!r} after {other_took:.1f} s while one client had "
                                f"sent half a request: the loop waited for the rest of that line"
                                if pong.startswith("no answer (") else f"another client's PING was answered {pong!r}")
        for piece in ("HO ", "sp", "lit", "\n"):
            time.sleep(0.05)
            slow.send(piece)
        got = slow.line()
    assert got == "split", f"'ECHO split' sent in five pieces was answered {got!r}"
    assert other_took < 0.5, (f"another client's PING took {other_took:.2f} s while one client had sent half a "
                              f"request: the loop waited for the rest of that line")


def bounded_for_a_client_that_never_reads(server, who, through, unbounded):
    """The backpressure contracts' checks (flood_without_reading): another client's PING is answered
    meanwhile, `who` ("the server", "the proxy") does not grow without bound, and serves on after.
    `through` (" through the proxy", or "") is where the requests went; `unbounded`, what `who` does
    without a limit."""
    sent, ping_s, grew_mib = flood_without_reading(server)
    assert ping_s < 1.0, (f"another client's PING took {duration(ping_s, 5)} s while one client sent{through} and "
                          f"never read")
    assert grew_mib < 32, (f"a client sent {sent / 2**20:.0f} MiB of ECHO requests{through} and read nothing: {who} "
                           f"grew by {grew_mib:.0f} MiB. Without a limit {unbounded}")
    time.sleep(0.2)
    with server.connect(timeout=5) as c:
        assert c.ask("PING") == "PONG", f"{who} serves on after the flood's client closed"


@contract(hint="bound each connection's output buffer: above a limit, stop reading that connection (stop watching "
               "it for input) until the client has read some; the kernel then pushes back on the sender")
def test_backpressure_for_a_client_that_never_reads(server):
    """A client pipelining ECHOs without reading does not grow the server's memory without bound or stall others."""
    bounded_for_a_client_that_never_reads(server, "the server", "", "its output buffer holds every answer")


# ---- lab 8: where shared state lives ---------------------------------------------------------

VALUE = re.compile(r"VALUE (\d+)")
SHARE_OF_ONE_THREAD = 0.75  # of the server's CPU during the INCRs: above it, one thread served them all
LESSON_OF_STATE = "The count must live where every worker sees it"


def counter_name(what):
    """A name of this grading's own: letters, digits and '.', as the protocol allows."""
    return f"{what}.{os.getpid()}.{time.monotonic_ns() % 10**9}"


def values_of(answers, request):
    """The counts in `answers` (VALUE n lines); fails the contract on any other answer."""
    wrong = [a for a in answers if not VALUE.fullmatch(a or "")]
    assert not wrong, (f"{len(wrong)} of {len(answers)} '{request}' were answered otherwise than 'VALUE n', "
                       f"e.g. {wrong[0]!r} (docs/protocol.md: INCR name answers VALUE and the new count)")
    return [int(VALUE.fullmatch(a).group(1)) for a in answers]


def all_answered(load):
    """Fails the contract unless every INCR of `load` was answered."""
    assert not load.errors and len(load.answers) == load.sent, (
        f"of {load.sent} INCRs from {load.clients} connections at once, {len(load.answers)} were answered within "
        f"30 s; first errors: {load.errors[:3]}")


def one_thread_served(server, load):
    """The complaint when one thread of one process served all of `load`'s INCRs, or None."""
    if len(load.holders) >= 2:
        return None  # the connections were held by several processes
    total = sum(load.cpu.values())
    busiest = max(load.cpu.values(), default=0)
    share = busiest / total if total else 1.0
    if share <= SHARE_OF_ONE_THREAD and sum(ns > 0 for ns in load.cpu.values()) >= 2:
        return None  # several threads of one process did the work
    processes = server.processes()
    where = (f"one process ({sorted(load.holders)[0]}) held every connection" if load.holders else
             f"the server is one process ({processes[0]})" if len(processes) == 1 else
             "no connection was seen held by a process of the server")
    return (f"the INCRs of {load.clients} connections at once were all served by one thread: {where}, and one of "
            f"its threads "
            f"used {share:.0%} of the CPU the server used meanwhile (/proc/PID/task/TID/schedstat): this lab asks "
            f"for several workers, processes or threads, serving at once and counting together; a single loop "
            f"counts right with a plain map, and shares nothing")


@contract(hint="one table for the whole server: in shared memory (a table mapped before fork, atomic increments or "
               "a lock shared by the processes), a map under a mutex (threads), or one owner of the counts that "
               "the workers ask; never a map per process or per thread")
def test_every_incr_counted_once(server):
    """INCRs from 16 connections at once, served by several workers, are each counted once: GET then says how many."""
    name = counter_name("hits")
    load = incr_load(server, name, lambda n: 5 + n % 16)  # uneven: workers that count apart end apart
    sent = load.sent
    all_answered(load)
    answered = values_of(load.answers, f"INCR {name}")
    gets = asked_at_once(server, f"GET {name}")
    counts = values_of(gets, f"GET {name}")
    if len(set(counts)) > 1:
        tally = ", ".join(f"{v} on {counts.count(v)}" for v in sorted(set(counts)))
        pytest.fail(f"{sent} INCRs were answered; then GET {name} on {len(gets)} connections at once answered "
                    f"{tally}: a different count on different connections, so each worker "
                    f"keeps a count of its own. {LESSON_OF_STATE}, and change in one step", pytrace=False)
    count = counts[0]
    if count == 0:
        said = f"VALUE {min(answered)}" + (f" to VALUE {max(answered)}" if max(answered) > min(answered) else " each")
        pytest.fail(f"{sent} INCRs were answered ({said}), then GET {name} answered 0 on {len(gets)} connections: "
                    f"the INCRs were answered but never stored. "
                    f"{LESSON_OF_STATE}, and INCR must change it", pytrace=False)
    assert count == sent, (
        f"{sent} INCRs were answered; then GET {name} answered {count} on each of {len(gets)} connections: "
        + (f"{sent - count} INCRs were lost. Two workers read the same count and both wrote count + 1, or each "
           f"counts in a table of its own and GET reached one of them" if count < sent else
           f"{count - sent} more than were sent: some INCRs were counted twice")
        + f". {LESSON_OF_STATE}, and change in one step (a lock, or an atomic increment)")
    complaint = one_thread_served(server, load)
    assert not complaint, complaint


@contract(hint="take the count INCR answers in the same step as the +1 (under the lock, or the atomic's return "
               "value), never by reading the counter again afterwards")
def test_each_incr_answers_its_own_count(server):
    """Each INCR is answered the count it made: INCRs from 16 connections at once get VALUE 1 to N, each once."""
    name = counter_name("tickets")
    load = incr_load(server, name, lambda n: 5)
    sent = load.sent
    all_answered(load)
    values = values_of(load.answers, f"INCR {name}")
    seen = collections.Counter(values)
    twice = sorted(v for v, n in seen.items() if n > 1)
    assert not twice, (
        f"of {sent} INCRs of a new name, {sum(seen[v] - 1 for v in twice)} were answered a count another INCR had "
        f"been answered too (VALUE {twice[0]} {seen[twice[0]]} times): two INCRs got the same count. Each INCR "
        f"answers the count it made, taken in the same step as its +1. {LESSON_OF_STATE}")
    missing = sorted(set(range(1, sent + 1)) - set(values))
    assert not missing, (f"{sent} INCRs of a new name were answered {min(values)} to {max(values)}, without "
                         f"VALUE {missing[0]}: they should be answered 1 to {sent}, each count once")


@contract(hint="GET reads the count and changes nothing; a name never counted is 0; each name has a count of its own")
def test_get_does_not_count_and_names_are_independent(server):
    """GET changes nothing, a name never counted is 0, and each name counts alone, seen alike from every connection."""
    a, b, fresh = counter_name("a"), counter_name("b"), counter_name("never")
    with server.connect() as c:
        got = c.ask(f"GET {fresh}")
        assert got == "VALUE 0", f"GET of a name never counted was answered {got!r}, not 'VALUE 0'"
        steps = [(a, 1), (b, 1), (a, 2), (a, 3), (b, 2)]
        for n, want in steps:
            got = c.ask(f"INCR {n}")
            assert got == f"VALUE {want}", (f"INCR {n}, {a} and {b} being counted in turn, was answered {got!r}, "
                                            f"not 'VALUE {want}': each name has a count of its own")
        for _ in range(5):
            got = c.ask(f"GET {a}")
            assert got == "VALUE 3", f"GET {a} after 3 INCRs (and GETs before it) was answered {got!r}, not 'VALUE 3'"
    answers = asked_at_once(server, f"GET {b}", clients=4)
    assert answers == ["VALUE 2"] * 4, (f"GET {b} after 2 INCRs, on 4 other connections at once, was answered "
                                        f"{answers}, not 'VALUE 2' on each. {LESSON_OF_STATE}")
    with server.connect() as c:
        got = c.ask(f"INCR {a}")
        assert got == "VALUE 4", f"INCR {a} after 3 INCRs and 5 GETs was answered {got!r}, not 'VALUE 4'"


@contract(hint="a name is 1 to 64 bytes of letters, digits, '_', '-', '.' and ':'; anything else gets 'ERR ...' and "
               "the connection goes on; the 1025th name gets 'ERR too many counters (at most 1024)', while the "
               "names already counted still count (docs/protocol.md)")
def test_counter_names_and_limit(server):
    """Bad names get ERR and the connection goes on; 1024 names are kept, a new one after them gets ERR."""
    longest = "n" * 63 + "."
    with server.connect(timeout=10) as c:
        for bad, why in (("", "no name"), ("x" * 65, "a name of 65 bytes"), ("a/b", "a name with '/'"),
                         ("a b", "a name with a space")):
            for verb in ("INCR", "GET"):
                got = c.ask(f"{verb} {bad}")
                assert got.startswith("ERR"), f"'{verb} {bad}' ({why}) was answered {got!r}: it should start with ERR"
        got = c.ask("PING")
        assert got == "PONG", f"after bad names, PING on the same connection was answered {got!r}"
        got = c.ask(f"INCR {longest}")
        assert got == "VALUE 1", f"INCR of a 64-byte name was answered {got!r}, not 'VALUE 1'"
        names = [f"n{i:04d}.{os.getpid()}" for i in range(1023)]  # with `longest`, 1024 names
        answers = []
        for i in range(0, len(names), 128):
            chunk = names[i:i + 128]
            c.send("".join(f"INCR {n}\n" for n in chunk))
            answers += [c.line() for _ in chunk]
        refused = [(n, a) for n, a in zip(names, answers) if a != "VALUE 1"]
        assert not refused, (f"of 1024 different names, the INCR of name {names.index(refused[0][0]) + 2} "
                             f"({refused[0][0]}) was answered {refused[0][1]!r}, not 'VALUE 1': a server keeps "
                             f"1024 names")
        got = c.ask(f"INCR one.too.many.{os.getpid()}")
        assert got.startswith("ERR"), (f"the INCR of a 1025th name was answered {got!r}: it should start with ERR "
                                       f"('ERR too many counters (at most 1024)'): the table is bounded")
        got = c.ask(f"INCR {names[0]}")
        assert got == "VALUE 2", (f"with 1024 names kept, INCR of one of them was answered {got!r}, not 'VALUE 2': "
                                  f"the limit refuses new names only")
        got = c.ask("PING")
        assert got == "PONG", f"after the limit's ERR, PING on the same connection was answered {got!r}"


# ---- lab 9: a proxy in front of the grader's backend -------------------------------------------

def backend_missed(backend, request, answered=True):
    """The complaint when the grader's backend never received `request`, or None."""
    if backend.saw(request):
        return None
    return ((f"the answer to {request!r} came, but " if answered else f"{request!r} was sent through the proxy, but ")
            + f"the grader's backend ({backend.address}) never received that request (it received "
            f"{backend.received} requests over {backend.connections} connections): the proxy answered by itself. "
            f"A proxy relays each request to its backend and the backend's answer back")


@contract(hint="relay each request line to the backend given as --backend HOST:PORT ({backend}) and its answer line "
               "back, in order, on a connection of the client's own or a pooled one; never answer in its place")
def test_relays_to_the_backend(server, backend):
    """PING, ECHO and SLEEP go through the proxy to the grader's backend, and its answers come back, to each client."""
    token = counter_name("relay")
    with server.connect(timeout=10) as c:
        got = c.ask("PING")
        assert got == "PONG", f"PING through the proxy was answered {got!r}, not 'PONG'"
        got = c.ask(f"ECHO {token}")
        assert got == token, f"'ECHO {token}' through the proxy was answered {got!r}"
        complaint = backend_missed(backend, f"ECHO {token}")
        assert not complaint, complaint
        long = token + "." + "x" * 6000  # longer than one read of a small buffer: framing by LF, not by read
        got = c.ask(f"ECHO {long}")
        assert got == long, (f"an ECHO of {len(long)} bytes through the proxy was answered with {len(got)} bytes: a "
                             f"line may take several reads, and so may its answer")
        began = time.monotonic()
        got = c.ask("SLEEP 200")
        assert got == "SLEPT 200", f"'SLEEP 200' through the proxy was answered {got!r}"
        complaint = slept_too_little(200, time.monotonic() - began) or backend_missed(backend, "SLEEP 200")
        assert not complaint, complaint
    clients = [server.connect(timeout=10) for _ in range(5)]
    try:
        for n, c in enumerate(clients):
            c.send(f"ECHO {token}.{n}\n")
        got = answers_within(clients, 5)
    finally:
        for c in clients:
            c.close()
    wrong = {n: line for n, (line, _) in got.items() if line != f"{token}.{n}"}
    assert len(got) == 5 and not wrong, (f"5 clients at once each sent 'ECHO {token}.N' with its own N; the answers "
                                         f"were {[got.get(n, (None,))[0] for n in range(5)]}: each client gets the "
                                         f"answers to its own requests")


@contract(hint="never wait for one backend answer with the whole proxy: an event loop watching clients and backend "
               "connections alike, or a thread (or process) per client")
def test_slow_backend_request_does_not_block_others(server):
    """While one client's SLEEP waits on the backend, another's PING goes through; 10 SLEEPs at once overlap."""
    with server.connect(timeout=10) as slow:
        began = time.monotonic()  # before the send: the sleep may begin before send() returns
        slow.send("SLEEP 1500\n")
        time.sleep(0.1)
        ping_s = ping_seconds(server, timeout=3)
        assert ping_s < 0.75, (f"client B's PING took {duration(ping_s, 3)} s while client A's SLEEP 1500 waited on "
                               f"the backend: the proxy waited for one "
                               f"backend answer before serving another client")
        got = slow.line()
        complaint = f"'SLEEP 1500' was answered {got!r}" if got != "SLEPT 1500" else \
            slept_too_little(1500, time.monotonic() - began)
        assert not complaint, complaint
    ping_s, total_s, complaint = sleepers_and_a_ping(server, 10, 1000)
    assert not complaint, complaint
    assert total_s < 2.5 and ping_s < 0.75, (
        f"10 clients sent SLEEP 1000 at once through the proxy: the last was answered after {total_s:.2f} s, and a "
        f"PING beside them after {ping_s:.2f} s: the proxy relayed them one after another, where they should wait "
        f"on the backend side by side")


@contract(hint="bound each buffer: with a client's answers unsent above a limit, stop reading its backend "
               "connection; with requests unsent to the backend above a limit, stop reading the client. The "
               "kernel then pushes back on both sides")
def test_backpressure_through_the_proxy(server):
    """A client pipelining ECHOs without reading does not grow the proxy's memory without bound or stall others."""
    bounded_for_a_client_that_never_reads(server, "the proxy", " through the proxy",
                                          "it reads the backend's answers as fast as they come and holds them all "
                                          "for a client that never reads")


def answer_or_why(client, request=None):
    """The next answer line (after sending `request`), or why there was none, in words."""
    try:
        return client.ask(request) if request else client.line()
    except TimeoutError:
        return "no answer (none within the client's timeout)"
    except OSError:
        return "no answer (the connection was closed)"


BACK_WITHIN_S = 12  # after the backend returns (nginx leaves a failed server alone for fail_timeout, 10 s)


@contract(hint="a backend that closes or refuses is an answer too: 'ERR ...' to each request it left unanswered "
               "and to each new one while it is down; the proxy itself goes on, and connects again later")
def test_dead_backend_gets_an_error(server, backend):
    """A request in flight when the backend dies, and one while it is down, get ERR; the proxy lives and recovers."""
    with server.connect(timeout=10) as c:
        assert c.ask("PING") == "PONG", "PING through the proxy before the backend died"
    with server.connect(timeout=10) as c:
        c.send("SLEEP 3000\n")
        settle(lambda: backend.saw("SLEEP 3000"), timeout=2)  # backend_missed looks again
        complaint = backend_missed(backend, "SLEEP 3000", answered=False)
        assert not complaint, complaint
        backend.stop()
        began = time.monotonic()
        got = answer_or_why(c)
    took = time.monotonic() - began
    assert got.startswith("ERR") and took < 2.5, (
        f"a SLEEP 3000 in flight when the backend died (it closed every connection and stopped listening) got "
        f"{got!r} after {took:.1f} s: the client should get 'ERR ...' as soon as the backend's connection closes")
    with server.connect(timeout=10) as c:
        got = answer_or_why(c, "PING")
    assert got.startswith("ERR"), (f"with the backend down (a connect is refused), a new client's PING got {got!r}: "
                                   f"it should get 'ERR ...', and the proxy go on")
    backend.start()

    def through():
        try:
            with server.connect(timeout=2) as c:
                return c.ask("PING") == "PONG"
        except (TimeoutError, OSError):
            return False

    back = settle(through, timeout=BACK_WITHIN_S, interval=0.25)
    assert back, (f"{BACK_WITHIN_S} s after the backend came back (listening again on {backend.address}), PING "
                  f"through the proxy still did not get PONG"
                  + (f": the proxy exited (status {server.proc.returncode})" if server.proc.poll() is not None else
                     ": the proxy must try the backend again"))


@contract(hint="when a client leaves, close (or give back to a pool that watches it) its backend connection; when a "
               "backend closes, close the proxy's side at once: a socket whose peer has closed waits in CLOSE_WAIT "
               "until its owner calls close(). Answer what came before a client's FIN (shutdown) first")
def test_nothing_left_in_close_wait(server, backend):
    """After rude clients and a backend that closes its connections, no socket of the proxy waits in CLOSE_WAIT."""
    keepers = [server.connect(timeout=10) for _ in range(4)]
    try:
        for c in keepers:
            assert c.ask("PING") == "PONG", "PING through the proxy"
        with server.connect() as c:
            c.send("ECHO half a line")  # no LF, then gone
        with server.connect() as c:
            reset_on_close(c)
            c.send("SLEEP 50\nPING\n")  # reset before the answers
        with server.connect() as c:
            c.send("SLEEP 300\nPING\n")  # closed before reading
        with server.connect(timeout=5) as c:
            c.send("PING\n")
            c.sock.shutdown(socket.SHUT_WR)  # as nc -N does: a FIN after the request
            got = answer_or_why(c)
        assert got == "PONG", (f"a client that sent PING and then shut down its sending side (shutdown(SHUT_WR), as "
                               f"`nc -N` does) got {got!r}: a proxy relays what came before the FIN, then closes")
    finally:
        for c in keepers:
            c.close()
    time.sleep(0.5)  # the SLEEP 300 ends
    held = backend.open_connections()
    backend.close_connections()
    ports = {server.port, backend.port}
    settle(lambda: not close_wait_sockets(server, ports), timeout=3)
    left = close_wait_sockets(server, ports)
    assert not left, (
        f"{sum(left.values())} socket(s) of the proxy (held by pid {', '.join(map(str, sorted(left)))}) were still in "
        f"CLOSE_WAIT 3 s after its clients left, some rudely, and the backend closed its {held} connection(s) "
        f"(ss -tan state close-wait): their peer closed, and the proxy never closed its side")
    with server.connect(timeout=5) as c:
        got = c.ask("PING")
        assert got == "PONG", f"after the backend closed its connections, PING through the proxy got {got!r}"
