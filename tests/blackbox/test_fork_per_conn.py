"""02_fork_per_conn: a child per connection, reaped on SIGCHLD."""
import signal
import threading
import time

from harness import who_on_open_connections, children_of, group_members, kv, ping_behind_busy_connections, wait_until, zombies_of


def test_each_connection_gets_its_own_child(start):
    server = start("fork_per_conn")
    whos = who_on_open_connections(server, 3)
    pids = {int(w["pid"]) for w in whos}
    assert len(pids) == 3, f"3 open connections were served by pids {sorted(pids)}: each needs its own child"
    assert server.pid not in pids, "the parent must not serve connections"
    assert all(int(w["ppid"]) == server.pid for w in whos), f"every child's parent is the server: {whos}"


def timed_sleeps(server, count, ms):
    """Sends SLEEP ms on `count` connections at once; returns each answer's time since the start."""
    done = [None] * count
    began = time.monotonic()

    def one(i):
        with server.connect(timeout=10) as c:
            assert c.ask(f"SLEEP {ms}") == f"SLEPT {ms}"
            done[i] = time.monotonic() - began

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    return done


def test_two_slow_clients_are_served_in_parallel(start):
    server = start("fork_per_conn")
    done = timed_sleeps(server, 2, 1000)
    assert None not in done, f"a client got no answer: {done}"
    assert max(done) < 1.8, (
        f"two SLEEP 1000 on two connections took {max(done):.2f} s in all: "
        "with a child per connection they should take about 1 s, not 2")


def test_no_zombies_after_100_connections(start):
    server = start("fork_per_conn")
    for i in range(100):
        with server.connect() as c:
            assert c.ask("PING") == "PONG", f"connection {i}"
    left = wait_until(lambda: not children_of(server.pid) and not zombies_of(server.pid), timeout=5)
    assert left, (f"after 100 closed connections the server still has children {children_of(server.pid)} "
                  f"and zombies {zombies_of(server.pid)}: every child must be reaped")
    stats = kv(server.connect().ask("STATS"))
    assert int(stats["connections"]) == 101 and int(stats["requests"]) == 100, stats


def test_max_children_makes_the_next_client_wait(start):
    server = start("fork_per_conn", "--max-children", "2")
    answered, slept = ping_behind_busy_connections(server, busy=2)
    assert slept == ["SLEPT 1000"] * 2
    assert answered >= 0.9, (
        f"the third client was answered after {answered:.2f} s while 2 children (the --max-children limit) "
        "were busy for 1 s: it must wait until one exits")


def test_sigterm_finishes_requests_in_flight_and_leaves_no_process(start):
    server = start("fork_per_conn")
    with server.connect(timeout=10) as c:
        c.send("SLEEP 800\n")
        wait_until(lambda: children_of(server.pid), timeout=2)
        server.signal(signal.SIGTERM)
        assert c.line() == "SLEPT 800", "a request in flight must complete during a graceful stop"
    assert server.wait(timeout=10) == 0, server.stderr()
    assert wait_until(lambda: not group_members(server.pid), timeout=3), \
        f"processes left after SIGTERM: {group_members(server.pid)}"
    assert "fork_per_conn stopped: 1 connections, 1 requests" in server.stderr()


def test_graceful_timeout_kills_stragglers(start):
    server = start("fork_per_conn", "--graceful-timeout", "1")
    with server.connect(timeout=10) as c:
        c.send("SLEEP 10000\n")
        wait_until(lambda: children_of(server.pid), timeout=2)
        began = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(timeout=8) == 0
        took = time.monotonic() - began
    assert took < 4, f"a stop with --graceful-timeout 1 took {took:.1f} s: the busy child should get SIGKILL"
    assert "SIGKILL" in server.stderr()
