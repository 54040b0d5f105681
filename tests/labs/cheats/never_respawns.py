#!/usr/bin/env python3
"""A cheat for lab 6: the graceful half of supervision alone. prefork.py's
master, which reaps a dead worker and forks no other, over workers that stop
gracefully: on SIGTERM each answers the request in hand, then exits (serve()
watches a stop pipe, as supervised.py's workers do), and the master waits for
them all. A killed worker is never replaced; once all are dead the master
exits. Fails respawn."""
import os
import select
import signal

from prefork import run_pool
from protocol import readable, serve


def worker(sock):
    stop_r, stop_w = os.pipe()
    os.set_blocking(stop_w, False)
    signal.set_wakeup_fd(stop_w)  # SIGTERM writes a byte here
    signal.signal(signal.SIGTERM, lambda *_: None)
    while True:
        ready, _, _ = select.select([sock, stop_r], [], [])
        if stop_r in ready:
            return  # idle: nothing in hand
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            continue
        serve(conn, stop_fd=stop_r)  # answers the request in hand, then returns
        if readable(stop_r):
            return


run_pool(worker, lambda sock: sock.setblocking(False))
