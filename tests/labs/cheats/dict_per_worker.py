#!/usr/bin/env python3
"""A cheat for lab 8 (issue 24's own example): the pool of lab 5 (2 processes x 8
threads), each worker counting in a dict of its own, under a lock for its own
threads. The dict was made before fork, but fork copies the heap: each worker
counts the INCRs it served, and GET answers that worker's count. Fails
every_incr_counted_once and each_incr_answers_its_own_count."""
import signal
import threading

import protocol
from prefork import run_pool
from protocol import MAX_COUNTERS, serve


class DictCounters:
    def __init__(self):
        self.counts, self.lock = {}, threading.Lock()  # a lock for this process's threads only

    def incr(self, name):
        with self.lock:
            if name not in self.counts and len(self.counts) >= MAX_COUNTERS:
                return None
            self.counts[name] = self.counts.get(name, 0) + 1
            return self.counts[name]

    def get(self, name):
        with self.lock:
            return self.counts.get(name, 0)


def serve_forever(sock):
    while True:
        serve(sock.accept()[0])


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for _ in range(8):
        threading.Thread(target=serve_forever, args=(sock,), daemon=True).start()
    threading.Event().wait()


protocol.COUNTERS = DictCounters()  # one dict, copied by fork into each worker
run_pool(worker)
