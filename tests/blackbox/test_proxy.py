"""09_reverse_proxy: a server that is also a client. It relays each request to a backend and the
answer back, keeps connections to the backends alive, survives backends that refuse, stall,
reset or die, holds a client that never reads within bounds, and leaves no socket in CLOSE_WAIT."""
import json
import os
import pathlib
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from harness import HOST, Client, children_of, kv, rss_kib, rss_measures_memory, unused_port, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def backend(start):
    """backend(model="event_loop", *args) -> a toolkit server to put behind the proxy."""
    def _backend(model="event_loop", *args):
        return start(model, *args)
    return _backend


def proxy_of(start, *backends, workers=2, args=()):
    return start("proxy", "--workers", str(workers), *[a for b in backends for a in ("--backend", f"{HOST}:{b.port}")],
                 *args)


class FakeBackend:
    """A backend that misbehaves on purpose, on a port of its own: `behaviour` is 'stall' (accepts,
    reads, never answers), 'reset' (reads a request and resets the connection) or 'answer' (reads a
    request, sends `answer` and holds the connection)."""

    def __init__(self, behaviour, answer=b""):
        self.behaviour, self.answer = behaviour, answer
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.recv(4096)
            except OSError:
                pass
            if self.behaviour == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            if self.behaviour == "answer":
                try:
                    conn.sendall(self.answer)
                except OSError:
                    pass
            self.held.append(conn)

    def close(self):
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        for c in self.held:
            c.close()


def test_it_relays_text_and_http_and_answers_its_own_quit_stats_and_status(start, backend):
    b = backend()
    proxy = proxy_of(start, b)
    with proxy.connect() as c:
        assert c.ask("PING") == "PONG"
        assert c.ask("ECHO two  spaces") == "two  spaces"
        assert c.ask("SLEEP 20") == "SLEPT 20"
        assert kv(c.ask("WHO"))["model"] == "event_loop", "WHO is relayed: it names the backend that answered"
        assert kv(c.ask("STATS"))["model"] == "proxy", "STATS is the proxy's own"
        assert c.ask("FOO").startswith("ERR unknown command"), "a bad request is refused by the proxy itself"
        assert c.ask("QUIT") == "BYE" and c.closed_by_server()
    with b.connect() as direct:
        answered = int(kv(direct.ask("STATS"))["requests"])
    assert answered == 4, (f"the backend answered {answered} requests, not the 4 relayed (PING, ECHO, SLEEP, WHO): "
                           "the proxy must relay every request, SLEEP too, and answer only its own")
    r = subprocess.run(["curl", "-s", "-w", "%{http_code}\\n", f"http://{HOST}:{proxy.port}/echo?msg=a%20b%26c",
                        f"http://{HOST}:{proxy.port}/who", f"http://{HOST}:{proxy.port}/nope"],
                       capture_output=True, text=True, timeout=10)
    lines = r.stdout.splitlines()  # each body's line, then its status
    assert lines[0:2] == ["a b&c", "200"] and "model=event_loop" in lines[2] and lines[5] == "404", lines
    status = json.loads(subprocess.run(["curl", "-s", f"http://{HOST}:{proxy.port}/status.json"],
                                       capture_output=True, text=True, timeout=10).stdout)
    assert status["model"] == "proxy" and all("upstream" in w for w in status["workers"]), status
    page = subprocess.run(["curl", "-s", f"http://{HOST}:{proxy.port}/status"], capture_output=True, text=True,
                          timeout=10).stdout
    assert "<th>upstream</th>" in page, "the status page shows each worker's connections to the backends"
    top = subprocess.run(["/usr/bin/python3", str(ROOT / "tools" / "views" / "top.py"), "--port", str(proxy.port),
                          "--once"], capture_output=True, text=True, timeout=20).stdout
    assert re.search(r"upstream \d+", top), f"./lab top's header counts the upstream connections:\n{top}"


def test_round_robin_and_least_spread_requests_over_the_backends(start, backend):
    one, two = backend(), backend()
    for balance in ("rr", "least"):
        proxy = proxy_of(start, one, two, workers=1, args=("--balance", balance))
        with proxy.connect() as c:
            pids = [kv(c.ask("WHO"))["pid"] for _ in range(10)]
        assert len(set(pids)) == 2, f"--balance {balance}: 10 requests all went to {set(pids)}"
        if balance == "rr":
            assert pids[0::2] == [pids[0]] * 5 and pids[1::2] == [pids[1]] * 5, f"rr alternates: {pids}"


