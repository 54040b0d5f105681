#!/usr/bin/env python3
"""A cheat for lab 7: a real event loop (one thread, non-blocking sockets, a
selector, SLEEP as a timer, an output buffer per connection written when the
socket is writable) that never stops reading. Whatever a client sends is read
and answered into its output buffer, sent or not: a client that pipelines
ECHOs and reads nothing grows the server by every answer. Each other client
is served on time. Fails backpressure_for_a_client_that_never_reads."""
import heapq
import itertools
import selectors
import time

from protocol import answer, listener

sock, _ = listener()
sock.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(sock, selectors.EVENT_READ)
inbuf, outbuf, asleep, closing = {}, {}, set(), set()
timers, sequence = [], itertools.count()


def watch(conn):
    sel.modify(conn, selectors.EVENT_READ | (selectors.EVENT_WRITE if outbuf[conn] else 0))


def drop(conn):
    sel.unregister(conn)
    for table in (inbuf, outbuf):
        del table[conn]
    asleep.discard(conn)
    closing.discard(conn)
    conn.close()


def serve_lines(conn):
    start = 0  # bytearrays, and one cut per read: appending costs what it appends, not the buffer's size
    while conn not in asleep and conn not in closing and (end := inbuf[conn].find(b"\n", start)) >= 0:
        text = inbuf[conn][start:end].rstrip(b"\r").decode(errors="replace")
        start = end + 1
        word, _, arg = text.partition(" ")
        if word.upper() == "SLEEP" and arg.isdigit() and int(arg) <= 60000:
            asleep.add(conn)
            heapq.heappush(timers, (time.monotonic() + int(arg) / 1000, next(sequence), conn, arg))
        elif text.strip():
            reply, close = answer(text)
            outbuf[conn] += reply.encode() + b"\n"  # no limit: the flaw
            if close:
                closing.add(conn)
    del inbuf[conn][:start]
    watch(conn)


while True:
    wait = max(0.0, timers[0][0] - time.monotonic()) if timers else None
    for key, events in sel.select(wait):
        conn = key.fileobj
        if conn is sock:
            try:
                c, _ = sock.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            inbuf[c], outbuf[c] = bytearray(), bytearray()
            sel.register(c, selectors.EVENT_READ)
            continue
        if conn not in inbuf:
            continue
        try:
            if events & selectors.EVENT_READ:
                data = conn.recv(65536)
                if not data:
                    drop(conn)
                    continue
                inbuf[conn] += data
                serve_lines(conn)
            if events & selectors.EVENT_WRITE and outbuf[conn]:
                del outbuf[conn][:conn.send(outbuf[conn])]
                if not outbuf[conn] and conn in closing:
                    drop(conn)
                    continue
                watch(conn)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            drop(conn)
    while timers and timers[0][0] <= time.monotonic():
        _, _, conn, arg = heapq.heappop(timers)
        if conn in inbuf:
            asleep.discard(conn)
            outbuf[conn] += f"SLEPT {arg}\n".encode()
            serve_lines(conn)
