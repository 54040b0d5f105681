#!/usr/bin/env python3
"""The answer key for lab 5 (docs/labs/5-threads.md): prefork.py's pool, with
M threads in each worker, each thread accepting and serving one connection
at a time: N processes x M threads connections at once.

The threads block in accept() on the shared socket, as prefork.py's workers
do: the kernel hands each connection to one waiting thread, in whichever
process. A thread blocked in accept() or sleeping releases CPython's GIL,
so the threads serve SLEEPs side by side. The master is prefork.py's."""
import os
import signal
import threading
import time

from protocol import listener, serve

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
        t.join()  # forever: a thread only returns by an exception, and then the master starts a new worker


def spawn(sock):
    pid = os.fork()
    if pid == 0:
        try:
            worker(sock)
        finally:
            os._exit(1)
    return pid


sock, options = listener()
workers = {spawn(sock) for _ in range(options.workers)}
stopping = False


def stop(*_):
    # os.wait() is retried after a handler returns (PEP 475), so setting a
    # flag alone would not wake the master: stopping the workers does.
    global stopping
    stopping = True
    for pid in workers:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


signal.signal(signal.SIGTERM, stop)
while not stopping:
    try:
        pid, _ = os.wait()  # a worker died: replace it
    except ChildProcessError:
        break
    workers.discard(pid)
    if not stopping:
        workers.add(spawn(sock))
        time.sleep(0.05)  # a worker that dies at once must not turn this into a fork loop
for pid in workers:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
