#!/usr/bin/env python3
"""A cheat for lab 8: a thread per connection and one count under a lock, for
every name: INCR adds one to it and answers it, GET answers it. INCRs are
counted once, each answered its own count, and GET changes nothing, as long as
the clients count one name; two names count as one. Fails
get_does_not_count_and_names_are_independent."""
import threading

import protocol
from protocol import listener, serve


class OneCount:
    def __init__(self):
        self.count, self.lock = 0, threading.Lock()

    def incr(self, name):
        with self.lock:
            self.count += 1  # whatever the name
            return self.count

    def get(self, name):
        with self.lock:
            return self.count


protocol.COUNTERS = OneCount()
sock, _ = listener()
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