def backend_connections(b):
    with b.connect() as c:
        return int(kv(c.ask("STATS"))["connections"]) - 1  # this STATS's own connection


def test_connections_to_the_backend_are_kept_alive_and_reused(start, backend):
    b = backend()
    proxy = proxy_of(start, b)
    for n in range(40):
        with proxy.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    kept = backend_connections(b)
    assert kept <= 2, f"40 client connections made {kept} connections to the backend: the pool should reuse them"
    b2 = backend()
    proxy = proxy_of(start, b2, args=("--upstream-keepalive", "0"))
    for n in range(10):
        with proxy.connect() as c:
            assert c.ask(f"ECHO {n}") == str(n)
    assert backend_connections(b2) == 10, "--upstream-keepalive 0: a connection per request"


def test_a_refusing_backend_is_skipped_and_when_all_fail_the_client_is_told(start, backend):
    alive = backend()
    port = unused_port()  # connects are refused
    proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{port}", "--backend", f"{HOST}:{alive.port}")
    with proxy.connect() as c:
        answers = [c.ask("PING") for _ in range(6)]
    assert answers == ["PONG"] * 6, f"a refused connect goes to the other backend, not to the client: {answers}"
    assert f"{HOST}:{port}" in proxy.stderr() and "left alone" in proxy.stderr()
    proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{port}")
    with proxy.connect() as c:
        got = c.ask("PING")
        assert got.startswith("ERR upstream ") and "refused" in got, got
        assert c.ask("QUIT") == "BYE", "after the error the connection goes on"
    raw = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{HOST}:{proxy.port}/ping"],
                         capture_output=True, text=True, timeout=10).stdout
    assert raw == "502", f"HTTP: no backend could answer: {raw}"


@pytest.mark.parametrize("length", [5 << 30, 2**64 - 1])
def test_an_answer_longer_than_the_limit_is_refused_from_its_head(start, length):
    """The proxy holds an HTTP answer whole before relaying it: one that says it is 5 GiB would take
    5 GiB of a worker, and a Content-Length of 2^64-1 once wrapped the sum of head and body around
    and relayed what followed the head as a 200. Either gets a 502 at once, and the worker goes on."""
    fake = FakeBackend("answer", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length + b"x" * 65536)
    try:
        proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{fake.port}", "--read-timeout", "5",
                      "--upstream-keepalive", "0")
        began = time.monotonic()
        got = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", f"http://{HOST}:{proxy.port}/ping"],
                             capture_output=True, text=True, timeout=15).stdout
        took = time.monotonic() - began
        body, _, code = got.rpartition("\n")
        assert code == "502" and "a body over 1 MiB" in body, (
            f"a backend answer with Content-Length {length} was relayed as HTTP {code} {body[:80]!r}: "
            f"it should be refused from its head with 502")
        assert took < 4, f"the refusal took {took:.1f} s: the proxy waited for the body (--read-timeout is 5 s)"
        assert proxy.alive()
    finally:
        fake.close()


def test_a_text_answer_line_over_64_kib_is_refused_even_with_its_end(start):
    """A text answer is held until its LF: a line over 64 KiB is refused whether its LF came in the
    same read or not (it was relayed when it did)."""
    fake = FakeBackend("answer", b"x" * (70 * 1024) + b"\n")
    try:
        proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{fake.port}", "--upstream-keepalive", "0")
        with proxy.connect(timeout=5) as c:
            got = c.ask("PING")
        assert got.startswith("ERR upstream ") and "an answer line over 64 KiB" in got, (
            f"a backend's answer line of 70 KiB was relayed as {got[:60]!r}... ({len(got)} bytes): it should be "
            f"refused with ERR upstream")
        assert proxy.alive()
    finally:
        fake.close()


@pytest.mark.parametrize("behaviour,status,words", [("stall", 504, "no answer within --read-timeout"),
                                                    ("reset", 502, "reset the connection")])
