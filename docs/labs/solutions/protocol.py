"""The text framing of docs/protocol.md, the part a lab's server must speak:
PING, ECHO, SLEEP, QUIT, and ERR for anything else. Standard library only.

Shared by the answer keys beside this file (one per lab): serve(conn)
answers one connection until the client leaves or sends QUIT, and the
servers differ only in who calls it. Lab 8 adds INCR and GET: a key sets
COUNTERS to where its counts live, and answer() checks the names.
"""
import argparse
import re
import select
import signal
import socket
import time

MAX_LINE = 8192
MAX_COUNTERS = 1024  # names a server keeps (lab 8); the next new one is refused
COUNTER_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

# Where INCR and GET count (lab 8): an object with incr(name) -> the new count, or None when the
# name is new and MAX_COUNTERS names are taken; and get(name) -> the count, 0 for a name never
# counted. None: INCR and GET are unknown commands, as in labs 1 to 7.
COUNTERS = None


def counter(word, name):
    """The answer to INCR or GET (lab 8)."""
    name = name.strip(" \t")
    if not COUNTER_NAME.fullmatch(name):
        if not name:
            return "ERR a counter needs a name"
        if len(name.encode()) > 64:
            return "ERR a counter name has at most 64 bytes"
        return "ERR a counter name is letters, digits, '_', '-', '.' and ':'"
    if word == "GET":
        return f"VALUE {COUNTERS.get(name)}"
    value = COUNTERS.incr(name)
    return f"ERR too many counters (at most {MAX_COUNTERS})" if value is None else f"VALUE {value}"


def answer(line):
    """One request line (without LF) -> (answer line, close after it?)."""
    word, _, rest = line.lstrip(" \t").partition(" ")
    word = word.upper()
    if word == "PING" and not rest:
        return "PONG", False
    if word == "ECHO":
        return rest, False
    if word == "SLEEP" and rest.isdigit() and int(rest) <= 60000:
        time.sleep(int(rest) / 1000)
        return f"SLEPT {rest}", False
    if word == "QUIT":
        return "BYE", True
    if word in ("INCR", "GET") and COUNTERS is not None:
        return counter(word, rest), False
    printable = "".join(c if c.isprintable() else "?" for c in word[:32])
    return f"ERR unknown command '{printable}'", False


def readable(fd):
    """True when `fd` has something to read now (select with a zero timeout)."""
    return bool(select.select([fd], [], [], 0)[0])


def serve(conn, stop_fd=None):
    """Answers every complete line; returns when the client closes, resets or QUITs.

    stop_fd (lab 6) is the read end of a pipe that becomes readable when the
    process must stop: serve() then returns after answering the request in
    hand, or at once if it is waiting for the next request.
    """
    buf = b""
    with conn:
        while True:
            if stop_fd is not None:  # wait for the client or for the stop, whichever comes first
                ready, _, _ = select.select([conn, stop_fd], [], [])
                if stop_fd in ready:
                    return  # between requests: none is in hand, close now
            try:
                chunk = conn.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                raw, _, buf = buf.partition(b"\n")
                line = raw.rstrip(b"\r").decode(errors="replace")
                if not line.strip():
                    continue
                reply, close = answer(line)
                try:
                    conn.sendall(reply.encode() + b"\n")  # Python ignores SIGPIPE: a gone client raises instead
                except OSError:
                    return
                if close or stop_fd is not None and readable(stop_fd):
                    return
            if len(buf) > MAX_LINE:
                conn.sendall(b"ERR line too long\n")
                return


def host_port(text):
    """--backend's HOST:PORT -> (host, port), as socket.create_connection() takes it."""
    host, _, port = text.rpartition(":")
    return host, int(port)


def listener(backend=False):
    """Parses --port and --workers (and with `backend`, lab 9's --backend HOST:PORT, into options.backend
    as (host, port)), and returns (listening socket, options)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--workers", type=int, default=2)
    if backend:
        parser.add_argument("--backend", type=host_port, required=True, help="HOST:PORT of the server to relay to")
    options = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", options.port))
    sock.listen(128)
    print(f"listening on 127.0.0.1:{options.port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: exit(0))  # SystemExit: `with` blocks close their sockets
    return sock, options
