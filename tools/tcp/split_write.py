#!/usr/bin/env python3
"""A client that writes each request in two pieces ("PI", then "NG\\n") and
waits for the answer: the write-write-read pattern that meets Nagle's
algorithm and the delayed ACK (docs/tcp.md).

With Nagle on (the default), the second piece waits until the first is
acknowledged; the server, holding half a request and nothing to send,
delays its ACK (40 ms at least on Linux). With --nodelay the client sets
TCP_NODELAY and both pieces leave at once.

    python3 tools/tcp/split_write.py --port 8080 [--nodelay]
"""
import argparse
import socket
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--count", type=int, default=20, help="requests (default 20)")
    ap.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY on the client's socket")
    args = ap.parse_args()
    try:
        s = socket.create_connection((args.host, args.port), timeout=5)
    except OSError as e:
        sys.exit(f"split_write: cannot connect to {args.host}:{args.port}: {e.strerror}")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if args.nodelay else 0)
    answers = s.makefile("rb")
    took = []
    for _ in range(args.count):
        began = time.monotonic()
        s.send(b"PI")
        s.send(b"NG\n")
        if answers.readline() != b"PONG\n":
            sys.exit("split_write: the server did not answer PONG")
        took.append(time.monotonic() - began)
    median = statistics.median(took)
    verdict = "the second piece waited for the server's delayed ACK" if median >= 0.035 else "no wait"
    print(f"TCP_NODELAY {'on' if args.nodelay else 'off'}: median {median:.3f} s: {verdict}")


if __name__ == "__main__":
    main()
