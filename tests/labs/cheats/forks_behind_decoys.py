#!/usr/bin/env python3
"""A cheat for the pool labs: two idle "workers" forked at start, while the master
accepts every connection and forks a child for it. The workers exist before any
client and never change, but they serve nothing. Fails fixed_pool: the
connections are held by processes forked after the clients came."""
import os
import signal

from protocol import listener, serve

sock, _ = listener()
decoys = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            signal.pause()
    decoys.append(pid)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the per-connection children


def stop(*_):
    for pid in decoys:
        os.kill(pid, signal.SIGTERM)
    os._exit(0)


signal.signal(signal.SIGTERM, stop)
while True:
    conn, _ = sock.accept()
    if os.fork() == 0:
        sock.close()
        serve(conn)
        os._exit(0)
    conn.close()
