#!/usr/bin/env python3
"""A cheat for labs 3 and 6: a prefork pool whose master exits on SIGTERM without
telling its workers. They live on, orphaned, still accepting: a grader that only
looks below the master's pid finds nothing left. Fails clean_sigterm (and
supervision's graceful_stop): the grader, their subreaper, adopted them."""
import os
import signal

from protocol import listener, serve

sock, options = listener()
for _ in range(options.workers):
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # lives on after the master, as orphans do
        while True:
            conn, _ = sock.accept()
            serve(conn)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # gone, without a word to the workers
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
