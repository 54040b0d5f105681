#!/usr/bin/env python3
"""The answer key for lab 4 (docs/labs/4-herd.md): prefork.py's pool, with
workers that wait in poll() on a non-blocking listening socket, then accept.

poll() is not exclusive: one connection can wake every idle worker, all of
them call accept(), one gets the connection and the others get EAGAIN
(BlockingIOError), which means "another worker won": go back to poll().
With a blocking socket a loser would instead sleep inside accept() until
the next connection, out of poll()'s sight. The master is prefork.py's."""
import os
import select
import signal
import time

from protocol import listener, serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    waiter = select.poll()
    waiter.register(sock, select.POLLIN)
    while True:
        waiter.poll()  # every idle worker may wake for the same connection: the herd
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            continue  # EAGAIN: another worker took it (or the client left): wait again
        serve(conn)  # the accepted socket is blocking: Linux does not pass O_NONBLOCK on from the listener


def spawn(sock):
    pid = os.fork()
    if pid == 0:
        try:
            worker(sock)
        finally:
            os._exit(1)
    return pid


sock, options = listener()
sock.setblocking(False)  # before fork: the flag belongs to the socket every worker shares
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
