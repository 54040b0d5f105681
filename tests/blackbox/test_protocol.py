"""The protocol of docs/protocol.md, over real sockets, for every model."""
import shutil
import socket
import subprocess
import time

import pytest

from harness import HOST, http_exchange, splitmix64_after
from models import MODELS

pytestmark = pytest.mark.parametrize("model", MODELS)


def test_text_commands(start, model):
    server = start(model)
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
        assert c.ask("ping") == "PONG", "the command word must be case-insensitive"
        assert c.ask("ECHO  two  spaces ") == " two  spaces ", "ECHO returns the bytes after the first space"
        assert c.ask("SLEEP 20") == "SLEPT 20"
        for n in (0, 1, 1000):
            assert c.ask(f"WORK {n}") == f"WORKED {n} {splitmix64_after(n):016x}"
        who = dict(kv.split("=", 1) for kv in c.ask("WHO").split())
        assert set(who) == {"model", "pid", "ppid", "tid", "worker", "conn"}, who
        assert who["model"] == model
        stats = dict(kv.split("=", 1) for kv in c.ask("STATS").split())
        assert set(stats) >= {"model", "workers", "connections", "requests", "uptime_ms"}, \
            f"STATS lacks a required key: {stats}"
        if model in ("prefork", "prefork_threads"):
            assert set(stats) >= {"accepts", "wakeups", "spurious"}, f"prefork's STATS adds accept counters: {stats}"
        assert stats["model"] == model
        assert c.ask("QUIT") == "BYE"
        assert c.closed_by_server(), "the server must close the connection after BYE"


def test_crlf_blank_lines_and_pipelining(start, model):
    server = start(model)
    with server.connect() as c:
        c.send("PING\r\n\n   \nECHO a\r\nWORK 2\nPING\n")
        answers = [c.line() for _ in range(4)]
        assert answers == ["PONG", "a", f"WORKED 2 {splitmix64_after(2):016x}", "PONG"], \
            "pipelined requests must be answered in order, blank lines ignored, CR before LF dropped"


def test_an_answer_behind_a_pipelined_one_does_not_wait_for_a_delayed_ack(start, model):
    # "PING\nSLEEP 5\n" in one write: PONG goes out at once, SLEPT 5 ms later,
    # while PONG may not be acknowledged yet. With Nagle's algorithm on, that
    # second small segment waits for the ACK, and a client with nothing to
    # send delays its ACK: 40 ms at least on Linux, a kernel timer, whatever
    # the CPU. The median of seven is far below that when answers go out at
    # once (TCP_NODELAY), and at or above it when they do not.
    server = start(model)
    took = []
    with server.connect() as c:
        for _ in range(3):
            assert c.ask("PING") == "PONG"  # past the quick ACKs of a connection's start
        for _ in range(7):
            began = time.monotonic()
            c.send("PING\nSLEEP 5\n")
            assert [c.line(), c.line()] == ["PONG", "SLEPT 5"]
            took.append(time.monotonic() - began)
    median = sorted(took)[3]
    assert median < 0.035, (f"a pipelined SLEEP 5 was answered after {median * 1000:.0f} ms: the answer waited for "
                            "the client's delayed ACK of the one before (Nagle's algorithm; TCP_NODELAY, docs/tcp.md)")


def test_request_split_across_writes(start, model):
    server = start(model)
    with server.connect() as c:
        for byte in b"ECHO slow\n":
            c.send(bytes([byte]))
            time.sleep(0.002)
        assert c.line() == "slow"


def test_errors_keep_the_connection_open(start, model):
    server = start(model)
    with server.connect() as c:
        assert c.ask("FOO") == "ERR unknown command 'FOO'"
        assert c.ask("SLEEP 60001").startswith("ERR ")
        assert c.ask("SLEEP abc").startswith("ERR ")
        assert c.ask("WORK -1").startswith("ERR ")
        assert c.ask("PING extra").startswith("ERR ")
        assert c.ask("PING") == "PONG", "after ERR answers the connection must keep working"


def test_overlong_line_is_refused_and_closed(start, model):
    server = start(model)
    with server.connect() as c:
        c.send(b"x" * 9000 + b"\n")
        assert c.line() == "ERR line too long"
        assert c.closed_by_server(), "after 'ERR line too long' the server must close"
    with server.connect() as c:
        assert c.ask("PING") == "PONG", "the server keeps serving after an overlong line"


