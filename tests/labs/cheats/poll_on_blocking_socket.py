#!/usr/bin/env python3
"""A cheat for lab 4: prefork.py's pool whose workers wait in poll(), as the lab
asks, on a listening socket left blocking. Idle, they sit in poll as they
should, and every one wakes for each connection (the herd); but a worker that
gets past poll after another took the connection does not find EAGAIN: it
blocks in accept(), out of poll's sight, as lab 3's workers do, until the next
connection. The grader reads the socket's flags in /proc/PID/fdinfo. Fails
workers_wait_in_poll (and few_workers_woken)."""
import select
import signal

from prefork import run_pool
from protocol import serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    waiter = select.poll()
    waiter.register(sock, select.POLLIN)
    while True:
        waiter.poll()
        try:
            conn, _ = sock.accept()  # blocking: a worker that lost the race sleeps here, not in poll
        except ConnectionAbortedError:
            continue
        serve(conn)


run_pool(worker)  # no prepare: the listening socket stays blocking
