"""What the contracts watch from outside a server, in any language: where its threads
are blocked, who holds which connection, how much CPU each thread used, and
clients that measure answers (never connects: the kernel completes a connect as
soon as the connection is queued, served or not)."""
import collections
import os
import platform
import socket
import struct
import threading
import time

import proc


def settle(predicate, timeout=5.0, interval=0.05):
    """Polls `predicate` until it is true or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# ---- answers and their times -------------------------------------------------------------------

SLEEP_RULE = "a SLEEP must wait at least its milliseconds"


def slept_too_little(ms, took_s):
    """The complaint when `SLEEP ms` was answered after `took_s` seconds, or None. The time runs from
    the client's send to its receipt, so it can only exceed the server's wait."""
    if took_s < ms / 1000:
        return f"SLEEP {ms} was answered after {took_s * 1000:.0f} ms: {SLEEP_RULE}"
    return None


def answers_within(clients, seconds, quiet=None, since=None):
    """Reads one answer line from each client until all answered, `seconds` passed, or (with
    `quiet`) no new answer came for `quiet` seconds. Returns {index: (line, seconds since `since`,
    a time.monotonic() taken before the requests were sent, or since the call)}."""
    began = time.monotonic() if since is None else since
    got, last = {}, began
    for c in clients:
        c.sock.setblocking(False)
    try:
        while len(got) < len(clients):
            now = time.monotonic()
            if now - began > seconds or (quiet is not None and now - last > quiet):
                break
            progress = False
            for i, c in enumerate(clients):
                if i in got:
                    continue
                try:
                    chunk = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    got[i] = (None, now - began)  # closed without an answer
                    continue
                c.buf += chunk
                if b"\n" in c.buf:
                    line, _, c.buf = c.buf.partition(b"\n")
                    got[i] = (line.decode(errors="replace").rstrip("\r"), time.monotonic() - began)
                    progress = True
            if progress:
                last = time.monotonic()
            else:
                time.sleep(0.005)
    finally:
        for c in clients:
            try:
                c.sock.setblocking(True)
                c.sock.settimeout(5)
            except OSError:
                pass
    return got


def ping_seconds(server, timeout=5):
    """Seconds a new client's PING took to be answered PONG (from after its connect), or inf when
    it got another answer or none within `timeout`."""
    with server.connect(timeout=timeout) as c:
        began = time.monotonic()
        try:
            return time.monotonic() - began if c.ask("PING") == "PONG" else float("inf")
        except (TimeoutError, OSError):
            return float("inf")


def sleepers_and_a_ping(server, sleepers, ms):
    """`sleepers` clients send SLEEP ms then QUIT at once; then one more client PINGs.
    Returns (seconds the PING took, seconds until every sleeper was answered, a complaint or None);
    a PING with no answer within 5 s counts as inf."""
    holders = [server.connect(timeout=15) for _ in range(sleepers)]
    try:
        began = time.monotonic()
        for h in holders:
            h.send(f"SLEEP {ms}\nQUIT\n")  # each connection ends after its sleep: a stalled PING gets through later
        time.sleep(0.1)
        ping_s = ping_seconds(server)
        complaint = None
        for h in holders:
            got = h.line()
            took = time.monotonic() - began
            if got != f"SLEPT {ms}":
                complaint = f"SLEEP {ms} was answered {got!r}"
            complaint = complaint or slept_too_little(ms, took)
        return ping_s, time.monotonic() - began, complaint
    finally:
        for h in holders:
            h.close()


def reset_on_close(client):
    """Makes close() send RST instead of FIN (SO_LINGER with a zero timeout)."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# ---- who holds what ----------------------------------------------------------------------------

def held_connections(server, client_ports=None):
    """{client port: {pids of the server that hold its connection}} for the connections the server has
    accepted (one still in the backlog has no descriptor yet, and is left out), from /proc/net/tcp and
    each process's /proc/PID/fd."""
    sockets = {remote: inode for state, _, remote, inode in proc.tcp_sockets(server.port)
               if state == proc.ESTABLISHED and inode and (client_ports is None or remote in client_ports)}
    owners = proc.holders(server.processes(), sockets.values())
    return {port: owners.get(inode, set()) for port, inode in sockets.items()}


def holder_pids(server, client_ports=None):
    """{pids of the server that hold one of those connections or more}: held_connections' owners, together."""
    return {p for owners in held_connections(server, client_ports).values() for p in owners}


def listening_sockets(server):
    """{pid: [(fd, nonblocking)]}: the descriptors of the server's listening sockets on its port, per process."""
    inodes = {inode for state, _, _, inode in proc.tcp_sockets(server.port) if state == proc.LISTEN}
    held = {}
    for pid in server.processes():
        for inode, fds in proc.socket_fds(pid).items():
            if inode in inodes:
                for fd in fds:
                    flags = proc.fd_flags(pid, fd)
                    held.setdefault(pid, []).append((fd, flags is not None and bool(flags & os.O_NONBLOCK)))
    return held


