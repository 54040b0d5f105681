#!/usr/bin/env python3
"""A cheat for lab 8: a thread per connection and one dict under a lock, with no
limit on its names: protocol.py refuses bad names, but every new good name is
added, so a client that counts names of its own (a counter per request id, per
client address) grows the server's memory without end. Every count is right.
Fails counter_names_and_limit: the 1025th name is counted, not refused."""
import threading

import protocol
from protocol import listener, serve


class UnboundedCounters:
    def __init__(self):
        self.counts, self.lock = {}, threading.Lock()

    def incr(self, name):
        with self.lock:  # never None: no MAX_COUNTERS
            self.counts[name] = self.counts.get(name, 0) + 1
            return self.counts[name]

    def get(self, name):
        with self.lock:
            return self.counts.get(name, 0)


protocol.COUNTERS = UnboundedCounters()
sock, _ = listener()
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
