#!/usr/bin/env python3
"""A cheat for lab 8: one process, a thread per connection, one dict for all of
them and no lock. INCR reads the count, lets other threads run (the sleep
stands for whatever a real server does between the two: a log line, a
lookup), then writes count + 1: two threads that read the same count both
write count + 1, and one INCR is lost. Fails every_incr_counted_once (GET
below the INCRs sent) and each_incr_answers_its_own_count (the same VALUE
twice)."""
import threading
import time

import protocol
from protocol import MAX_COUNTERS, listener, serve


class UnlockedCounters:
    def __init__(self):
        self.counts = {}

    def incr(self, name):
        if name not in self.counts and len(self.counts) >= MAX_COUNTERS:
            return None
        value = self.counts.get(name, 0)
        time.sleep(0.001)  # read ... write: another thread's INCR lands in between
        self.counts[name] = value + 1
        return value + 1

    def get(self, name):
        return self.counts.get(name, 0)


protocol.COUNTERS = UnlockedCounters()
sock, _ = listener()
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
