"""08_io_uring: the completion model. Every single-loop property of 05 is checked for 08 in
test_event_loop.py and the protocol in test_protocol.py; here what is 08's own: each mode and
feature serves, the pitfalls of completions stay out, and where io_uring cannot be had it says
why and exits with status 2."""
import subprocess
import threading
import time

import pytest

from harness import Client, HOST, wait_until

MODES = [["--mode", "oneshot"], ["--mode", "multishot"], ["--mode", "multishot", "--no-fixed-files"],
         ["--mode", "multishot", "--no-defer-taskrun"]]


def test_where_io_uring_is_refused_it_exits_2_and_says_why(bin_dir, uring_unavailable):
    if uring_unavailable:
        pytest.skip(uring_unavailable)  # it is refused already, for a reason of its own
    # A seccomp filter refusing io_uring_setup, as a container's profile
    # does: the model must say so, with status 2, not crash or hang.
    done = subprocess.run([bin_dir / "deny_syscalls", "io_uring_setup", "--", bin_dir / "uring", "--port", "0"],
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 2, f"uring under a filter refusing io_uring_setup exited {done.returncode}"
    assert "io_uring is not available here" in done.stderr and "seccomp" in done.stderr, done.stderr
    assert "listening" not in done.stdout, "it must not announce a port it cannot serve"


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_every_mode_serves_the_protocol_and_stops_cleanly(start, mode):
    server = start("uring", *mode, "--trace")
    assert "io_uring: " in server.stderr(), "the trace names what the ring got"
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
        assert c.ask("ECHO " + "x" * 8000) == "x" * 8000, "a request and an answer larger than a provided buffer"
        c.send("SLEEP 50\nINCR a\nINCR a\n")
        assert [c.line(), c.line(), c.line()] == ["SLEPT 50", "VALUE 1", "VALUE 2"]
    assert server.stop(timeout=10) == 0


@pytest.mark.parametrize("mode", MODES, ids=lambda m: " ".join(m))
def test_many_clients_pushing_at_once_get_every_answer_right(start, mode):
    # 24 clients each pipeline 300 KiB of ECHOs while reading their answers:
    # many receives complete per turn, provided buffers are taken and given
    # back (or the ring runs dry: ENOBUFS, armed again), sends are cut short
    # and resumed. Every answer must come back, in order.
    server = start("uring", *mode)
    line = "ECHO " + "y" * 1000
    errors = []

    def client(n):
        try:
            with Client(HOST, server.port, timeout=20) as c:
                reader = threading.Thread(target=lambda: errors.extend(
                    f"client {n}: answer {i} was {got[:20]!r}"
                    for i in range(300) if (got := c.line()) != "y" * 1000))
                reader.start()
                c.send((line + "\n") * 300)
                reader.join(timeout=20)
        except OSError as e:
            errors.append(f"client {n}: {e!r}")

    clients = [threading.Thread(target=client, args=(n,)) for n in range(24)]
    for t in clients:
        t.start()
    for t in clients:
        t.join(timeout=40)
    assert not errors, errors[:3]
    with server.connect() as c:
        assert c.ask("PING") == "PONG"


def test_a_closed_connection_leaves_no_descriptor_behind(start, bin_dir):
    # A socket is closed only once every request on it has completed: a
    # receive still armed must be cancelled first, or the socket stays open
    # (and the client never sees the end). With plain descriptors, the
    # server's table of descriptors shows it.
    import os
    server = start("uring", "--no-fixed-files", "--idle-timeout", "1")
    with server.connect() as c:  # wholly set up: its eventfd comes after the listening line
        assert c.ask("PING") == "PONG"
    time.sleep(0.2)  # that connection closed
    before = len(os.listdir(f"/proc/{server.pid}/fd"))
    clients = [Client(HOST, server.port, timeout=5) for _ in range(50)]
    for c in clients[:25]:
        assert c.ask("QUIT") == "BYE" and c.closed_by_server(timeout=2), "closed by QUIT, with a receive armed"
    for c in clients[25:]:
        assert c.closed_by_server(timeout=3), "closed by the idle timeout, with a receive armed"
    for c in clients:
        c.close()
    assert wait_until(lambda: len(os.listdir(f"/proc/{server.pid}/fd")) <= before, 3), (
        f"the server held {before} descriptors before 50 connections and "
        f"{len(os.listdir(f'/proc/{server.pid}/fd'))} after they were all closed")