def test_stats_counts_connections_and_requests(start, model):
    server = start(model)
    for _ in range(3):
        with server.connect() as c:
            assert c.ask("PING") == "PONG"
    with server.connect() as c:
        stats = dict(kv.split("=", 1) for kv in c.ask("STATS").split())
    assert int(stats["connections"]) == 4, f"4 connections were made, STATS says {stats['connections']}"
    assert int(stats["requests"]) == 3, \
        f"3 PINGs were answered before STATS (which counts what came before it), STATS says {stats['requests']}"


def test_idle_connection_is_closed(start, model):
    server = start(model, "--idle-timeout", "1")
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
        began = time.monotonic()
        c.send("PIN")  # half a request does not count as activity
        assert c.closed_by_server(timeout=4), "an idle connection must be closed after --idle-timeout"
        waited = time.monotonic() - began
        assert 0.8 <= waited <= 3.5, f"closed after {waited:.2f} s with --idle-timeout 1"
        assert c.buf == b"ERR idle timeout\n"


# ---- HTTP framing ---------------------------------------------------------------------------

def curl(*args):
    assert shutil.which("curl"), "curl is required (./lab setup installs it)"
    r = subprocess.run(["curl", "-s", "--max-time", "10", *args], capture_output=True, timeout=15)
    return r.stdout.decode(errors="replace")


def test_http_routes_with_curl(start, model):
    server = start(model)
    base = f"http://{HOST}:{server.port}"
    assert curl(f"{base}/ping") == "PONG\n"
    assert curl(f"{base}/echo?msg=hello%20there+you%21") == "hello there you!\n", "percent-decoding"
    assert curl(f"{base}/sleep?ms=10") == "SLEPT 10\n"
    assert curl(f"{base}/work?n=5") == f"WORKED 5 {splitmix64_after(5):016x}\n"
    assert curl(f"{base}/who").startswith(f"model={model} ")
    assert curl(f"{base}/stats").startswith(f"model={model} ")
    head = curl("-I", f"{base}/ping")
    assert head.startswith("HTTP/1.1 200 OK"), head
    assert "Content-Length: 5" in head and "Content-Type: text/plain" in head, head


def test_http_status_codes(start, model):
    server = start(model)
    base = f"http://{HOST}:{server.port}"
    code = lambda *a: curl("-o", "/dev/null", "-w", "%{http_code}", *a)  # noqa: E731
    assert code(f"{base}/nope") == "404"
    assert code(f"{base}/sleep?ms=x") == "400"
    assert code(f"{base}/echo") == "400"
    assert code("-X", "POST", f"{base}/ping") == "405"
    assert "Allow: GET, HEAD" in curl("-i", "-X", "DELETE", f"{base}/ping")
    assert code("--data", "x", f"{base}/ping") in ("405", "413")
    assert code(f"{base}/" + "a" * 9000) == "414"
    assert code("-H", "X-Big: " + "v" * 17000, f"{base}/ping") == "431"
    raw = http_exchange(server.port, b"GET /ping HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
    assert raw.startswith(b"HTTP/1.1 413 "), raw
    raw = http_exchange(server.port, b"GET /ping HTTP/2.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 505 "), raw
    raw = http_exchange(server.port, b"GET /ping HTTP/1.1\r\nbad header\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 "), raw
    assert b"Connection: close" in raw, "an error response closes the connection and says so"


def test_http_keep_alive_and_pipelining(start, model):
    server = start(model)
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?msg=2 HTTP/1.1\r\n\r\n"
                  b"GET /echo?msg=3 HTTP/1.1\r\nConnection: close\r\n\r\nGET /ping HTTP/1.1\r\n\r\n")
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    assert out.count(b"HTTP/1.1 200 OK") == 3, "3 answers, none after Connection: close"
    assert out.index(b"PONG\n") < out.index(b"\r\n\r\n2\n") < out.index(b"\r\n\r\n3\n"), "answers in order"
    assert out.count(b"Connection: close") == 1, "Connection: close is echoed on its answer"


