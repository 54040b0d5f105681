#!/usr/bin/env python3
"""A cheat for lab 2 (fork): a child per connection, and a SIGCHLD handler that
reaps one child per signal, the bug lab 2's second question is about. Signals of
one kind do not queue: when children exit at the same moment, one SIGCHLD stands
for several, and the others stay zombies. Fails fork's no_zombies."""
import os
import signal

from protocol import listener, serve

signal.signal(signal.SIGCHLD, lambda *_: os.waitpid(-1, os.WNOHANG))  # one wait per SIGCHLD: the bug
sock, _ = listener()
while True:
    conn, _ = sock.accept()
    if os.fork() == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        serve(conn)
        os._exit(0)
    conn.close()