def port_of(client):
    return client.sock.getsockname()[1]


# ---- where a thread waits ------------------------------------------------------------------------

# The first field of /proc/PID/task/TID/syscall is the number of the system
# call the thread is blocked in (syscall(2) numbers differ by architecture).
SYSCALLS = {
    "x86_64": {7: "poll", 23: "select", 232: "epoll_wait", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait",
               441: "epoll_pwait2", 43: "accept", 288: "accept4", 0: "read", 45: "recvfrom", 202: "futex",
               61: "wait4", 230: "clock_nanosleep", 34: "pause", 128: "rt_sigtimedwait", 72: "fcntl", 73: "flock",
               65: "semop"},
    "aarch64": {72: "pselect6", 73: "ppoll", 22: "epoll_pwait", 441: "epoll_pwait2", 202: "accept",
                242: "accept4", 63: "read", 207: "recvfrom", 98: "futex", 260: "wait4", 115: "clock_nanosleep",
                137: "rt_sigtimedwait", 25: "fcntl", 32: "flock", 193: "semop"},
}
POLL_FAMILY = {"poll", "select", "epoll_wait", "pselect6", "ppoll", "epoll_pwait", "epoll_pwait2"}
ACCEPTS = {"accept", "accept4"}
LOCKS = {"futex", "fcntl", "flock", "semop"}  # a lock around the wait: one worker polls, the others queue here


def blocked_in(pid, tid):
    """The system call thread `tid` of `pid` is blocked in ('poll', 'accept4', 'syscall 999'), or
    'running'; None when it is gone. Where the architecture's numbers are not in SYSCALLS, the
    kernel function it sleeps in (/proc/.../wchan) is mapped onto the same names."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall") as f:
            first = f.read().split()[0]
        table = SYSCALLS.get(platform.machine())
        if first == "running":
            return "running"
        if table is not None:
            return table.get(int(first), f"syscall {first}")
        with open(f"/proc/{pid}/task/{tid}/wchan") as f:
            wchan = f.read()
    except (OSError, IndexError, ValueError):
        return None
    if "accept" in wchan:
        return "accept"
    if "futex" in wchan or "lock" in wchan:
        return "futex"
    return "poll" if "poll" in wchan or "select" in wchan else f"kernel function {wchan}"


def waits(pid):
    """What each thread of `pid` is blocked in: {tid: name}."""
    return {tid: what for tid in proc.tasks(pid) if (what := blocked_in(pid, tid))}


# ---- CPU per thread ------------------------------------------------------------------------------

def thread_cpu(pid):
    """{tid: CPU ticks} of the live threads of a process."""
    return {tid: s[3] for tid in proc.tasks(pid) if (s := proc.stat(pid, tid))}


def echo_load(server, clients=20, batch=50, min_ticks=40, min_s=1.0, max_s=4.0):
    """`clients` connections each pipeline `batch` ECHOs and read the answers, round after round,
    for at least `min_s` s and until the server's processes used `min_ticks` of CPU (at most
    `max_s` s). Returns (per-thread CPU ticks used {(pid, tid): ticks}, the processes' ticks,
    seconds, rounds); the processes' total counts threads that ended meanwhile."""
    conns = [server.connect(timeout=10) for _ in range(clients)]
    payload = "".join(f"ECHO {i:03d} turns the loop\n" for i in range(batch)).encode()

    def snapshot():
        pids = server.processes()
        return ({(p, t): ticks for p in pids for t, ticks in thread_cpu(p).items()},
                sum(s[3] for p in pids if (s := proc.stat(p))))

    try:
        before, before_total = snapshot()
        began, rounds = time.monotonic(), 0
        while True:
            for c in conns:
                c.sock.sendall(payload)
            for c in conns:  # a round's answers, and nothing more: the next round is not sent yet
                lines = 0
                while lines < batch:
                    chunk = c.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("the server closed a connection in the middle of the load")
                    lines += chunk.count(b"\n")
            rounds += 1
            after, after_total = snapshot()
            took = time.monotonic() - began
            if took >= max_s or (took >= min_s and after_total - before_total >= min_ticks):
                break
    finally:
        for c in conns:
            c.close()
    used = {k: after[k] - before.get(k, 0) for k in after}
    return used, after_total - before_total, took, rounds


def thread_cpu_ns(server):
    """{(pid, tid): nanoseconds on a CPU} of every live thread of the server (schedstat)."""
    return {(p, t): ns for p in server.processes() for t in proc.tasks(p) if (ns := proc.cpu_ns(p, t)) is not None}


