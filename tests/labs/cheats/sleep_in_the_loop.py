#!/usr/bin/env python3
"""A cheat for lab 7: one thread, one select loop, an input buffer per
connection, and each complete line answered by protocol.py's answer(), whose
SLEEP is time.sleep(): the whole loop stops for each sleeper in turn. One
sleeper is answered on time, and a half line never holds up the others; a
hundred sleepers take a hundred seconds. Fails hundred_sleepers_at_once
(and, by the same sleep, concurrency and one_thread_serves_all; by its
blocking sendall(), backpressure_for_a_client_that_never_reads)."""
import selectors

from protocol import MAX_LINE, answer, listener

sock, _ = listener()
sel = selectors.DefaultSelector()
sel.register(sock, selectors.EVENT_READ)
buffers = {}


def drop(conn):
    sel.unregister(conn)
    del buffers[conn]
    conn.close()


while True:
    for key, _ in sel.select():
        if key.fileobj is sock:
            conn, _ = sock.accept()
            buffers[conn] = b""
            sel.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj
        try:
            chunk = conn.recv(65536)  # readable: this recv does not wait
        except OSError:
            chunk = b""
        if not chunk:
            drop(conn)
            continue
        buffers[conn] += chunk
        close = False
        while not close and b"\n" in buffers[conn]:
            raw, _, buffers[conn] = buffers[conn].partition(b"\n")
            line = raw.rstrip(b"\r").decode(errors="replace")
            if not line.strip():
                continue
            reply, close = answer(line)  # SLEEP n: time.sleep(n / 1000), and every other client waits
            try:
                conn.sendall(reply.encode() + b"\n")
            except OSError:
                close = True
        if close or len(buffers[conn]) > MAX_LINE:
            drop(conn)
