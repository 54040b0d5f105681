#!/usr/bin/env python3
"""A cheat for lab 2: a child per connection, written as in C on the bare
descriptor accept() returned: the child serves it and exits, and the parent
never closes its own copy. The parent reaps every child (a SIGCHLD handler
that waits in a loop) and clients are served at once, but each connection
leaves a descriptor in the parent, which also keeps the connection open after
the child closed it: a client that QUITs never sees the end of file. Fails
no_fd_leak (and protocol_answers: after BYE the connection stays open)."""
import os
import signal
import socket

from protocol import listener, serve


def reap(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


sock, _ = listener()
signal.signal(signal.SIGCHLD, reap)
while True:
    fd = sock.accept()[0].detach()  # the descriptor alone, as in C
    if os.fork() == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        serve(socket.socket(fileno=fd))
        os._exit(0)
    # the parent's copy of fd: never closed
