#!/usr/bin/python3
"""c10k_probe.py PORT [IDLE] [PID]: hold IDLE idle connections to a server, then time new clients.

Opens IDLE connections (default 10000) to 127.0.0.1:PORT, has each ask one
PING (so the server really holds it, not only the kernel's backlog), keeps
them all open, and then times 50 new clients, one at a time: connect, PING,
answer, close. With PID, prints the server's resident memory too. This is
the figure docs/results.md quotes for 05: what a new client sees while the
server holds ten thousand others. Raises its own descriptor limit (root, or
a hard limit above IDLE, is needed for 10000).
"""
import resource
import socket
import statistics
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[0])
    port = int(sys.argv[1])
    idle = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
    want = idle + 100
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, PermissionError):
        sys.exit(f"c10k_probe: cannot raise the descriptor limit to {want} (hard limit {hard}; run as root)")
    held = []
    began = time.monotonic()
    try:
        for _ in range(idle):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        for s in held:
            s.sendall(b"PING\n")
        for s in held:
            if s.recv(16) != b"PONG\n":
                sys.exit("c10k_probe: an idle connection got no PONG")
    except OSError as e:
        sys.exit(f"c10k_probe: after {len(held)} connections: {e}")
    opened = time.monotonic() - began
    took = []
    for _ in range(50):
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"PING\n")
            if c.recv(16) != b"PONG\n":
                sys.exit("c10k_probe: a new client got no PONG")
        took.append((time.monotonic() - start) * 1000)
        time.sleep(0.02)
    rss = ""
    if pid:
        with open(f"/proc/{pid}/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        rss = f"; server RSS {kib / 1024:.1f} MiB"
    print(f"{idle} idle connections held, each answered a PING ({opened:.1f} s to open){rss}; "
          f"50 new clients, connect + PING + answer: median {statistics.median(took):.2f} ms, "
          f"max {max(took):.2f} ms")


if __name__ == "__main__":
    main()
