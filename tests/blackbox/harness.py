"""Start serverlab servers and talk to them, for the black-box tests.

Every server runs in a session of its own (start_new_session), so stopping
it means signalling its whole process group: the model and every child it
forked. Every socket and subprocess call has a timeout: a broken server
fails a test, it never hangs the suite.
"""
import os
import re
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time

LISTENING = re.compile(rb"listening on (\S+):(\d+)")
HOST = "127.0.0.1"


class Server:
    """A server process started on a free port; use as a context manager or call stop()."""

    def __init__(self, argv, startup_timeout=10.0, preexec_fn=None, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self.stderr_file, start_new_session=True, preexec_fn=preexec_fn, env=env, cwd=cwd)
        self.pid = self.proc.pid
        self.host, self.port = self._read_listening_line(startup_timeout)

    def _read_listening_line(self, timeout):
        deadline = time.monotonic() + timeout
        out = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                m = LISTENING.search(out)
                if m:
                    return m.group(1).decode(), int(m.group(2))
            elif self.proc.poll() is not None:
                break
        self.kill()
        raise AssertionError(
            f"{' '.join(self.argv)} printed no 'listening on HOST:PORT' line within {timeout} s; "
            f"stdout={out!r} stderr={self.stderr()!r}")

    def stderr(self):
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """The exit status; raises subprocess.TimeoutExpired if still running."""
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout=10.0):
        """SIGTERM, wait, and return the exit status (the group is killed afterwards regardless)."""
        try:
            if self.alive():
                self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self):
        """SIGKILL to the whole process group: nothing the server started survives."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.stdout:
            self.proc.stdout.close()

    def connect(self, timeout=5.0):
        return Client(self.host, self.port, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def unused_port():
    """A loopback port nobody listens on (bound, then released): connects to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A text-framing client: send lines, read answer lines, all with timeouts."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        """The next answer line without its LF; b'' ... raises on EOF or timeout."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"server closed the connection; unanswered bytes {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")

    def ask(self, request):
        self.send(request + "\n")
        return self.line()

    def closed_by_server(self, timeout=5.0):
        """True when the server closes the connection (EOF) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def http_exchange(port, raw, timeout=5.0):
    """Sends raw bytes, returns everything the server sent until it closed."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(raw)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except ConnectionResetError:
            pass
        return out


def splitmix64_after(n):
    """Reference splitmix64 (the answer WORK n must give), written independently of the server."""
    mask = (1 << 64) - 1
    state = z = 0
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
    return z


# ---- /proc: the process tree as the kernel sees it -------------------------------------------

def proc_stat(pid):
    """(state, ppid, pgid) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces; skip past it
    return fields[0], int(fields[1]), int(fields[2])


def wchan(pid):
    """The kernel function a sleeping process waits in (inet_csk_accept, futex_...)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def voluntary_switches(pids):
    """How often these processes went to sleep: each wakeup of an idle worker costs one."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
    return total


def all_asleep(workers, asleep_in):
    """Every one of `workers` sleeps in a kernel function whose name holds `asleep_in`
    (its /proc/PID/wchan): 'accept', 'poll', 'epoll'. A woken worker not yet run shows none."""
    return all(asleep_in in wchan(w) for w in workers)


def switches_per_connection(server, workers, asleep_in, connections=100):
    """Voluntary context switches of `workers` per connection over `connections`
    PINGs one after another, each made while every worker sleeps in `asleep_in`
    (a /proc/PID/wchan fragment): what one connection costs idle workers.

    Each connection waits for every worker to be back asleep. On a busy machine
    a woken loser may not run until the next connection is already queued; it
    then returns to accept that one, and its two wakeups cost one switch (CI
    once saw 0.16 extra switches per connection where 3 idle workers each woke
    for nothing). The herd is still there; it must be counted one connection
    at a time, as `./lab herd` does."""
    before = voluntary_switches(workers)
    for _ in range(connections):
        assert wait_until(lambda: all_asleep(workers, asleep_in), timeout=5, interval=0.002), (
            f"workers did not all sleep in {asleep_in}: {[wchan(w) for w in workers]}")
        with server.connect() as c:
            assert c.ask("PING") == "PONG"
    return (voluntary_switches(workers) - before) / connections


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children_of(pid):
    """Live (non-zombie) children of `pid`."""
    return sorted(p for p in all_pids() if (s := proc_stat(p)) and s[1] == pid and s[0] != "Z")


def zombies_of(pid):
    return sorted(p for p in all_pids() if (s := proc_stat(p)) and s[1] == pid and s[0] == "Z")


def group_members(pgid):
    """Every process still in the process group (the server and whatever it forked)."""
    return sorted(p for p in all_pids() if (s := proc_stat(p)) and s[2] == pgid)


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns something true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def kv(line):
    """'a=1 b=x' -> {'a': '1', 'b': 'x'}"""
    return dict(pair.split("=", 1) for pair in line.split())


def ping_behind_busy_connections(server, busy, ms=1000):
    """`busy` clients each send SLEEP ms, then QUIT; one more client then sends PING.

    Returns (seconds from the SLEEPs until the PING was answered, the busy clients' answers).
    A model that serves `busy` connections at once and no more makes the PING wait about ms.
    """
    holders = [server.connect(timeout=10) for _ in range(busy)]
    try:
        began = time.monotonic()
        for h in holders:
            h.send(f"SLEEP {ms}\nQUIT\n")  # the connection (and so its process) is free after ms
        time.sleep(0.2)
        with server.connect(timeout=10) as extra:
            assert extra.ask("PING") == "PONG"
            answered = time.monotonic() - began
        return answered, [h.line() for h in holders]
    finally:
        for h in holders:
            h.close()


def echo_from_clients(server, clients, per_client, timeout=60):
    """`clients` threads each make `per_client` connections with one ECHO; returns the errors seen."""
    errors = []

    def client(n):
        try:
            for i in range(per_client):
                with server.connect() as c:
                    assert c.ask(f"ECHO {n}.{i}") == f"{n}.{i}"
        except Exception as e:  # noqa: BLE001 - reported with the client number
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return errors


def who_on_open_connections(server, count):
    """Opens `count` connections, asks WHO on each while all are open, and closes them: who served each."""
    clients = [server.connect() for _ in range(count)]
    try:
        return [kv(c.ask("WHO")) for c in clients]
    finally:
        for c in clients:
            c.close()


# ---- WORK, calibrated on this machine ---------------------------------------------------------

MAX_WORK_STEPS = 1_000_000_000  # protocol.md: WORK takes at most this many steps


def work_rate(server):
    """WORK steps per second of this server's build on this machine now (a WORK of 50 million, timed).
    Tests that need a request to take a while ask for it in seconds, not in steps: a student's CPU
    may be three times faster than the one a figure was written on, a sanitizer build much slower."""
    with server.connect(timeout=60) as c:
        began = time.monotonic()
        assert c.ask("WORK 50000000").startswith("WORKED 50000000 ")
        return 50_000_000 / max(time.monotonic() - began, 1e-3)


def rss_kib(pid):
    """The resident memory of process `pid`, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def rss_measures_memory():
    """Whether a server's growth in RSS says how much it holds. Under ASan it does not: freed
    memory waits in ASan's quarantine (256 MiB by default) and its shadow memory grows with the
    heap. There a test checks what the server took in; the release build checks both."""
    return os.environ.get("SERVERLAB_SANITIZER") != "address"


def pipelined_ping_time(server, size=1 << 16):
    """Seconds this server's build, on this machine now, takes to answer `size` bytes of PINGs
    pipelined on one connection: what a loop's turn costs when it reads that much at once. A
    sanitizer build takes several times longer than a release build."""
    count = size // len(b"PING\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        began = time.monotonic()
        sender = threading.Thread(target=s.sendall, args=(b"PING\n" * count,))  # answers flow back meanwhile
        sender.start()
        got = 0
        while got < count * len(b"PONG\n"):
            data = s.recv(1 << 16)
            if not data:
                break
            got += len(data)
        sender.join(timeout=30)
        return time.monotonic() - began


def work_lines(server, seconds):
    """WORK requests that keep one thread busy about `seconds` here, one after another: as many
    WORKs of at most MAX_WORK_STEPS as it takes. Returns the text to send (one line each)."""
    steps = int(work_rate(server) * seconds)
    lines = []
    while steps > 0:
        lines.append(f"WORK {min(steps, MAX_WORK_STEPS)}\n")
        steps -= MAX_WORK_STEPS
    return "".join(lines)


def incr_from_clients(server, clients=20, each=50):
    """`clients` threads each send `each` INCR hits, a connection per INCR, so
    that the counting is spread over every worker, thread or loop. Returns
    the errors seen (empty: every INCR was answered VALUE)."""
    errors = []

    def one():
        try:
            for _ in range(each):
                with server.connect(timeout=10) as c:
                    got = c.ask("INCR hits")
                    assert got.startswith("VALUE "), got
        except Exception as e:  # noqa: BLE001 - reported
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def counts_read(server, count=12):
    """GET hits on `count` connections: {who answered (pid, tid): the value it read}."""
    seen = {}
    for _ in range(count):
        with server.connect() as c:
            value = c.ask("GET hits")
            who = kv(c.ask("WHO"))
            seen[(who["pid"], who["tid"])] = int(value.split()[1])
    return seen
