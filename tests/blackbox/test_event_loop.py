"""05_event_loop and 08_io_uring: one thread serves every connection, and nothing blocks it but WORK.

08 asks the kernel for completions where 05 asks for readiness; every property of a single loop
holds for both, and runs for both here (08 is skipped, with its reason, where io_uring cannot run)."""
import os
import signal
import socket
import threading
import time

import pytest

from fdlimit import limit_files, no_sanitizer_at_the_fd_limit
from harness import (Client, Server, children_of, pipelined_ping_time, rss_kib, rss_measures_memory, wait_until,
                     work_lines)


LOOPS = ["event_loop", "uring"]
# 07's loops are 05's: where a test is about one loop, 07 runs one (or its clients could land on two).
ONE_LOOP = {"event_loop_threads": ["--threads", "1"]}


def threads_of(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sleepers(server, count, ms):
    """`count` clients send SLEEP ms at once; returns (seconds until the last answer, answers)."""
    answers, began = [], time.monotonic()

    def one():
        with server.connect(timeout=15) as c:
            answers.append(c.ask(f"SLEEP {ms}"))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return time.monotonic() - began, answers


@pytest.mark.parametrize("model", LOOPS)
def test_one_thread_serves_a_hundred_sleepers_at_once(start, model):
    server = start(model)
    took, answers = sleepers(server, 100, 1000)
    assert answers == ["SLEPT 1000"] * 100, f"{len(answers)} of 100 sleepers answered"
    assert took < 2.5, f"100 clients each sleeping 1 s took {took:.2f} s: SLEEP must be a timer, not a wait"
    assert threads_of(server.pid) == 1 and not children_of(server.pid), \
        f"one process and one thread: found {threads_of(server.pid)} threads, children {children_of(server.pid)}"


@pytest.mark.parametrize("model", LOOPS)
def test_requests_split_across_reads_and_pipelined_are_answered_in_order(start, model):
    server = start(model)
    with server.connect() as c:
        for byte in b"PI":
            c.send(bytes([byte]))
            time.sleep(0.05)
        c.send(b"NG\nECHO a\nSLEEP 50\nECHO b\nPING\n")
        assert [c.line() for _ in range(5)] == ["PONG", "a", "SLEPT 50", "b", "PONG"], \
            "a request split over several reads, then four in one write: answered in order"


@pytest.mark.parametrize("model", [*LOOPS, "event_loop_threads"])
def test_a_client_that_never_reads_cannot_grow_the_server(start, model):
    """Backpressure: past --output-limit the server stops reading that connection."""
    server = start(model, "--output-limit", "65536", *(["--threads", "2"] if model == "event_loop_threads" else []))
    before = rss_kib(server.pid)
    greedy = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"ECHO " + b"x" * 1000 + b"\n"
    sent, deadline = 0, time.monotonic() + 3
    greedy.setblocking(False)
    while time.monotonic() < deadline and sent < 64 << 20:
        try:
            sent += greedy.send(request * 64)
        except BlockingIOError:
            time.sleep(0.01)  # the server stopped reading: the kernel's buffers are full
    grown = rss_kib(server.pid) - before
    with server.connect(timeout=5) as c:
        began = time.monotonic()
        assert c.ask("PING") == "PONG"
        waited = time.monotonic() - began
    greedy.close()
    assert sent < 32 << 20, f"the server went on reading a client that never reads its answers: {sent >> 20} MiB taken"
    if rss_measures_memory():
        assert grown < 16 * 1024, f"the server grew by {grown} KiB for a client that never reads"
    assert waited < 0.5, f"another client's PING waited {waited:.2f} s behind the greedy one"


@pytest.mark.parametrize("model", [*LOOPS, "event_loop_threads"])
def test_sleep_is_a_timer_but_work_stalls_everyone_unless_offloaded(start, model):
    def ping_during_work(server):
        work = work_lines(server, 1.0)  # about a second of CPU here, whatever this CPU's speed
        with server.connect(timeout=30) as worker, server.connect(timeout=30) as other:
            began = time.monotonic()
            worker.send(work)
            time.sleep(0.1)
            asked = time.monotonic()
            assert other.ask("PING") == "PONG"
            waited = time.monotonic() - asked
            for _ in range(work.count("\n")):
                assert worker.line().startswith("WORKED ")
            took = time.monotonic() - began
        return waited, took

    on_loop, work_took = ping_during_work(start(model, *ONE_LOOP.get(model, [])))
    offloaded, _ = ping_during_work(start(model, "--offload", "1", *ONE_LOOP.get(model, [])))
    assert on_loop > 0.5 * (work_took - 0.1), (
        f"WORK runs on the loop: a PING sent 0.1 s into a WORK of {work_took:.2f} s should wait for it; "
        f"it waited {on_loop:.2f} s")
    assert offloaded < on_loop / 2, (
        f"with --offload 1 WORK runs on a thread: the PING waited {offloaded:.2f} s, "
        f"against {on_loop:.2f} s with WORK on the loop")


@pytest.mark.parametrize("model", ["event_loop", "event_loop_threads"])
@pytest.mark.parametrize("trigger", ["level", "edge"])
def test_a_burst_of_pipelined_requests_is_read_to_the_end(start, model, trigger):
    server = start(model, "--trigger", trigger)
    with server.connect(timeout=5) as c:
        c.send(b"PING\n" * 2000)
        answers = [c.line() for _ in range(2000)]
    assert answers == ["PONG"] * 2000


def test_edge_triggered_reading_once_per_event_loses_the_rest(start):
    """The rule of edge-triggered epoll, shown by breaking it (--debug-read-once): what is left unread is never reported again."""
    server = start("event_loop", "--trigger", "edge", "--debug-read-once")
    with server.connect(timeout=2) as c:
        c.send(b"PING\n" * 100)  # 500 bytes in one write; the server reads 64 of them
        answers = []
        with pytest.raises(socket.timeout):
            while True:
                answers.append(c.line())
    assert 0 < len(answers) < 100, f"{len(answers)} of 100 answered: the rest should wait for an event that never comes"


@pytest.mark.parametrize("model", [*LOOPS, "event_loop_threads"])
def test_idle_connections_are_closed_by_a_timer(start, model):
    server = start(model, "--idle-timeout", "1")
    clients = [Client("127.0.0.1", server.port, timeout=5) for _ in range(20)]
    began = time.monotonic()
    try:
        assert clients[0].ask("PING") == "PONG"  # a text connection: it is told why it is closed
        for c in clients:
            assert c.closed_by_server(timeout=3), "an idle connection outlived --idle-timeout 1"
        assert time.monotonic() - began < 2.5
        assert clients[0].buf == b"ERR idle timeout\n", clients[0].buf
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("model", ["event_loop", "prefork_event_loop", "uring"])
def test_a_request_that_outlasts_the_idle_timeout_neither_idles_out_nor_stalls_the_loop(start, model):
    # The idle timer fires during the SLEEP and must look again later, not at
    # its past deadline (which once fired it again at once, forever: the
    # loop spun, answered no one and ignored SIGTERM).
    server = start(model, "--idle-timeout", "1", *(["--workers", "1"] if model == "prefork_event_loop" else []))
    slow = server.connect(timeout=10)
    slow.send("SLEEP 2500\n")
    time.sleep(1.5)  # past the idle deadline, while the SLEEP runs
    with server.connect(timeout=3) as other:
        assert other.ask("PING") == "PONG", "a PING during a long SLEEP was not answered: the loop is stuck"
    assert slow.line() == "SLEPT 2500", "a request that outlasted --idle-timeout was not answered"
    pid = children_of(server.pid)[0] if model == "prefork_event_loop" else server.pid
    assert cpu_seconds(pid) < 1.0, f"the loop used {cpu_seconds(pid):.2f} s of CPU for one SLEEP: it spun"
    slow.close()
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=5) == 0, "it did not stop on SIGTERM"


