#!/usr/bin/env python3
"""The answer key for lab 4 (docs/labs/4-herd.md): prefork.py's pool, with
workers that wait in epoll on a non-blocking listening socket, registered with
EPOLLEXCLUSIVE (Linux 4.5): for each connection the kernel wakes one of the
workers waiting, not all of them. The same pool with poll() wakes every idle
worker, and all but one find nothing (tests/labs/cheats/herd_poll.py: the herd).

A woken worker may still find nothing to accept (EAGAIN, BlockingIOError): a
worker that was not waiting, and so was not woken, took the connection first.
It goes back to epoll. With a blocking socket it would sleep in accept()
instead, out of epoll's sight. The master is prefork.py's."""
import select
import signal

from prefork import run_pool
from protocol import serve


def worker(sock):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    waiter = select.epoll()  # each worker its own, made after fork: each is a waiter the kernel can pick
    waiter.register(sock, select.EPOLLIN | select.EPOLLEXCLUSIVE)
    while True:
        waiter.poll()  # one worker wakes per connection
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, ConnectionAbortedError):
            continue  # EAGAIN: another worker took it (or the client left): wait again
        serve(conn)  # the accepted socket is blocking: Linux does not pass O_NONBLOCK on from the listener


def nonblocking(sock):
    sock.setblocking(False)  # before fork: the flag belongs to the socket every worker shares


run_pool(worker, nonblocking)
