#!/usr/bin/env python3
"""A cheat for lab 1: the iterative server that takes each recv() for one
request: it answers the first line of what a read returned and drops the rest.
A client that sends a request and waits for its answer before the next (a
person at nc, or a tester that asks one at a time) gets every answer right;
requests pipelined in one write lose all but the first. Fails
protocol_pipelining_and_errors."""
from protocol import answer, listener

sock, _ = listener()
while True:
    conn, _ = sock.accept()
    with conn:
        while True:
            try:
                chunk = conn.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            line = chunk.partition(b"\n")[0].rstrip(b"\r").decode(errors="replace")  # the rest of the read is lost
            if not line.strip():
                continue
            reply, close = answer(line)
            try:
                conn.sendall(reply.encode() + b"\n")
            except OSError:
                break
            if close:
                break
