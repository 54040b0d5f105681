#!/usr/bin/env python3
"""A cheat for the concurrency contracts: 3 workers forked before any client, each
holding an exclusive lock from accept() to the end of the connection. The lock
is a POSIX record lock (lockf) on an unlinked temporary file opened before the
fork: such a lock belongs to the process, not to the open file, so the
inherited descriptor excludes the other workers (a flock would be shared by all).
Several processes, the concurrency of lab 1."""
import fcntl
import os
import signal
import tempfile

from protocol import listener, serve

sock, _ = listener()
lock = tempfile.TemporaryFile()  # no name, nothing left behind however the pool is stopped
workers = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        while True:
            fcntl.lockf(lock, fcntl.LOCK_EX)  # the whole pool waits while one connection is served
            serve(sock.accept()[0])
            fcntl.lockf(lock, fcntl.LOCK_UN)
    workers.append(pid)


def stop(*_):
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    exit(0)


signal.signal(signal.SIGTERM, stop)
while True:
    signal.pause()
