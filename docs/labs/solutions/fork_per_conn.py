#!/usr/bin/env python3
"""The answer key for lab 2 (docs/labs/2-fork-per-connection.md): a child per
connection, reaped by the main loop after SIGCHLD.

The SIGCHLD handler does nothing itself: docs/02-fork-per-connection.md calls
reaping inside a handler a classic bug, and this server follows the lesson.
(In CPython it would happen to be safe: the C-level handler only records the
signal, and the Python function runs later in the main thread between two
bytecodes. A C server has no such luck.) Instead Python's C-level handler
writes the signal's number into a pipe (signal.set_wakeup_fd: the self-pipe
trick), and the main loop waits in select() on the listening socket and that
pipe: a dead child wakes it even when no client comes, and it reaps there.
"""
import os
import select
import signal

from protocol import listener, serve


def reap_children():
    # One SIGCHLD may stand for several dead children: reap them all, never block.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no child left
        if pid == 0:
            return  # the others are still running


sock, _ = listener()
sock.setblocking(False)  # select() said readable, but the client may have gone (reset) before accept()
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)  # the C-level handler must never block on a full pipe
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD reaches the pipe (SIG_DFL discards it)
while True:
    ready, _, _ = select.select([sock, wake_r], [], [])
    if wake_r in ready:
        os.read(wake_r, 512)  # the bytes only woke us: empty the pipe, then reap
        reap_children()
    if sock not in ready:
        continue
    try:
        conn, _ = sock.accept()
    except (BlockingIOError, ConnectionAbortedError):
        continue
    if os.fork() == 0:
        signal.set_wakeup_fd(-1)  # the pipe and the handlers are the parent's
        os.close(wake_r)
        os.close(wake_w)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sock.close()  # the child serves one connection, it does not accept
        serve(conn)
        os._exit(0)
    conn.close()  # the parent's copy: without this close, every connection leaks a descriptor
