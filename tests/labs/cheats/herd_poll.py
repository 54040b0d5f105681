#!/usr/bin/env python3
"""A cheat for lab 4: the herd created, not tamed. Workers wait in poll() on a
non-blocking listening socket, which every idle worker wakes from for each
connection; one accepts, the others get EAGAIN and go back to poll. It passes
workers_wait_in_poll, and fails few_workers_woken: all the workers wake."""
import os
import select
import signal

from protocol import listener, serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    waiter = select.poll()
    waiter.register(sock, select.POLLIN)
    while True:
        waiter.poll()  # every idle worker wakes for the same connection: the herd
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            continue
        serve(conn)


sock, options = listener()
sock.setblocking(False)
workers = []
for _ in range(options.workers):
    pid = os.fork()
    if pid == 0:
        worker(sock)
    workers.append(pid)
signal.signal(signal.SIGTERM, lambda *_: [os.kill(pid, signal.SIGTERM) for pid in workers])
for _ in workers:
    os.wait()