@pytest.mark.parametrize("model", LOOPS)
def test_graceful_stop_answers_what_is_in_flight_and_closes_the_idle(start, model):
    server = start(model)
    busy = server.connect(timeout=10)
    idle = server.connect(timeout=10)
    assert idle.ask("PING") == "PONG"
    busy.send("SLEEP 800\n")
    time.sleep(0.2)
    stopped = time.monotonic()
    server.signal(signal.SIGTERM)
    assert busy.line() == "SLEPT 800", "the request in flight is answered"
    assert idle.closed_by_server(timeout=3), "a connection idle between requests is closed after the stop's grace"
    took = time.monotonic() - stopped
    assert 0.8 < took < 2.0, (f"the idle keep-alive connection was closed {took:.2f} s after the stop: it should get "
                              "one second's grace for a request already on its way, then be closed")
    assert server.wait(timeout=5) == 0
    assert f"{model} stopped: 2 connections, 2 requests" in server.stderr()


@no_sanitizer_at_the_fd_limit
@pytest.mark.parametrize("model", LOOPS)
def test_out_of_descriptors_it_pauses_instead_of_spinning_and_recovers(bin_dir, model, uring_unavailable):
    if model == "uring" and uring_unavailable:
        pytest.skip(uring_unavailable)
    server = Server([bin_dir / model, "--port", "0"],
                    preexec_fn=limit_files(16))
    clients = []
    try:
        for _ in range(30):
            clients.append(Client("127.0.0.1", server.port, timeout=5))
        time.sleep(0.5)
        before = cpu_seconds(server.pid)
        time.sleep(1.5)
        busy = cpu_seconds(server.pid) - before
        assert busy < 0.2, f"the loop used {busy:.2f} s of CPU in 1.5 s while out of descriptors: a busy loop"
        assert "Too many open files" in server.stderr(), server.stderr()[-500:]
        for c in clients:
            c.close()
        clients.clear()
        with Client("127.0.0.1", server.port, timeout=5) as c:
            assert c.ask("PING") == "PONG", "no service once descriptors were free again"
    finally:
        for c in clients:
            c.close()
        server.kill()


