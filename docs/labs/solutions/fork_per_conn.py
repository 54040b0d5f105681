#!/usr/bin/env python3
"""Lab 2: a child per connection, reaped on SIGCHLD."""
import os
import signal

from protocol import listener, serve


def reap(*_):
    # Several children may have exited for one SIGCHLD: reap them all, never block.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


sock, _ = listener()
signal.signal(signal.SIGCHLD, reap)  # Python retries accept() after the handler (PEP 475: no EINTR)
while True:
    conn, _ = sock.accept()
    if os.fork() == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sock.close()  # the child serves one connection, it does not accept
        serve(conn)
        os._exit(0)
    conn.close()  # the parent's copy: without this close, every connection leaks a descriptor
