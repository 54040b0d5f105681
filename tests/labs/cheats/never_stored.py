#!/usr/bin/env python3
"""A cheat for lab 8: a thread per connection and one dict under a lock, whose INCR
answers the count plus one but never writes it back: every INCR answers
VALUE 1, and GET stays 0. Fails every_incr_counted_once and
each_incr_answers_its_own_count."""
import threading

import protocol
from protocol import listener, serve


class NeverStored:
    def __init__(self):
        self.counts, self.lock = {}, threading.Lock()

    def incr(self, name):
        with self.lock:
            return self.counts.get(name, 0) + 1  # computed, answered, never stored

    def get(self, name):
        with self.lock:
            return self.counts.get(name, 0)


protocol.COUNTERS = NeverStored()
sock, _ = listener()
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
