#!/usr/bin/env python3
"""The answer key for lab 8 (docs/labs/8-state.md): prefork_threads.py's pool (N
processes x M threads), counting INCR once across all of them. The counters
live in one table in shared memory, mapped before fork so that every worker
sees the same pages, and every INCR changes it under one lock, shared by the
threads and the processes alike.

The table is fixed-size, as the toolkit's SharedStore is: 2048 slots of
(name length, name, count), open addressing from a CRC of the name; a slot
once taken keeps its name for good, so a worker may remember where a name
lives. A dict could not be shared: it lives in one process's heap, and after
fork each worker has a copy of its own (tests/labs/cheats/dict_per_worker.py).

The lock is multiprocessing's (a POSIX semaphore, in /dev/shm): it excludes
threads and processes alike. The read, the +1, the write and the answer's
value are one step under it; without it two workers read the same count and
both write count + 1 (tests/labs/cheats/unlocked_threads.py). A worker killed
while holding it leaves it held for good: the toolkit uses atomic increments
in shared memory instead (common/process/shared_state.hpp), which Python's
standard library does not offer."""
import mmap
import multiprocessing
import signal
import struct
import threading
import zlib

import protocol
from prefork import run_pool
from protocol import MAX_COUNTERS, serve

THREADS = 8
SLOTS = 2 * MAX_COUNTERS       # half full at most: probes stay short
SLOT = struct.Struct("=B64sQ")  # name length (0: free), name, count
HEADER = struct.Struct("=I")    # names taken


class SharedCounters:
    """The counters, in a shared anonymous mapping: made before fork, it is the same memory in every worker."""

    def __init__(self):
        self.table = mmap.mmap(-1, HEADER.size + SLOTS * SLOT.size)  # MAP_SHARED | MAP_ANONYMOUS
        self.lock = multiprocessing.Lock()
        self.where = {}  # name -> slot, this process's memo (a slot never changes its name)

    def _offset(self, slot):
        return HEADER.size + slot * SLOT.size

    def _find(self, name, add):
        """The slot of `name`, or None. Called with the lock held."""
        if name in self.where:
            return self.where[name]
        key = name.encode()
        slot = zlib.crc32(key) % SLOTS
        while True:
            length, stored, _ = SLOT.unpack_from(self.table, self._offset(slot))
            if length == 0:  # free: the name is not in the table
                if not add or HEADER.unpack_from(self.table, 0)[0] >= MAX_COUNTERS:
                    return None
                SLOT.pack_into(self.table, self._offset(slot), len(key), key, 0)
                HEADER.pack_into(self.table, 0, HEADER.unpack_from(self.table, 0)[0] + 1)
                break
            if stored[:length] == key:
                break
            slot = (slot + 1) % SLOTS
        self.where[name] = slot
        return slot

    def incr(self, name):
        with self.lock:  # the read, the +1 and the write: one step for the whole server
            slot = self._find(name, add=True)
            if slot is None:
                return None
            at = self._offset(slot) + 1 + 64
            value = struct.unpack_from("=Q", self.table, at)[0] + 1
            struct.pack_into("=Q", self.table, at, value)
            return value

    def get(self, name):
        with self.lock:
            slot = self._find(name, add=False)
            return 0 if slot is None else struct.unpack_from("=Q", self.table, self._offset(slot) + 1 + 64)[0]


def serve_forever(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except ConnectionAbortedError:
            continue
        serve(conn)


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threads = [threading.Thread(target=serve_forever, args=(sock,), daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


protocol.COUNTERS = SharedCounters()  # before run_pool forks: the mapping and the lock are inherited
run_pool(worker)