def test_http_1_0_closes_unless_keep_alive(start, model):
    server = start(model)
    out = http_exchange(server.port, b"GET /ping HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"PONG\n"), "HTTP/1.0 closes after the answer"
    with socket.create_connection((HOST, server.port), timeout=5) as s:
        s.sendall(b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = s.recv(65536)
        assert b"Connection: keep-alive" in first
        s.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
        assert b"PONG" in s.recv(65536), "the kept connection serves a second request"


def test_curl_reuses_a_keep_alive_connection(start, model):
    server = start(model)
    base = f"http://{HOST}:{server.port}"
    out = curl("-w", "%{num_connects}\n", f"{base}/ping", f"{base}/ping")
    assert out.split("\n") == ["PONG", "1", "PONG", "0", ""], \
        f"curl's second request should reuse the connection (num_connects 0): {out!r}"


def send_then_read(port, data, timeout=10.0):
    """Sends all of `data`, then reads what the server sent until it closed, as curl does with a
    request body. Returns (what was read, the error that ended the sending or the reading, or None)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError as e:  # a reset: curl gives up here ("Send failure: Connection reset by peer")
            return b"", e
        got = b""
        try:
            while data := sock.recv(65536):
                got += data
        except OSError as e:
            return got, e
        return got, None


@pytest.mark.parametrize("case", ["20 MiB POST", "QUIT, then more", "line too long, then more"])
def test_the_last_answer_survives_a_client_still_sending(start, model, case):
    # The server ends the connection while the client is still sending, and
    # knows it: bytes behind the last request, or a request it refused before
    # reading it all. A close() with input unread, or with input still coming,
    # answers with a reset (RST), which can destroy the answer in the client's
    # buffers before it is read. A lingering close (shutdown, drain for a
    # while, close) delivers it: 10 times of 10. (Bytes that arrive only after
    # a QUIT whose connection looked quiet can still meet a reset: nginx's
    # `lingering_close on` has the same window; closing it for every
    # connection costs a round trip each.)
    server = start(model, *(["--workers", "2"] if model.startswith("prefork") else []))
    head, size, wanted = {
        "20 MiB POST": (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20971520\r\n\r\n", 20 << 20,
                        b"HTTP/1.1 413 "),
        "QUIT, then more": (b"PING\nQUIT\n" + b"PING\n" * 1000, 4 << 20, b"PONG\nBYE\n"),
        "line too long, then more": (b"PING\n" + b"y" * 9000 + b"\n", 4 << 20, b"PONG\nERR line too long\n"),
    }[case]
    lost = []
    for n in range(10):
        got, error = send_then_read(server.port, head + b"x" * size)
        if error or not got.startswith(wanted):
            lost.append(f"try {n + 1}: {got[:60]!r}" + (f", {error!r}" if error else ""))
    assert not lost, f"{model}, {case}: the answer was lost (a reset instead of a lingering close): {lost}"
    with server.connect() as c:
        assert c.ask("PING") == "PONG", "the server serves on"


def test_incr_and_get_count_by_name(start, model):
    server = start(model)
    with server.connect() as c:
        assert c.ask("GET visits") == "VALUE 0", "a name never counted reads 0"
        assert c.ask("INCR visits") == "VALUE 1"
        assert c.ask("incr visits") == "VALUE 2", "the command word is case-insensitive"
        assert c.ask("INCR other") == "VALUE 1", "each name counts on its own"
        assert c.ask("GET visits") == "VALUE 2"
        for bad in ("INCR", "INCR " + "x" * 65, "INCR two words", "GET s/lash"):
            got = c.ask(bad)
            assert got.startswith("ERR "), f"{bad[:20]!r} should be refused with ERR, got {got!r}"
        assert c.ask("PING") == "PONG", "after a refused name the connection goes on"
    r = subprocess.run(["curl", "-s", "-w", " %{http_code}", f"http://{HOST}:{server.port}/incr?name=visits",
                        f"http://{HOST}:{server.port}/get?name=visits", f"http://{HOST}:{server.port}/incr"],
                       capture_output=True, text=True, timeout=10)
    assert r.stdout.split("\n") == ["VALUE 3", " 200VALUE 3", " 200ERR /incr needs name=", " 400"], r.stdout


def test_the_1025th_name_is_refused_and_the_others_count_on(start, model):
    server = start(model)
    with server.connect(timeout=20) as c:
        c.send("".join(f"INCR n{i}\n" for i in range(1024)))
        got = [c.line() for _ in range(1024)]
        assert got == ["VALUE 1"] * 1024, f"the first 1024 names each count 1: {[g for g in got if g != 'VALUE 1'][:3]}"
        assert c.ask("INCR n1024") == "ERR too many counters (at most 1024)"
        assert c.ask("GET n1024") == "VALUE 0"
        assert c.ask("INCR n7") == "VALUE 2", "the names already there count on"
    raw = http_exchange(server.port, b"GET /incr?name=more HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 ") and b"ERR too many counters" in raw, raw[:200]