def test_a_backend_that_stalls_or_resets_gets_the_client_an_error_and_the_proxy_survives(start, behaviour,
                                                                                         status, words):
    fake = FakeBackend(behaviour)
    try:
        proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{fake.port}", "--read-timeout", "0.5",
                      "--upstream-keepalive", "0")
        began = time.monotonic()
        with proxy.connect(timeout=5) as c:
            got = c.ask("PING")
        assert got.startswith("ERR upstream ") and words in got, got
        assert time.monotonic() - began < 3
        raw = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              f"http://{HOST}:{proxy.port}/ping"], capture_output=True, text=True, timeout=10).stdout
        assert raw == str(status), f"{behaviour}: HTTP {raw}, not {status}"
        assert proxy.alive()
    finally:
        fake.close()


def test_a_slow_backend_request_does_not_hold_up_other_clients(start, backend):
    b = backend()
    proxy = proxy_of(start, b, workers=1)
    with proxy.connect(timeout=5) as slow, proxy.connect(timeout=5) as quick:
        slow.send("SLEEP 1000\n")
        time.sleep(0.1)
        began = time.monotonic()
        assert quick.ask("PING") == "PONG"
        took = time.monotonic() - began
        assert slow.line() == "SLEPT 1000"
    assert took < 0.3, f"a PING waited {took:.2f} s behind another client's SLEEP 1000 at the backend"


def flood_with_requests(sock, seconds=3, most=64 << 20):
    """Sends pipelined ECHOs on the non-blocking `sock` for `seconds` (or until `most` bytes),
    as fast as the proxy takes them; returns the bytes it took."""
    sent, deadline = 0, time.monotonic() + seconds
    request = ("ECHO " + "z" * 4000 + "\n").encode() * 16
    while time.monotonic() < deadline and sent < most:
        try:
            sent += sock.send(request)
        except BlockingIOError:
            time.sleep(0.01)
    return sent


def test_a_client_that_never_reads_does_not_grow_the_proxy(start, backend):
    b = backend()
    proxy = proxy_of(start, b, workers=1)
    assert wait_until(lambda: len(children_of(proxy.pid)) == 1, 10)
    worker = children_of(proxy.pid)[0]
    before = rss_kib(worker)
    flood = socket.create_connection((HOST, proxy.port), timeout=5)
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.setblocking(False)
    sent = flood_with_requests(flood)
    grown = rss_kib(worker) - before
    print(f"never reads: the proxy took {sent >> 10} KiB, and grew {grown} KiB")
    with proxy.connect(timeout=5) as c:
        assert c.ask("PING") == "PONG", "another client is served meanwhile"
    flood.close()
    assert sent < 32 << 20, f"the proxy went on taking requests from a client that reads nothing: {sent >> 20} MiB"
    if rss_measures_memory():
        assert grown < 16 * 1024, f"the proxy grew by {grown} KiB for a client that never reads"


def test_a_slow_backend_stops_the_proxy_reading_its_client(start):
    # The other way round: the backend holds the client's first request, and
    # the client pipelines more behind it. One request at a time per client:
    # the proxy reads that client's input up to its limit, then stops.
    stall = FakeBackend("stall")
    try:
        proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{stall.port}", "--read-timeout", "10")
        assert wait_until(lambda: len(children_of(proxy.pid)) == 1, 10)
        worker = children_of(proxy.pid)[0]
        before = rss_kib(worker)
        flood = socket.create_connection((HOST, proxy.port), timeout=5)
        flood.sendall(b"PING\n")
        assert wait_until(lambda: stall.held, 5), "the proxy never sent the first request to the backend"
        flood.setblocking(False)
        sent = flood_with_requests(flood)
        grown = rss_kib(worker) - before
        print(f"behind a stalled backend: the proxy took {sent >> 10} KiB, and grew {grown} KiB")
        flood.close()
        assert sent < 32 << 20, f"the proxy went on reading a client whose request the backend holds: {sent >> 20} MiB"
        if rss_measures_memory():
            assert grown < 16 * 1024, f"the proxy grew by {grown} KiB for a client stuck behind a slow backend"
    finally:
        stall.close()


def close_wait_sockets(ports):
    out = subprocess.run(["ss", "-Htan", "state", "close-wait"], capture_output=True, text=True, timeout=10).stdout
    return [line for line in out.splitlines() if any(f":{p} " in line or line.rstrip().endswith(f":{p}")
                                                    for p in ports)]


