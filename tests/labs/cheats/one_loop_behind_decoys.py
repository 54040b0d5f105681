#!/usr/bin/env python3
"""A cheat for lab 8: one thread of one process serves every connection from one
loop and counts in a plain dict, which is right for one thread (05 does it).
Around it, two idle child processes and two idle threads, so that a grader
counting processes and threads sees workers. Nothing is shared, so nothing
is learnt: fails every_incr_counted_once (one thread served all the INCRs)."""
import os
import selectors
import signal
import threading

import protocol
from protocol import MAX_COUNTERS, listener


class PlainCounters:
    def __init__(self):
        self.counts = {}

    def incr(self, name):
        if name not in self.counts and len(self.counts) >= MAX_COUNTERS:
            return None
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts[name]

    def get(self, name):
        return self.counts.get(name, 0)


def decoy():
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            signal.pause()
    return pid


def stop(*_):
    for pid in decoys:
        os.kill(pid, signal.SIGTERM)
    os._exit(0)


protocol.COUNTERS = PlainCounters()
sock, _ = listener()
decoys = [decoy(), decoy()]
for _ in range(2):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
signal.signal(signal.SIGTERM, stop)
sel = selectors.DefaultSelector()
sel.register(sock, selectors.EVENT_READ)
buffers = {}
while True:
    for key, _ in sel.select():
        if key.fileobj is sock:
            conn, _ = sock.accept()
            buffers[conn] = b""
            sel.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj
        try:
            chunk = conn.recv(65536)
        except OSError:
            chunk = b""
        buffers[conn] += chunk
        done = not chunk
        while not done and b"\n" in buffers[conn]:
            raw, _, buffers[conn] = buffers[conn].partition(b"\n")
            line = raw.rstrip(b"\r").decode(errors="replace")
            if not line.strip():
                continue
            reply, done = protocol.answer(line)
            try:
                conn.sendall(reply.encode() + b"\n")  # blocking: a small answer, a cheat
            except OSError:
                done = True
        if done:
            sel.unregister(conn)
            del buffers[conn]
            conn.close()
