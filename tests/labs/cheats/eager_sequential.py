#!/usr/bin/env python3
"""A cheat for the concurrency contracts: a server whose connect()s all succeed at
once (a backlog of 4096, and every queued connection accepted before it serves
the oldest one to the end), but that serves one connection at a time. A tester
that counts connects passes it; the contracts measure answers."""
import collections
import select

from protocol import listener, serve

sock, _ = listener()
sock.listen(4096)
waiting = collections.deque()
while True:
    while select.select([sock], [], [], 0 if waiting else None)[0]:
        waiting.append(sock.accept()[0])
    serve(waiting.popleft())
