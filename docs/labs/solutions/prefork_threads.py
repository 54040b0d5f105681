#!/usr/bin/env python3
"""The answer key for lab 5 (docs/labs/5-threads.md): prefork.py's pool, with
M threads in each worker, each thread accepting and serving one connection
at a time: N processes x M threads connections at once.

The threads block in accept() on the shared socket, as prefork.py's workers
do: the kernel hands each connection to one waiting thread, in whichever
process. A thread blocked in accept() or sleeping releases CPython's GIL,
so the threads serve SLEEPs side by side. The master is prefork.py's."""
import signal
import threading

from prefork import run_pool
from protocol import serve

THREADS = 8  # per worker: 2 workers serve 16 clients at once, the 17th waits in the accept queue


def serve_forever(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except ConnectionAbortedError:
            continue  # the client left before we took it
        serve(conn)


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the whole process, every thread, stops at once
    threads = [threading.Thread(target=serve_forever, args=(sock,), daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # forever: a thread only returns by an exception, and then the worker exits


run_pool(worker)
