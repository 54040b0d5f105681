#!/usr/bin/env python3
"""The answer key for lab 6 (docs/labs/6-supervision.md): prefork_exclusive.py's
pool under a master that supervises: it replaces a worker that dies (with a
back-off for one that keeps dying at start), and on SIGTERM stops gracefully:
each worker answers the request in hand, then exits; the master waits for
them, SIGKILLs whoever is still busy after GRACE seconds, and exits last.

No signal handler runs in the master: it blocks SIGCHLD, SIGTERM and SIGINT
and takes them one at a time from signal.sigtimedwait() in a flat loop, which
removes a signal from the pending set without delivering it. nginx's master
blocks its signals too, but sleeps in sigsuspend(), which unblocks them for
the wait: its handler (ngx_signal_handler) runs and sets flags that the loop
then reads. sigtimedwait() is the handler-free alternative, not nginx's way.
A worker's handler does nothing itself: Python's C-level handler writes into
the worker's stop pipe (signal.set_wakeup_fd), and the worker's epoll and
serve() watch that pipe.
"""
import ctypes
import os
import select
import signal
import time

from protocol import listener, readable, serve

GRACE = 10.0  # seconds a worker may take to finish its request after SIGTERM
WATCHED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
PR_SET_PDEATHSIG = 1


def worker_main(sock, master):
    # The mask came from the master: SIGTERM waits, pending, until the stop pipe is ready.
    stop_r, stop_w = os.pipe()
    os.set_blocking(stop_w, False)
    signal.set_wakeup_fd(stop_w)  # a signal with a Python handler writes a byte here
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # if the master is killed, stop too
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WATCHED)
    if os.getppid() != master:
        return  # the master died before prctl: nobody will send that SIGTERM
    waiter = select.epoll()
    waiter.register(sock, select.EPOLLIN | select.EPOLLEXCLUSIVE)  # one worker woken per connection (lab 4)
    waiter.register(stop_r, select.EPOLLIN)
    while True:
        ready = [fd for fd, _ in waiter.poll()]
        if stop_r in ready:
            return  # idle: nothing in hand
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            continue  # another worker won the race
        serve(conn, stop_fd=stop_r)  # returns early, after the answer in hand, once stop_r is readable
        if readable(stop_r):
            return


def spawn_worker(sock):
    """Forks a worker; returns its pid in the master only."""
    master = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            worker_main(sock, master)
            os._exit(0)
        finally:
            os._exit(1)
    return pid


def reap_children(workers):
    """Removes every dead worker from `workers`; returns how many lived less than a second."""
    quick = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return quick
        if pid == 0:
            return quick
        started = workers.pop(pid, None)
        if started is not None and time.monotonic() - started < 1.0:
            quick += 1


def shutdown_workers(workers):
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    while workers and time.monotonic() < deadline:
        signal.sigtimedwait({signal.SIGCHLD}, max(0.0, deadline - time.monotonic()))
        reap_children(workers)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)  # still busy after GRACE seconds
    while workers:
        pid, _ = os.wait()
        workers.pop(pid, None)


signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)  # before any fork: the workers start with it too
sock, options = listener()
sock.setblocking(False)
workers = {}  # pid -> when it started: the one table of the pool
quick_deaths, respawn_at = 0, 0.0
while True:
    now = time.monotonic()
    if len(workers) < options.workers and now >= respawn_at:
        workers[spawn_worker(sock)] = now
        continue
    wait = max(0.01, respawn_at - now) if len(workers) < options.workers else 1.0
    info = signal.sigtimedwait(WATCHED, wait)
    if info is None:
        continue
    if info.si_signo in (signal.SIGTERM, signal.SIGINT):
        break
    quick = reap_children(workers)
    # A worker that keeps dying at start must not become a fork loop: the first
    # quick death is replaced at once, then the delay doubles from 0.1 s to 10 s.
    quick_deaths = quick_deaths + quick if quick else 0
    if quick_deaths >= 2:
        respawn_at = time.monotonic() + min(0.1 * 2 ** (quick_deaths - 2), 10.0)
shutdown_workers(workers)
