"""Every way a worker leaves ends in a clean exit, at once; and the master signals its own children only.

A worker leaves on a HUP (the rolling restart), on TTOU, when the dynamic
pool shrinks, after --max-requests, on --request-timeout, and at a stop. On
an idle server each of these must end in the worker's clean exit within a
second, whatever it was blocked in when it was asked: accept(), a lock
around accept, poll, epoll, a channel. The master asks with SIGTERM, again
every 500 ms (children.hpp), and a worker waiting for lock-mutex's lock
looks at the stop flag between slices of its wait (lock.cpp).

The pids the master signals come from its own table, never from the
scoreboard that every worker can write (Apache's CVE-2007-3304).
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from harness import Client, HOST, children_of, wait_until, wchan

STRATEGIES = ["blocking", "poll", "epoll", "epoll-exclusive", "lock-fcntl", "lock-mutex", "reuseport", "pass-fd"]
EVENT_STRATEGIES = ["epoll", "epoll-exclusive", "reuseport", "accept-mutex"]
CASES = [(model, s) for model in ("prefork", "prefork_threads") for s in STRATEGIES] + \
        [("prefork_event_loop", s) for s in EVENT_STRATEGIES]

# A leaving worker must be gone this soon after the master asked it (it is
# idle; the trace's clock is the master's). A second, and the room a busy
# machine needs to schedule the two processes.
CLEAN_EXIT_S = 1.5

TRACE = re.compile(r"^\[\s*([\d.]+)\] pid \d+ tid \d+ master: (.*)$", re.M)


def master_events(stderr):
    """[(seconds, what the master traced)] in order."""
    return [(float(t), what) for t, what in TRACE.findall(stderr)]


def departures(stderr):
    """{pid: (seconds from its retirement to its reap, how it ended)} for every worker the master retired."""
    asked, gone = {}, {}
    for t, what in master_events(stderr):
        if m := re.match(r"retiring worker \d+ pid (\d+)", what):
            asked.setdefault(int(m.group(1)), t)
        elif m := re.match(r"stopping (\d+) children: SIGTERM", what):
            for pid in [p for p in spawned(stderr) if p not in gone]:
                asked.setdefault(pid, t)
        elif m := re.match(r"reaped pid (\d+): (.*)", what):
            gone[int(m.group(1))] = (t, m.group(2))
    return {pid: (gone[pid][0] - t, gone[pid][1]) for pid, t in asked.items() if pid in gone}


def spawned(stderr):
    return [int(p) for p in re.findall(r"master: spawned worker \d+ pid (\d+)", stderr)]


def threads_for(model, strategy):
    if model != "prefork_threads":
        return []
    return ["--threads", "2", "--thread-accept", "mutex" if strategy == "lock-fcntl" else "each"]


def assert_left_cleanly(server, model, strategy, way, pids):
    slow = {}
    for pid in pids:
        took, how = departures(server.stderr()).get(pid, (None, None))
        if took is None or took > CLEAN_EXIT_S or how != "exited with status 0":
            slow[pid] = "still running" if took is None else f"{how} {took:.2f} s after it was asked"
    assert not slow, (f"{model} --accept {strategy}: workers that left by {way} did not exit cleanly within "
                      f"{CLEAN_EXIT_S} s on an idle server: {slow}\n" + server.stderr()[-2500:])


@pytest.mark.parametrize("model,strategy", CASES)
def test_every_way_a_worker_leaves_an_idle_server_is_a_clean_exit_at_once(start, model, strategy):
    # --graceful-timeout 8: a worker that does not leave by itself stays 8 s
    # and is then SIGKILLed, which the test names.
    server = start(model, "--accept", strategy, "--pool", "dynamic", "--start-workers", "3", "--min-spare", "0",
                   "--max-spare", "2", "--max-workers", "4", "--max-requests", "6", "--max-requests-jitter", "0",
                   "--graceful-timeout", "8", "--trace", *threads_for(model, strategy))

    def retired_since(mark):
        return [int(p) for p in re.findall(r"master: retiring worker \d+ pid (\d+)", server.stderr()[mark:])]

    # The dynamic pool: 3 idle workers, more than --max-spare 2: one is retired within a second or two.
    assert wait_until(lambda: retired_since(0), 5), f"the pool did not shrink:\n{server.stderr()[-1500:]}"
    mark = len(server.stderr())
    time.sleep(1.6)
    assert_left_cleanly(server, model, strategy, "the dynamic pool shrinking", retired_since(0))

    # --max-requests 6: twelve requests on two workers bring one of them to its limit.
    for n in range(14):
        with Client(HOST, server.port) as c:
            assert c.ask(f"ECHO {n}") == str(n)
    assert wait_until(lambda: "(--max-requests)" in server.stderr()[mark:], 5), "no worker reached --max-requests"
    time.sleep(1.6)
    assert_left_cleanly(server, model, strategy, "--max-requests", retired_since(mark))

    for sig, way in [(signal.SIGTTOU, "TTOU"), (signal.SIGHUP, "a HUP")]:
        mark = len(server.stderr())
        server.signal(sig)
        # A HUP retires the old workers once the new ones are ready: slow on a busy sanitizer build.
        assert wait_until(lambda: retired_since(mark), 15), f"{way} retired nobody:\n{server.stderr()[-1500:]}"
        time.sleep(1.6)
        assert_left_cleanly(server, model, strategy, way, retired_since(mark))

    live = children_of(server.pid)
    assert server.stop(timeout=10) == 0
    assert_left_cleanly(server, model, strategy, "the stop", live)


@pytest.mark.parametrize("model,strategy", [("prefork", "blocking"), ("prefork_threads", "blocking")])
def test_a_worker_stuck_past_request_timeout_is_gone_within_its_grace(start, model, strategy):
    # Its request cannot finish (a SLEEP finishes even when a signal comes):
    # the master gives it 1 s, then SIGKILL. It must not stay longer. (06's
    # loop is busy only while a WORK runs on it, and the largest WORK is too
    # short on a fast CPU to be sure to outlast the timeout; the master's
    # side of it is the same code.)
    server = start(model, "--accept", strategy, "--workers", "2", "--request-timeout", "1", "--trace",
                   *threads_for(model, strategy))
    assert wait_until(lambda: len(children_of(server.pid)) == 2, 10)
    with Client(HOST, server.port, timeout=10) as c:
        c.send("SLEEP 20000\n")
        assert wait_until(lambda: "busy on one request for over --request-timeout" in server.stderr(), 5), \
            "--request-timeout 1 did not see a 20 s request"
        time.sleep(2.5)
    pids = [int(p) for p in re.findall(r"master: retiring worker \d+ pid (\d+)", server.stderr())]
    gone = departures(server.stderr())
    late = {p: gone.get(p) for p in pids if p not in gone or gone[p][0] > 1.0 + CLEAN_EXIT_S}
    assert pids and not late, f"{model}: a worker past --request-timeout stayed longer than its 1 s grace: {late}"


def test_a_lock_mutex_worker_waiting_for_the_lock_leaves_when_asked(start):
    # The worker that waits for lock-mutex's lock (in pthread_mutex_lock:
    # no signal wakes it) while the other holds it in accept(), with no
    # client coming. It was retired, and stayed until its SIGKILL.
    server = start("prefork", "--accept", "lock-mutex", "--workers", "2", "--graceful-timeout", "8", "--trace")
    assert wait_until(lambda: len(spawned(server.stderr())) == 2 and len(children_of(server.pid)) == 2, 10)
    slot0 = spawned(server.stderr())[0]  # TTOU retires the first idle slot (pool.cpp's pick_to_retire)
    for _ in range(20):  # each connection passes the lock on: go until worker 0 is the one waiting for it
        if wait_until(lambda: "futex" in wchan(slot0) and all(wchan(p) for p in children_of(server.pid)), 0.5):
            break
        with Client(HOST, server.port) as c:
            assert c.ask("PING") == "PONG"
    assert "futex" in wchan(slot0), f"worker 0 was never seen waiting for the lock: {wchan(slot0)!r}"
    server.signal(signal.SIGTTOU)
    assert wait_until(lambda: slot0 in departures(server.stderr()), CLEAN_EXIT_S + 1), \
        f"worker 0 (pid {slot0}), waiting for the accept lock when it was retired, is still there " \
        f"{CLEAN_EXIT_S + 1} s later: a lock waiter does not see its SIGTERM"
    took, how = departures(server.stderr())[slot0]
    assert how == "exited with status 0" and took < CLEAN_EXIT_S, f"worker 0 {how} {took:.2f} s after it was asked"


def test_a_sigterm_that_lands_just_before_accept_is_sent_again(start):
    # accept4:slow: each accept4() waits 300 ms before the real call, the
    # window between a worker's look at the stop flag and its blocking
    # accept. A SIGTERM that lands there is spent; only the master sending
    # it again gets the worker out of accept().
    server = start("prefork", "--accept", "blocking", "--workers", "2", "--graceful-timeout", "8", "--trace",
                   faults="accept4:slow")
    assert wait_until(lambda: len(spawned(server.stderr())) == 2 and len(children_of(server.pid)) == 2, 10)
    slot0 = spawned(server.stderr())[0]
    for _ in range(20):  # a connection served by worker 0, which then goes back to accept()
        with Client(HOST, server.port) as c:
            served_by_0 = c.ask("WHO").split()[-2] == "worker=0"
            c.ask("QUIT")
        if served_by_0 and wait_until(lambda: "nanosleep" in wchan(slot0), 0.3, interval=0.005):
            break
    assert "nanosleep" in wchan(slot0), f"worker 0 was never caught between its stop check and accept(): " \
                                        f"{wchan(slot0)!r}"
    server.signal(signal.SIGTTOU)  # worker 0: idle, the first slot
    assert wait_until(lambda: slot0 in departures(server.stderr()), CLEAN_EXIT_S + 1), \
        f"worker 0 (pid {slot0}) got its SIGTERM just before accept() and is still there " \
        f"{CLEAN_EXIT_S + 1} s later: the master sent it once"
    took, how = departures(server.stderr())[slot0]
    assert how == "exited with status 0" and took < CLEAN_EXIT_S, f"worker 0 {how} {took:.2f} s after it was asked"


@pytest.mark.parametrize("model", ["prefork", "prefork_event_loop", "event_loop_threads"])
def test_a_worker_woken_for_a_connection_as_it_is_stopped_serves_it(start, model):
    # epoll_wait:slow: a worker's epoll_wait returns its events 1 s late. With
    # EPOLLEXCLUSIVE the kernel wakes one worker for a connection; the stop
    # comes while that worker holds the wakeup. If it left without accepting,
    # no other worker would be woken for the connection, which the stop then
    # drops with the listening socket.
    # The same must hold for the loops of 06 (processes) and 07 (threads).
    # They keep it by design: the kernel gives an exclusive wakeup only to an
    # epoll_wait that sleeps (ep_poll_callback), which returns the listener's
    # event in that batch, and a loop dispatches listeners before the stop.
    size = ["--threads", "2"] if model == "event_loop_threads" else ["--workers", "2"]
    server = start(model, "--accept", "epoll-exclusive", *size, "--trace", faults="epoll_wait:slow")
    def waiters():  # 07: its threads (tids are /proc entries too); else the worker processes
        tasks = [int(t) for t in os.listdir(f"/proc/{server.pid}/task")] if model == "event_loop_threads" else \
            children_of(server.pid)
        return [t for t in tasks if "epoll" in wchan(t)]

    assert wait_until(lambda: len(waiters()) >= 2, 10), "the workers never all slept in epoll_wait"
    with Client(HOST, server.port, timeout=10) as c:
        c.send("PING\n")
        time.sleep(0.3)  # a worker has the wakeup, and sleeps in the injected delay
        server.signal(signal.SIGTERM)
        try:
            answer = c.line()
        except OSError as e:  # the connection dropped with the listening socket: reset
            answer = type(e).__name__
    assert answer == "PONG", (
        f"a connection whose wakeup came just before a stop was answered {answer!r}: the woken worker left it "
        "in the backlog, and EPOLLEXCLUSIVE woke no other worker for it")
    assert server.stop(timeout=10) == 0


# ---- the master trusts only itself -----------------------------------------------------------

def in_namespace_skip():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare(1): a wrong kill(-1) must stay inside a PID namespace"
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=10)
    return None if probe.returncode == 0 else f"unshare --pid failed here: {probe.stderr.decode().strip()}"


def descendants(root):
    found, frontier = [], [root]
    while frontier:
        frontier = [p for parent in frontier for p in children_of(parent)]
        found += frontier
    return found


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


@pytest.mark.parametrize("model", ["prefork", "prefork_event_loop"])
def test_the_master_signals_only_the_children_it_forked(bin_dir, model):
    # Every worker writes -1, 0 and a stranger's pid over the pids of the
    # scoreboard (--debug-forge-pids), as a worker gone wrong could. A master
    # that signalled what it reads there would kill(-1, ...): every process
    # it may signal; kill(0, ...): its own process group, itself included;
    # and kill the stranger. All of it inside a PID namespace of its own, so
    # that a master with that bug kills nothing outside it.
    skip = in_namespace_skip()
    if skip:
        pytest.skip(skip)
    script = (f"sleep 300 & echo stranger $!; {bin_dir / model} --port 0 --workers 3 --graceful-timeout 5 "
              f"--debug-forge-pids -1,0,$!; wait")
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--", "sh", "-c", script],
                            stdout=subprocess.PIPE, stderr=log, start_new_session=True, text=True)
    try:
        out = [proc.stdout.readline(), proc.stdout.readline()]
        port = int(re.search(r"listening on \S+:(\d+)", out[1]).group(1))

        def ours():
            return [p for p in descendants(proc.pid) if comm(p) == model[:15]]  # comm: 15 characters

        assert wait_until(lambda: len(ours()) == 4, 10), out
        stranger = next(p for p in descendants(proc.pid) if comm(p) == "sleep")
        master = next(p for p in ours() if children_of(p))

        def nothing_wrong(after):
            time.sleep(0.5)
            assert comm(stranger) == "sleep", (
                f"after {after}, the stranger (pid {stranger}, forged into the scoreboard) is gone: the master "
                f"signalled a pid it read from memory its workers can write")
            assert comm(master) == model[:15], \
                f"after {after}, the master is gone: it signalled its own group (pid 0)"
            with Client(HOST, port) as c:
                assert c.ask("PING") == "PONG", f"after {after}, the server no longer answers"

        for sig, after in [(signal.SIGTTOU, "a TTOU retired the worker of a slot forged -1"),
                           (signal.SIGTTOU, "a TTOU retired the worker of a slot forged 0"),
                           (signal.SIGHUP, "a HUP retired the rest")]:
            os.kill(master, sig)
            nothing_wrong(after)
        os.kill(master, signal.SIGTERM)
        assert wait_until(lambda: comm(master) is None, 10), "the master did not stop"
        assert comm(stranger) == "sleep", f"the stop killed the stranger (pid {stranger}) forged into the scoreboard"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
