#!/usr/bin/env python3
"""A cheat for lab 1: the iterative server written as in C, on the bare
descriptor accept() returned (os.read, os.write), which it closes after QUIT's
BYE and on no other path: a client that leaves without QUIT, or resets, leaves
its descriptor open in the server for good (and its connection in CLOSE_WAIT).
Every answer is right, QUIT closes as it should, and the server dies of EMFILE
after ulimit -n clients. Fails no_fd_leak."""
import os

from protocol import answer, listener

sock, _ = listener()
while True:
    conn, _ = sock.accept()
    fd = conn.detach()  # the descriptor alone, as in C: nothing closes it but os.close()
    buf, done = b"", False
    while not done:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break  # a reset: the descriptor is forgotten, not closed
        if not chunk:
            break  # the client left: the descriptor is forgotten, not closed
        buf += chunk
        while b"\n" in buf and not done:
            raw, _, buf = buf.partition(b"\n")
            line = raw.rstrip(b"\r").decode(errors="replace")
            if not line.strip():
                continue
            reply, close = answer(line)
            try:
                os.write(fd, reply.encode() + b"\n")
            except OSError:
                done = True  # a client gone: forgotten too
                break
            if close:
                os.close(fd)  # the one path that closes
                done = True
