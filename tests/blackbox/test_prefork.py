"""03_prefork: a supervising master, N workers, a shared scoreboard."""
import os
import signal
import time

from harness import all_asleep, children_of, echo_from_clients, group_members, kv, ping_behind_busy_connections, proc_stat, wait_until, wchan


def start_prefork(start, workers, *args):
    server = start("prefork", "--workers", str(workers), *args)
    found = wait_until(lambda: len(children_of(server.pid)) == workers, timeout=10)
    assert found, f"--workers {workers} started {len(children_of(server.pid))} workers"
    return server


def test_exactly_n_workers_and_who_is_one_of_them(start):
    server = start_prefork(start, 3)
    workers = children_of(server.pid)
    assert len(workers) == 3
    with server.connect() as c:
        who = kv(c.ask("WHO"))
    assert int(who["pid"]) in workers, f"WHO answered pid {who['pid']}, not one of the workers {workers}"
    assert int(who["ppid"]) == server.pid and who["worker"] in {"0", "1", "2"}, who


def test_n_busy_workers_make_client_n_plus_1_wait(start):
    server = start_prefork(start, 2)
    answered, slept = ping_behind_busy_connections(server, busy=2)
    assert slept == ["SLEPT 1000"] * 2, "the 2 workers serve their 2 clients in parallel"
    assert answered >= 0.9, (
        f"client 3 was answered after {answered:.2f} s while both workers were busy for 1 s: "
        "with 2 workers it must wait for a free one")


def test_killed_worker_is_replaced_and_service_continues(start):
    server = start_prefork(start, 2)
    before = set(children_of(server.pid))
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced():  # the victim gone, and a worker that was not there before in its place
        now = set(children_of(server.pid))
        return len(now) == 2 and victim not in now and now - before

    assert wait_until(replaced, timeout=5), f"after kill -9 of worker {victim} the workers are {children_of(server.pid)}"
    for _ in range(5):
        with server.connect() as c:
            assert c.ask("PING") == "PONG"
    # The master says so before it forks the replacement; waited for all the
    # same, with what it wrote if it never does (CI once read an empty stderr
    # here, under ASan, with the replacement already serving; not reproduced
    # in 20 runs under load).
    said = f"(pid {victim}) killed by SIGKILL; replacing it"
    assert wait_until(lambda: said in server.stderr(), timeout=5), (
        f"the master never said {said!r}: stderr {server.stderr()!r}, workers now {children_of(server.pid)} "
        f"(before the kill {sorted(before)})")


def test_stats_totals_equal_what_was_sent(start):
    server = start_prefork(start, 3)
    # Several workers serve only if several wait: a worker still starting up
    # (slow under ASan on a busy machine) is not in accept() yet, and CI once
    # saw one worker take all 30 connections. The kernel then hands the
    # connections to the waiters in turn (an exclusive wait queue, FIFO).
    workers = children_of(server.pid)
    assert wait_until(lambda: all_asleep(workers, "accept"), timeout=10), (
        f"the workers never all waited in accept(): {[wchan(w) for w in workers]}")
    pids = set()
    for _ in range(30):
        with server.connect() as c:
            pids.add(kv(c.ask("WHO"))["pid"])
            assert c.ask("PING") == "PONG"
    with server.connect() as c:
        stats = kv(c.ask("STATS"))
    assert len(pids) >= 2, f"30 connections were all served by {pids}: expected several workers"
    assert stats["workers"] == "3", stats
    assert int(stats["connections"]) == 31, f"31 connections were made; STATS summed {stats['connections']}"
    assert int(stats["requests"]) == 60, f"60 requests were answered before STATS; STATS summed {stats['requests']}"


def test_stats_survive_a_worker_being_replaced(start):
    server = start_prefork(start, 1)
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
        victim = int(kv(c.ask("WHO"))["pid"])
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: children_of(server.pid) and victim not in children_of(server.pid), timeout=10)
    with server.connect() as c:
        stats = kv(c.ask("STATS"))
    assert int(stats["connections"]) == 2 and int(stats["requests"]) == 2, \
        f"a replaced worker's counts must stay in the totals: {stats}"


def test_sigusr1_prints_the_table_and_keeps_serving(start):
    server = start_prefork(start, 2)
    with server.connect(timeout=10) as c:
        c.send("SLEEP 500\n")
        time.sleep(0.1)
        server.signal(signal.SIGUSR1)
        assert c.line() == "SLEPT 500", "SIGUSR1 must not disturb a request in flight"
        assert c.ask("PING") == "PONG"
    assert wait_until(lambda: "accepts  requests" in server.stderr(), timeout=10), server.stderr()
    assert server.alive() and len(children_of(server.pid)) == 2


def test_sigterm_is_graceful_and_leaves_no_process(start):
    server = start_prefork(start, 2)
    with server.connect(timeout=10) as busy, server.connect() as idle:
        assert idle.ask("PING") == "PONG"
        busy.send("SLEEP 800\n")
        time.sleep(0.1)
        server.signal(signal.SIGTERM)
        assert busy.line() == "SLEPT 800", "the request in progress completes"
        assert idle.closed_by_server(), "idle connections are closed"
    assert server.wait(timeout=10) == 0, server.stderr()
    assert not group_members(server.pid), f"left behind: {group_members(server.pid)}"
    err = server.stderr()
    assert "accepts  requests" in err and "prefork stopped: 2 connections, 2 requests" in err, err


def test_sigkill_of_the_master_leaves_no_worker(start):
    server = start_prefork(start, 3)
    workers = children_of(server.pid)
    os.kill(server.pid, signal.SIGKILL)
    gone = wait_until(lambda: not any(_alive(w) for w in workers), timeout=1.0)
    assert gone, f"workers {[w for w in workers if _alive(w)]} outlived their master by more than 1 s"


def _alive(pid):
    stat = proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def test_concurrent_clients_over_several_workers(start):
    server = start_prefork(start, 2)
    errors = echo_from_clients(server, clients=4, per_client=20)
    assert not errors, errors
