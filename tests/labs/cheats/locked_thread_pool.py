#!/usr/bin/env python3
"""A cheat for lab 5: 2 workers x 8 threads, but each worker's threads take one
lock around serve(): a thread pool that serves one connection at a time per
process, with as many threads as the real thing. Fails
threads_serve_more_than_processes: 8 sleeping clients take four turns."""
import os
import signal
import threading

from protocol import listener, serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    lock = threading.Lock()

    def serve_forever():
        while True:
            conn, _ = sock.accept()
            with lock:  # the whole process waits while one connection is served
                serve(conn)

    threads = [threading.Thread(target=serve_forever, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    threads[0].join()


sock, options = listener()
workers = []
for _ in range(options.workers):
    pid = os.fork()
    if pid == 0:
        worker(sock)
        os._exit(1)
    workers.append(pid)
signal.signal(signal.SIGTERM, lambda *_: [os.kill(pid, signal.SIGTERM) for pid in workers])
for _ in workers:
    os.wait()