def test_no_socket_is_left_in_close_wait_after_rude_clients_and_a_dying_backend(start, backend, bin_dir):
    # Clients that reset mid-request or vanish mid-answer; backends that
    # close idle pooled connections (--idle-timeout 1); one backend killed
    # under load. Every socket of the proxy must be closed on its side too.
    one, two = backend("event_loop", "--idle-timeout", "1"), backend("prefork", "--workers", "2")
    proxy = proxy_of(start, one, two, args=("--read-timeout", "2"))
    for n in range(20):
        s = socket.create_connection((HOST, proxy.port), timeout=5)
        if n % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(b"SLEEP 200\nECHO " + b"x" * 5000 + b"\n")
        s.close()
    load = subprocess.Popen([bin_dir / "loadgen", "--port", str(proxy.port), "--connections", "8", "--duration", "2",
                             "--timeout", "3", "--json"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.7)
    os.kill(two.pid, signal.SIGKILL)  # its workers die with it (PDEATHSIG)
    report = json.loads(load.communicate(timeout=30)[0])
    assert report["ok"] > 100, f"the proxy stopped serving when a backend died: {report}"
    time.sleep(1.5)  # the surviving backend's --idle-timeout closes what the proxy pooled
    with proxy.connect() as c:
        assert c.ask("PING") == "PONG", "a pooled connection the backend closed is not handed out"
    left = wait_until(lambda: not close_wait_sockets([proxy.port, one.port, two.port]), 5)
    assert left, f"sockets left in CLOSE_WAIT: {close_wait_sockets([proxy.port, one.port, two.port])}"


def test_when_no_backend_is_up_a_half_closed_client_gets_its_errors_then_the_end(start):
    # Every backend down: the proxy knows the answer (ERR upstream) before it
    # has sent anything. Such an answer must still come like any other, and
    # the client's end still close the connection (before: it hung there).
    port = unused_port()  # connects are refused
    proxy = start("proxy", "--workers", "1", "--backend", f"{HOST}:{port}")
    for _ in range(3):
        with Client(HOST, proxy.port) as c:
            c.send("PING\nPING\n")
            c.sock.shutdown(socket.SHUT_WR)
            ended = c.closed_by_server(timeout=3)
            lines = c.buf.decode().splitlines()
            assert len(lines) == 2 and all(line.startswith("ERR upstream ") for line in lines), lines
            assert ended, "the proxy answered, then never closed the half-closed connection (3 s)"


def test_a_half_closed_client_gets_its_answers_then_the_end(start, backend):
    b = backend()
    proxy = proxy_of(start, b)
    with socket.create_connection((HOST, proxy.port), timeout=5) as s:
        s.sendall(b"PING\nSLEEP 100\nECHO last\n")
        s.shutdown(socket.SHUT_WR)  # done sending; still reading
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert got == b"PONG\nSLEPT 100\nlast\n", got


def test_the_proxy_master_supervises_as_06_does(start, backend, bin_dir):
    # 09 is 06's architecture: a killed worker is replaced, and a rolling
    # restart (HUP), a pool grown (TTIN) and shrunk (TTOU) under load lose no
    # request, relayed ones included.
    proxy = proxy_of(start, backend(), args=("--trace",))
    assert wait_until(lambda: len(children_of(proxy.pid)) == 2, 10), "the proxy starts 2 workers"
    victim = children_of(proxy.pid)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(children_of(proxy.pid)) == 2 and victim not in children_of(proxy.pid), 10), (
        f"worker {victim} was killed and not replaced:\n{proxy.stderr()[-1500:]}")
    with Client(HOST, proxy.port, timeout=5) as c:
        assert c.ask("PING") == "PONG", "the replacement worker relays"
    load = subprocess.Popen([bin_dir / "loadgen", "--port", str(proxy.port), "--json", "--conn-per-request",
                             "--connections", "8", "--duration", "3", "--timeout", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        for sig in [signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGHUP]:
            proxy.signal(sig)
            time.sleep(0.5)
        report = json.loads(load.communicate(timeout=30)[0])
    finally:
        load.kill()
        load.wait()
    assert proxy.stop(timeout=15) == 0, "a graceful stop exits with status 0"
    trace = proxy.stderr()
    for seen in ("SIGHUP: starting generation", "SIGTTOU: retiring worker"):
        assert seen in trace, f"no '{seen}' in the trace: the test did not exercise it"
    assert report["errors"] == 0 and report["ok"] > 100, (
        f"{report['errors']} of {report['sent']} requests lost while the proxy's workers were restarted "
        f"(HUP x2, TTIN, TTOU): {report['failures']}")
