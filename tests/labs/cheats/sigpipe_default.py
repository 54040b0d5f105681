#!/usr/bin/env python3
"""A cheat for lab 1: the iterative server with SIGPIPE at its default action
(Python ignores it; a C server does not unless told). The first write to a
client that reset fails with ECONNRESET and raises nothing, so a test that
makes the server write once passes; the next write to a client that closed or
reset raises SIGPIPE and ends the server. Fails single's survives_rude_clients."""
import signal

from protocol import listener, serve

signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sock, _ = listener()
while True:
    conn, _ = sock.accept()
    serve(conn)
