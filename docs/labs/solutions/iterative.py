#!/usr/bin/env python3
"""Lab 1: the iterative server. One connection at a time, to the end."""
from protocol import listener, serve

sock, _ = listener()
while True:
    conn, _ = sock.accept()
    serve(conn)
