#!/usr/bin/env python3
"""A cheat for the concurrency contracts: 3 workers forked before any client, each
holding an exclusive lock from accept() to the end of the connection. The lock
is flock() on a file beside this script that each worker opens itself (a flock
belongs to an open file, so one file opened before fork would be shared and
exclude no one). Several processes, the concurrency of lab 1."""
import fcntl
import os
import signal

from protocol import listener, serve

sock, _ = listener()
lock_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool.lock")
workers = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        lock = open(lock_path, "w")
        while True:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the whole pool waits while one connection is served
            serve(sock.accept()[0])
            fcntl.flock(lock, fcntl.LOCK_UN)
    workers.append(pid)


def stop(*_):
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    exit(0)


signal.signal(signal.SIGTERM, stop)
while True:
    signal.pause()
