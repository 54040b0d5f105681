#!/usr/bin/env python3
"""A cheat for lab 7: event_loop.py's loop (one thread, SLEEP a timer, an output
buffer per connection sent without waiting, reading stopped above a limit),
except that once a connection is readable the loop reads it until a whole
line has come, blocking in recv() for the rest. Clients that send whole lines
(a hundred sleepers, pipelined ECHOs) are served as by a loop; a client that
has sent half a line holds up every other until it sends the rest. Fails
split_request_does_not_stall_others."""
import heapq
import itertools
import selectors
import socket
import time

from protocol import MAX_LINE, answer, listener

LIMIT = 1 << 20  # unsent answers above this: stop reading that connection


class Connection:
    def __init__(self, sock):
        self.sock, self.inbuf, self.outbuf = sock, b"", bytearray()
        self.events, self.sleeping, self.closing, self.closed = 0, False, False, False


sel = selectors.DefaultSelector()
timers = []  # a heap of (due, sequence, connection, ms)
sequence = itertools.count()


def watch(conn):
    events = selectors.EVENT_READ if not (conn.closing or conn.sleeping or len(conn.outbuf) >= LIMIT) else 0
    events |= selectors.EVENT_WRITE if conn.outbuf else 0
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


def answer_lines(conn):
    while not conn.sleeping and not conn.closing and b"\n" in conn.inbuf:
        raw, _, conn.inbuf = conn.inbuf.partition(b"\n")
        line = raw.rstrip(b"\r").decode(errors="replace")
        if not line.strip():
            continue
        word, _, arg = line.lstrip(" \t").partition(" ")
        if word.upper() == "SLEEP" and arg.isdigit() and int(arg) <= 60000:
            conn.sleeping = True
            heapq.heappush(timers, (time.monotonic() + int(arg) / 1000, next(sequence), conn, arg))
        else:
            reply, conn.closing = answer(line)
            conn.outbuf += reply.encode() + b"\n"


def progress(conn, readable=False):
    try:
        if readable:
            chunk = conn.sock.recv(65536)
            while chunk and b"\n" not in conn.inbuf + chunk and len(conn.inbuf + chunk) <= MAX_LINE:
                conn.inbuf += chunk
                chunk = conn.sock.recv(65536)  # the socket is blocking: the whole loop waits for this client's LF
            if not chunk:
                return close(conn)
            conn.inbuf += chunk
            if b"\n" not in conn.inbuf:  # more than MAX_LINE without LF
                conn.outbuf += b"ERR line too long\n"
                conn.closing = True
        answer_lines(conn)
        if conn.outbuf:
            del conn.outbuf[:conn.sock.send(conn.outbuf, socket.MSG_DONTWAIT)]  # what fits now, never waiting
    except BlockingIOError:
        pass
    except OSError:
        return close(conn)
    if conn.closing and not conn.outbuf:
        return close(conn)
    watch(conn)


listening, _ = listener()
listening.setblocking(False)
sel.register(listening, selectors.EVENT_READ, None)
while True:
    timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else None
    for key, events in sel.select(timeout):
        if key.data is None:
            while True:
                try:
                    client, _ = listening.accept()
                except OSError:  # EAGAIN (none left), ECONNABORTED, EMFILE
                    break
                client.setblocking(True)
                watch(Connection(client))
        elif not key.data.closed:
            progress(key.data, readable=events & selectors.EVENT_READ)
    now = time.monotonic()
    while timers and timers[0][0] <= now:
        _, _, conn, ms = heapq.heappop(timers)
        if not conn.closed:
            conn.sleeping = False
            conn.outbuf += f"SLEPT {ms}\n".encode()
            progress(conn)
