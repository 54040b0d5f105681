#!/usr/bin/env python3
"""Carol's server in docs/course.md ("Grading a class"): a lab 1 hand-in that
speaks only PING and ignores SIGTERM. Run as `python3 server.py PORT`.

Every other request is answered at once with ERR, and a client that leaves or
resets ends only its own connection. So of lab 1's contracts it passes
survives_rude_clients alone, and fails the other four the same way on every
run, without waiting on a time limit except clean_sigterm's 5 s: ECHO and
SLEEP are answered ERR, and SIGTERM does nothing. tests/blackbox/test_grader.py
grades it as the page does and compares the page's CSV with what comes out.
"""
import signal
import socket
import sys

signal.signal(signal.SIGTERM, signal.SIG_IGN)
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(128)
while True:
    conn, _ = sock.accept()
    with conn:
        buf = b""
        try:
            while chunk := conn.recv(4096):
                buf += chunk
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    conn.sendall(b"PONG\n" if line.strip().upper() == b"PING" else b"ERR I only know PING\n")
        except OSError:  # reset by the client, or gone before the answer: serve the next one
            pass