def flood_without_reading(server):
    """A client pipelines `ECHO` requests of 4 KB, up to 96 MiB (for at most 15 s, or until a send
    blocks for 2 s: the server stopped reading), and reads nothing; then another client PINGs.
    Returns (bytes sent, seconds the PING took (inf: no PONG within 5 s), MiB the server's VmRSS
    grew by meanwhile)."""
    line = b"ECHO " + b"x" * 4000 + b"\n"
    flood = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    flood.settimeout(2)  # a send blocked this long: the server has stopped reading
    before = sum(proc.rss_kib(p) for p in server.processes())
    sent, began = 0, time.monotonic()
    try:
        chunk = line * 256  # about 1 MiB per sendall
        while sent < 96 * 1024 * 1024 and time.monotonic() - began < 15:
            flood.sendall(chunk)
            sent += len(chunk)
    except (TimeoutError, socket.timeout, OSError):
        pass
    try:
        ping_s = ping_seconds(server, timeout=5)
        grew_mib = (sum(proc.rss_kib(p) for p in server.processes()) - before) / 1024
    finally:
        flood.close()
    return sent, ping_s, grew_mib


# ---- lab 8: counters ----------------------------------------------------------------------------

class IncrLoad:
    """What incr_load saw: the answer lines, errors, the processes that held the clients'
    connections, each thread's CPU meanwhile, how many connections sent how many INCRs."""

    def __init__(self, answers, errors, holders, cpu, clients, sent):
        self.answers, self.errors, self.holders, self.cpu = answers, errors, holders, cpu
        self.clients, self.sent = clients, sent


def placed_connections(server, wanted=16, most=48, batch=4, timeout=30):
    """Connections opened `batch` at a time, each sending a PING (answers awaited until none came
    for 0.3 s), until `wanted` are open and, when the server is several processes, two of them hold
    some (`most` at most): an event loop takes every connection waiting in one turn, so a burst
    may all land on one worker, and the next batch, arriving while it works, wakes another.
    Returns (clients, {index of each client whose PONG was read})."""
    clients, ponged = [], set()
    while len(clients) < most:
        new = [server.connect(timeout=timeout) for _ in range(batch)]
        for c in new:
            c.send("PING\n")
        got = answers_within(new, 3, quiet=0.3)
        ponged |= {len(clients) + i for i, (line, _) in got.items() if line == "PONG"}
        clients += new
        if len(clients) < wanted:
            continue
        holders = holder_pids(server, {port_of(c) for c in clients})
        if len(holders) >= 2 or len(server.processes()) == 1:
            break
    return clients, ponged


def incr_load(server, name, rounds_of, batch=10, timeout=30):
    """Connections placed over the server's workers (placed_connections), all at once each sending
    `rounds_of(n)` batches (n: the connection's index) of `batch` pipelined `INCR name`, reading
    one batch's answers before sending the next, then closing. A server that serves a few
    connections at a time serves the others after them (they wait in its backlog). Meanwhile
    the processes holding the server's side of these connections, and each thread's CPU, are
    sampled from /proc every 20 ms."""
    conns, ponged = placed_connections(server, timeout=timeout)
    ports = {port_of(c) for c in conns}
    rounds = [rounds_of(n) for n in range(len(conns))]
    answers, errors = [], []
    request = f"INCR {name}\n".encode() * batch

    def client(n, c):
        try:
            if n not in ponged and c.line() != "PONG":  # its PING's answer came after placed_connections looked
                errors.append("a PING was not answered PONG")
            for _ in range(rounds[n]):
                c.sock.sendall(request)
                answers.extend(c.line() for _ in range(batch))
        except (OSError, ConnectionError) as e:
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=client, args=(n, c)) for n, c in enumerate(conns)]
    before = thread_cpu_ns(server)
    latest = dict(before)  # each thread's CPU when last seen: a thread per connection ends with its client
    began = time.monotonic()
    holders = holder_pids(server, ports)  # a fast load ends at once
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) and time.monotonic() - began < timeout:
        holders |= holder_pids(server, ports)
        latest.update(thread_cpu_ns(server))
        time.sleep(0.02)
    for t in threads:
        t.join(timeout=1)
    latest.update(thread_cpu_ns(server))
    cpu = {k: ns - before.get(k, 0) for k, ns in latest.items()}
    return IncrLoad(answers, errors, holders, cpu, len(conns), sum(rounds) * batch)


def asked_at_once(server, request, clients=16):
    """`clients` connections at once each send `request` then QUIT (so that a server serving a few
    at a time goes on to the next); returns the first answer line of each (None: none within 10 s)."""
    conns = [server.connect(timeout=10) for _ in range(clients)]
    try:
        for c in conns:
            c.send(f"{request}\nQUIT\n")
        got = answers_within(conns, 10)
    finally:
        for c in conns:
            c.close()
    return [got.get(i, (None, 0))[0] for i in range(clients)]


# ---- lab 9: a proxy ----------------------------------------------------------------------------

def close_wait_sockets(server, ports):
    """{pid: count} of the sockets in CLOSE_WAIT (the peer closed, this side has not) that the
    server's processes hold, among those whose local or remote port is in `ports`; what
    `ss -tan state close-wait` shows, read from /proc/net/tcp."""
    inodes = {inode for state, local, remote, inode in proc.tcp_table()
              if state == proc.CLOSE_WAIT and inode and (local in ports or remote in ports)}
    return collections.Counter(p for pids in proc.holders(server.processes(), inodes).values() for p in pids)
