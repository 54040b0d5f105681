#!/usr/bin/env python3
"""A cheat for lab 9: a thread per client, each with a backend connection of its
own, relaying line by line. When the client leaves, its thread ends and
closes the client's socket, but never the backend's: each is kept in a list.
When the backend closes them, they wait in CLOSE_WAIT for a close() that never
comes. Fails nothing_left_in_close_wait."""
import socket
import threading

from protocol import listener

sock, options = listener(backend=True)
upstreams = []  # every backend connection ever opened, never closed


def relay(conn):
    with conn:
        try:
            upstream = socket.create_connection(options.backend)
        except OSError as e:
            conn.sendall(f"ERR upstream {e.strerror}\n".encode())
            return
        upstreams.append(upstream)
        reader = upstream.makefile("rb")
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return  # the client left: the upstream stays open
            buf += chunk
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                if not line.strip():
                    continue
                try:
                    upstream.sendall(line + b"\n")
                    answer = reader.readline() or b"ERR upstream closed the connection\n"
                    conn.sendall(answer)
                except OSError:
                    return


while True:
    conn, _ = sock.accept()
    threading.Thread(target=relay, args=(conn,), daemon=True).start()
