#!/usr/bin/env python3
"""The answer key for lab 3 (docs/labs/3-prefork.md): N workers forked before
any client arrives, each blocking in accept(). The master waits for them
(no zombie), and on SIGTERM stops them all; replacing a worker that dies is
lab 6's. The keys of labs 4, 5 and 8 import run_pool() and bring their own worker."""
import os
import signal

from protocol import listener, serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        conn, _ = sock.accept()  # the kernel wakes one worker per connection
        serve(conn)


def spawn(sock, worker):
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by the master, below
            worker(sock)
        finally:
            os._exit(1)
    return pid


def run_pool(worker, prepare=lambda sock: None):
    """The master: listens, lets `prepare` set the socket up before fork, forks the workers, waits."""
    sock, options = listener()
    prepare(sock)
    # The port accepts, and the first worker serves, before the last is forked: a SIGTERM then
    # must wait for stop() below, or the master would exit and leave its workers running.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    workers = {spawn(sock, worker) for _ in range(options.workers)}

    def send(sig):
        for pid in list(workers):  # unreaped children only: their pids cannot have been reused
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def stop(*_):
        # os.wait() is retried after a handler returns (PEP 475), so setting a
        # flag alone would not wake the master: stopping the workers does.
        send(signal.SIGTERM)
        # A stop must end: a worker still there 2 s later is killed (03's
        # --graceful-timeout, gunicorn's graceful_timeout). SIGALRM interrupts
        # os.wait() below, and the handler runs before the wait goes on.
        signal.signal(signal.SIGALRM, lambda *_: send(signal.SIGKILL))
        signal.alarm(2)

    signal.signal(signal.SIGTERM, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    while workers:  # a worker that died is reaped, not replaced
        try:
            pid, _ = os.wait()
        except ChildProcessError:
            break
        workers.discard(pid)


if __name__ == "__main__":
    run_pool(worker)