@pytest.mark.parametrize("model", LOOPS)
def test_it_raises_its_descriptor_limit_to_hold_thousands_of_connections(bin_dir, model, uring_unavailable):
    if model == "uring" and uring_unavailable:
        pytest.skip(uring_unavailable)
    server = Server([bin_dir / model, "--port", "0"],
                    preexec_fn=limit_files(256, 4096))
    try:
        with open(f"/proc/{server.pid}/limits") as f:
            soft = next(int(line.split()[3]) for line in f if line.startswith("Max open files"))
        assert soft == 4096, f"the soft descriptor limit stayed at {soft}: {model} should raise it to the hard limit"
    finally:
        server.kill()


@pytest.mark.parametrize("model,trigger", [(m, t) for m in ("event_loop", "prefork_event_loop", "event_loop_threads")
                                           for t in ("level", "edge")] + [("uring", None)])
def test_a_client_that_never_pauses_does_not_keep_the_others_waiting(start, model, trigger):
    # One client pipelines PINGs from one thread and reads its answers from
    # another: its socket is never empty. Edge-triggered, the rule is to read
    # until EAGAIN, which never comes: each connection reads at most 64 KiB
    # a turn and comes back for the rest after the others had their turn.
    # (08 gets a completion per buffer received, every connection's in turn.)
    server = start(model, *(["--trigger", trigger] if trigger else []),
                   *(["--workers", "1"] if model == "prefork_event_loop" else []),
                   *(["--threads", "1"] if model == "event_loop_threads" else []))  # the flood and the other share a loop
    assert model != "prefork_event_loop" or wait_until(lambda: len(children_of(server.pid)) == 1, 10)
    # The other client waits for about a turn of the flooding one: 50 ms, or
    # six times what 64 KiB of PINGs alone takes this build here (a sanitizer
    # build is slower; the flood's answers are written meanwhile). Unbounded,
    # the wait was seconds.
    bound = max(0.05, 6 * pipelined_ping_time(server))
    flood = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    stop = threading.Event()

    def send():
        chunk = b"PING\n" * 4000
        try:
            while not stop.is_set():
                flood.sendall(chunk)
        except OSError:
            pass

    def read():
        try:
            while not stop.is_set() and flood.recv(1 << 16):
                pass
        except OSError:
            pass

    threads = [threading.Thread(target=send), threading.Thread(target=read)]
    for t in threads:
        t.start()
    waited = []
    try:
        time.sleep(0.3)
        for _ in range(5):
            began = time.monotonic()
            with server.connect(timeout=10) as c:
                assert c.ask("PING") == "PONG"
            waited.append(time.monotonic() - began)
            time.sleep(0.05)
    finally:
        stop.set()
        flood.shutdown(socket.SHUT_RDWR)
        flood.close()
        for t in threads:
            t.join(timeout=10)
    assert sorted(waited)[2] < bound, (
        f"{model} --trigger {trigger}: beside a client that sends without pause, another client's connect + PING "
        f"took {', '.join(f'{w * 1000:.0f}' for w in waited)} ms (the bound: {bound * 1000:.0f} ms): the loop kept "
        f"serving the one connection")
