#!/usr/bin/env python3
"""The answer key for lab 3 (docs/labs/3-prefork.md): N workers forked before
any client arrives, each blocking in accept(). The master replaces a worker
that dies and, on SIGTERM, stops them all."""
import os
import signal
import time

from protocol import listener, serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        conn, _ = sock.accept()  # the kernel wakes one worker per connection
        serve(conn)


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
