"""07_event_loop_threads: an event loop per thread in one process, the three ways connections
reach them, and where INCR's counters live."""
import collections
import os
import re
import signal
import threading
import time

import pytest

from harness import counts_read, incr_from_clients, kv, wait_until, wchan

ACCEPTS = ["main-reactor", "reuseport", "epoll-exclusive"]


def loop_tids(server):
    """The tids of the server's loops, from its STATUS rows."""
    with server.connect() as c:
        header = c.ask("STATUS")
        rows = [kv(c.line()) for _ in range(int(kv(header[len("STATUS "):])["rows"]))]
    return [int(r["tid"]) for r in rows]


def who_many(server, count):
    """WHO on `count` connections made one after another: {worker: connections}."""
    seen = collections.Counter()
    for _ in range(count):
        with server.connect() as c:
            seen[kv(c.ask("WHO"))["worker"]] += 1
    return seen


@pytest.mark.parametrize("accept", ACCEPTS)
def test_every_loop_serves_and_a_hundred_sleepers_are_answered_together(start, accept):
    server = start("event_loop_threads", "--threads", "3", "--accept", accept)
    # Every loop asleep in epoll_wait first: a loop thread still starting (a
    # sanitizer build starts slowly) is not yet among those the kernel wakes.
    def started_loops():  # a loop that has not started yet shows tid 0 in STATUS
        tids = loop_tids(server)
        return tids if all(tids) else None

    tids = wait_until(started_loops, 10)
    assert tids, "the loops never all started"

    def all_asleep():
        return all("epoll" in wchan(t) for t in tids)

    assert wait_until(all_asleep, 10), f"the loops {tids} never all slept in epoll_wait"
    answers, began = [], time.monotonic()

    def one():
        with server.connect(timeout=15) as c:
            answers.append((c.ask("SLEEP 1000"), kv(c.ask("WHO"))["tid"]))

    clients = [threading.Thread(target=one) for _ in range(100)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(timeout=20)
    took = time.monotonic() - began
    assert len(answers) == 100 and all(a == "SLEPT 1000" for a, _ in answers), answers[:3]
    assert took < 2.5, f"--accept {accept}: 100 SLEEP 1000 took {took:.1f} s: the loops did not serve them at once"
    tids = {int(t) for _, t in answers}
    loops = set(loop_tids(server))
    assert tids <= loops and len(tids) >= 2, (
        f"--accept {accept}: the 100 connections were served by threads {sorted(tids)}; the loops are "
        f"{sorted(loops)}: more than one loop should take part")
    assert len(os.listdir(f"/proc/{server.pid}/task")) >= 3, "three loops, three threads at least"
    assert server.stop(timeout=10) == 0


def test_main_reactor_hands_connections_round_robin(start):
    server = start("event_loop_threads", "--threads", "4", "--accept", "main-reactor")
    seen = who_many(server, 40)
    assert sorted(seen.values()) == [10, 10, 10, 10], (
        f"40 connections one after another, handed round robin to 4 loops: {dict(seen)}")


def test_least_loaded_sends_new_connections_to_the_loop_with_fewest(start):
    # Three connections held open: with --balance least, they land on three
    # different loops of four, and the next ones on the fourth.
    server = start("event_loop_threads", "--threads", "4", "--accept", "main-reactor", "--balance", "least")
    held = [server.connect() for _ in range(3)]
    try:
        owners = {kv(c.ask("WHO"))["worker"] for c in held}
        with server.connect() as c:
            fourth = kv(c.ask("WHO"))["worker"]
    finally:
        for c in held:
            c.close()
    assert len(owners) == 3 and fourth not in owners, (
        f"held connections on loops {sorted(owners)}, the next went to loop {fourth}: not the least loaded")


def test_one_loop_accepts_for_itself_with_nothing_to_hand_off(start):
    server = start("event_loop_threads", "--threads", "1")
    with server.connect() as c:
        who = kv(c.ask("WHO"))
    assert who["worker"] == "0" and int(who["tid"]) == server.pid, (
        f"with one loop the main thread is the loop: WHO says {who}, the process is {server.pid}")
    assert len(os.listdir(f"/proc/{server.pid}/task")) == 1, "one loop, one thread: no acceptor beside it"


def test_trace_names_each_loop_and_status_has_a_row_per_loop(start):
    server = start("event_loop_threads", "--threads", "3", "--trace")
    tids = wait_until(lambda: all(loop_tids(server)) and loop_tids(server), 5)  # each thread writes its tid as it starts
    assert tids and len(tids) == 3 and len(set(tids)) == 3, f"STATUS rows: {loop_tids(server)}"
    assert wait_until(lambda: all(re.search(rf"tid {t} loop \d: loop \d started", server.stderr()) for t in tids), 5), \
        f"every loop's thread announces itself under --trace:\n{server.stderr()[-800:]}"


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_stop_answers_what_is_in_flight_in_every_loop_and_ends_them_all(start, accept):
    server = start("event_loop_threads", "--threads", "3", "--accept", accept)
    clients = [server.connect(timeout=10) for _ in range(9)]
    try:
        for c in clients:
            c.send("SLEEP 700\n")
        time.sleep(0.2)
        began = time.monotonic()
        server.signal(signal.SIGTERM)
        answers = [c.line() for c in clients]
    finally:
        for c in clients:
            c.close()
    assert answers == ["SLEPT 700"] * 9, f"--accept {accept}: the SLEEPs in flight at the stop: {answers}"
    assert server.wait(timeout=5) == 0
    assert time.monotonic() - began < 3, "every loop ended once its connections had"


# ---- INCR: where state lives -------------------------------------------------------------------

@pytest.mark.parametrize("state", ["shared", "sharded"])
def test_every_incr_is_counted_once_across_the_loops(start, state):
    server = start("event_loop_threads", "--threads", "3", "--state", state)
    assert not incr_from_clients(server)
    values = set(counts_read(server).values())
    assert values == {1000}, (
        f"--state {state}: 20 clients x 50 INCR hits, and GET hits answers {sorted(values)}: every loop "
        f"must see the one count")


def test_state_local_counts_each_loop_alone(start):
    # The wrong answer, on purpose: the page asks why.
    server = start("event_loop_threads", "--threads", "3", "--state", "local")
    assert not incr_from_clients(server)
    by_loop = counts_read(server)
    assert len(set(by_loop.values())) >= 2 and max(by_loop.values()) < 1000, (
        f"--state local: a map per loop, so GET answers what that loop counted: {by_loop}")


def test_sharded_counts_need_no_lock_and_still_answer_in_order(start):
    # A name owned by another loop is answered through two queues: the
    # answers of one connection must still come in the order it asked.
    server = start("event_loop_threads", "--threads", "4", "--state", "sharded")
    with server.connect() as c:
        c.send("".join(f"INCR n{i}\nPING\n" for i in range(50)))
        got = [c.line() for _ in range(100)]
    assert got == [a for _ in range(50) for a in ("VALUE 1", "PONG")], got[:10]


@pytest.mark.parametrize("state", ["shared", "sharded"])
def test_the_name_limit_is_the_servers_not_each_loops(start, state):
    # protocol.md: at most 1024 names. Sharded, each loop keeps the names it
    # owns: the limit must still count every shard's names, once.
    server = start("event_loop_threads", "--threads", "3", "--state", state)
    with server.connect(timeout=20) as c:
        c.send("".join(f"INCR n{i}\n" for i in range(1024)))
        got = [c.line() for _ in range(1024)]
        assert got == ["VALUE 1"] * 1024, f"--state {state}: the first 1024 names each count 1"
        refused = [c.ask(f"INCR more{i}") for i in range(6)]
        assert refused == ["ERR too many counters (at most 1024)"] * 6, (
            f"--state {state}, 3 loops: names after the 1024th, owned by whichever loop, must be refused: {refused}")
        assert c.ask("INCR n7") == "VALUE 2", "the names already there count on"
