#!/usr/bin/env python3
"""A cheat for lab 9: takes --backend and never uses it. A thread per client,
each answered by the proxy itself (protocol.py's serve): every answer is right
and SLEEP takes its time, but no request reaches the backend. Fails
relays_to_the_backend."""
import threading

from protocol import listener, serve

sock, _ = listener(backend=True)
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
