#!/usr/bin/env python3
"""The answer key for lab 1 (docs/labs/1-single-process.md): the iterative server.
One connection at a time, to the end."""
from protocol import listener, serve

sock, _ = listener()
while True:
    conn, _ = sock.accept()
    serve(conn)
