#!/usr/bin/env python3
"""A cheat for labs 1 to 6: an iterative server whose SLEEP answers at once, with
two idle children (forked again when they die) and one idle thread, so that a
grader counting processes and threads sees a pool. It never serves two clients
at once. Fails single's protocol_answers (the SLEEP takes no time), fork's
concurrency and no_zombies, and fixed_pool wherever a pool is graded (the main
process holds every connection)."""
import os
import signal
import threading
import types

import protocol
from protocol import listener, serve

protocol.time = types.SimpleNamespace(sleep=lambda seconds: None)  # SLEEP n answers at once


def decoy():
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        while True:
            signal.pause()
    return pid


def replace_dead(*_):
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        decoys.discard(pid)
        decoys.add(decoy())


def stop(*_):
    for pid in decoys:
        os.kill(pid, signal.SIGTERM)
    os._exit(0)


sock, _ = listener()
decoys = {decoy(), decoy()}
threading.Thread(target=threading.Event().wait, daemon=True).start()  # an idle thread
signal.signal(signal.SIGCHLD, replace_dead)
signal.signal(signal.SIGTERM, stop)
while True:
    conn, _ = sock.accept()
    serve(conn)
