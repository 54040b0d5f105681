#!/usr/bin/env python3
"""The answer key for lab 7 (docs/labs/7-event-loop.md): one process, one thread, one loop.
Every socket is non-blocking and watched by a selector (epoll on Linux); SLEEP
is a timer in a heap; each connection has an input and an output buffer."""
import heapq
import itertools
import selectors
import time

from protocol import MAX_LINE, listener

LIMIT = 1 << 20  # unsent answers (or unread requests) above this: stop reading that connection


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.inbuf = bytearray()   # bytearray: appending and dropping a sent prefix cost
        self.outbuf = bytearray()  # in proportion to the bytes moved, not to the buffer's size
        self.events = 0        # what the selector watches for it now (0: not registered)
        self.sleeping = False  # a SLEEP runs: the requests after it wait for its answer
        self.closing = False   # QUIT answered, or a line too long: close once the output is sent
        self.closed = False


sel = selectors.DefaultSelector()
timers = []                   # a heap of (due, sequence, connection, ms)
sequence = itertools.count()  # breaks ties in `due`, so connections are never compared


def watch(conn):
    """Registers what the connection waits for now. Backpressure is the first
    condition: with LIMIT bytes unsent we stop reading, the kernel's buffers
    fill, and the client's send() blocks, instead of our memory growing."""
    events = 0
    if not conn.closing and len(conn.outbuf) < LIMIT and len(conn.inbuf) < LIMIT:
        events |= selectors.EVENT_READ
    if conn.outbuf:
        events |= selectors.EVENT_WRITE
    if events == conn.events:
        return
    if conn.events == 0:
        sel.register(conn.sock, events, conn)
    elif events == 0:
        sel.unregister(conn.sock)
    else:
        sel.modify(conn.sock, events, conn)
    conn.events = events


def close(conn):
    if conn.events:
        sel.unregister(conn.sock)
    conn.sock.close()
    conn.closed = True


def answer(conn):
    """Answers the complete lines in the input, in order, until a SLEEP (its
    timer answers it and resumes) or until LIMIT bytes of answers are unsent."""
    while not conn.sleeping and not conn.closing and len(conn.outbuf) < LIMIT:
        end = conn.inbuf.find(b"\n")
        if end < 0:
            if len(conn.inbuf) > MAX_LINE:
                conn.outbuf += b"ERR line too long\n"
                conn.closing = True
            return
        line = conn.inbuf[:end].rstrip(b"\r").decode(errors="replace")
        del conn.inbuf[:end + 1]
        if not line.strip():
            continue
        word, _, arg = line.lstrip(" \t").partition(" ")
        word = word.upper()
        if word == "SLEEP" and arg.isdigit() and int(arg) <= 60000:
            conn.sleeping = True
            heapq.heappush(timers, (time.monotonic() + int(arg) / 1000, next(sequence), conn, arg))
        elif word == "PING" and not arg:
            conn.outbuf += b"PONG\n"
        elif word == "ECHO":
            conn.outbuf += arg.encode() + b"\n"
        elif word == "QUIT":
            conn.outbuf += b"BYE\n"
            conn.closing = True
        else:
            printable = "".join(c if c.isprintable() else "?" for c in word[:32])
            conn.outbuf += f"ERR unknown command '{printable}'\n".encode()


def progress(conn, readable=False):
    """One step for a connection: read what came, answer what is complete,
    send what the kernel takes now (a partial send keeps the rest), watch again."""
    try:
        if readable:
            chunk = conn.sock.recv(65536)
            if not chunk:  # the client closed: nothing more to answer to
                return close(conn)
            conn.inbuf += chunk
        answer(conn)
        if conn.outbuf:  # whatever woke us: a non-blocking send takes what fits, or raises BlockingIOError
            sent = conn.sock.send(conn.outbuf)
            del conn.outbuf[:sent]
    except BlockingIOError:
        pass
    except OSError:  # reset, broken pipe (Python ignores SIGPIPE, so send raises instead)
        return close(conn)
    if conn.closing and not conn.outbuf:
        return close(conn)
    watch(conn)


def main():
    listening, _ = listener()
    listening.setblocking(False)
    sel.register(listening, selectors.EVENT_READ, None)
    # SIGTERM: listener() made it raise SystemExit, which ends the loop
    # wherever it is; the process exits and the kernel closes every socket.
    while True:
        timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else None
        for key, events in sel.select(timeout):
            if key.data is None:  # the listening socket: take every connection waiting
                while True:
                    try:
                        client, _ = listening.accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        break
                    except OSError:  # out of descriptors: the client waits in the backlog
                        break
                    client.setblocking(False)
                    watch(Connection(client))
            else:
                progress(key.data, readable=events & selectors.EVENT_READ)
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, conn, ms = heapq.heappop(timers)
            if not conn.closed:
                conn.sleeping = False
                conn.outbuf += f"SLEPT {ms}\n".encode()
                progress(conn)


main()
