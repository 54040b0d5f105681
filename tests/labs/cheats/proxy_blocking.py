#!/usr/bin/env python3
"""A cheat for lab 9: a proxy in one thread that, for each request line, opens a
connection to the backend, sends the line, reads the whole answer, closes,
and only then writes the answer to its client. Every answer is right, and
every client waits while any one request is at the backend. Fails
slow_backend_request_does_not_block_others."""
import selectors
import socket

from protocol import listener

sock, options = listener(backend=True)


def ask_backend(line):
    with socket.create_connection(options.backend) as upstream:  # a connection per request
        upstream.sendall(line + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):  # blocks the whole proxy until the backend answers
            chunk = upstream.recv(65536)
            if not chunk:
                return b"ERR upstream closed the connection\n"
            answer += chunk
        return answer


sel = selectors.DefaultSelector()
sel.register(sock, selectors.EVENT_READ)
buffers = {}
while True:
    for key, _ in sel.select():
        if key.fileobj is sock:
            conn, _ = sock.accept()
            buffers[conn] = b""
            sel.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj
        try:
            chunk = conn.recv(65536)
        except OSError:
            chunk = b""
        buffers[conn] += chunk
        done = not chunk
        while not done and b"\n" in buffers[conn]:
            line, _, buffers[conn] = buffers[conn].partition(b"\n")
            if not line.strip():
                continue
            try:
                answer = ask_backend(line.rstrip(b"\r"))
            except OSError as e:
                answer = f"ERR upstream {e.strerror}\n".encode()
            try:
                conn.sendall(answer)
            except OSError:
                done = True
            done = done or answer == b"BYE\n"
        if done:
            sel.unregister(conn)
            del buffers[conn]
            conn.close()
