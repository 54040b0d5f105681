#!/usr/bin/env python3
"""The answer key for lab 9 (docs/labs/9-proxy.md): a proxy in one thread, one
loop (event_loop.py's design), in front of one backend (--backend HOST:PORT).

Each client gets a backend connection of its own, opened without blocking
when the client connects: the two make a pair, and the loop moves lines
between them. The client's requests are relayed line by line, as they are;
the backend's answers come back as bytes. Neither side is ever waited for:

- Backpressure both ways: with LIMIT bytes waiting to go to one side, the
  loop stops reading the other. A client that never reads stops the reads
  from its backend connection; the backend's buffers fill and it stops
  reading ours; our requests to it pile up to LIMIT, and we stop reading the
  client, whose send() then blocks. Memory stays bounded on every side.
- Failures are answers: a backend that refuses, or closes with requests
  unanswered, gives the client one `ERR upstream ...` per such request; from
  then on each request the client sends is answered ERR, until it leaves.
- The connection's life (docs/tcp.md): a client's FIN is passed on as ours
  (shutdown(SHUT_WR)) once its requests are sent, so the backend answers them
  and closes; a backend's FIN ends the pair once the client has its answers.
  Either way both sockets are closed, and none waits in CLOSE_WAIT.
"""
import errno
import os
import selectors
import socket

from protocol import MAX_LINE, listener

LIMIT = 1 << 20  # bytes waiting for one side above which the other is not read


class Side:
    """One socket of a pair, and the bytes waiting to be written to it."""

    def __init__(self, sock):
        self.sock = sock
        self.out = bytearray()
        self.eof = False     # its peer has closed (recv returned 0)
        self.shut = False    # we have shut down our sending side (our FIN is on its way)
        self.events = 0


class Pair:
    def __init__(self, client, backend_address):
        self.client = Side(client)
        self.backend = None         # a Side once the connect is started
        self.connected = False
        self.error = None           # why the backend is gone: each request is then answered ERR
        self.inbuf = bytearray()    # the client's bytes not yet cut into lines
        self.waiting = 0            # requests sent to the backend and not yet answered
        self.closed = False
        sock = socket.socket()
        sock.setblocking(False)
        code = sock.connect_ex(backend_address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.error = f"connect to {backend_address[0]}:{backend_address[1]}: {os.strerror(code)}"
        else:
            self.backend = Side(sock)


sel = selectors.DefaultSelector()


def watch(pair, side, events):
    if events == side.events:
        return
    if side.events == 0:
        sel.register(side.sock, events, pair)
    elif events == 0:
        sel.unregister(side.sock)
    else:
        sel.modify(side.sock, events, pair)
    side.events = events


def close(pair):
    for side in (pair.client, pair.backend):
        if side is not None:
            watch(pair, side, 0)
            side.sock.close()
    pair.closed = True


def backend_gone(pair, why):
    """The backend refused, reset or closed: every request it owes is answered ERR, and so is each later one."""
    if pair.backend is not None:
        watch(pair, pair.backend, 0)
        pair.backend.sock.close()
        pair.backend = None
    pair.error = why
    pair.client.out += f"ERR upstream {why}\n".encode() * pair.waiting
    pair.waiting = 0


def cut_requests(pair):
    """Moves the client's complete lines to the backend (or answers them ERR when it is gone)."""
    while (pair.backend is None or len(pair.backend.out) < LIMIT) and len(pair.client.out) < LIMIT:
        end = pair.inbuf.find(b"\n")
        if end < 0:
            if len(pair.inbuf) > MAX_LINE:
                pair.client.out += b"ERR line too long\n"
                pair.client.eof = True  # as a server does: answer, then close
                pair.inbuf.clear()
            return
        line = bytes(pair.inbuf[:end + 1])
        del pair.inbuf[:end + 1]
        if not line.strip():
            continue  # a blank line gets no answer: the backend would send none, so it is not sent
        if pair.error:
            pair.client.out += f"ERR upstream {pair.error}\n".encode()
        else:
            pair.backend.out += line
            pair.waiting += 1


def step(pair, side, readable, writable):
    """Moves what can move for `pair` now, then says what each socket waits for."""
    other = pair.backend if side is pair.client else pair.client
    try:
        if side is pair.backend and not pair.connected and (readable or writable):
            code = side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                return after(pair, lambda: backend_gone(pair, f"connect: {os.strerror(code)}"))
            pair.connected = True
        if readable:
            chunk = side.sock.recv(65536)
            if not chunk:
                side.eof = True
            elif side is pair.client:
                pair.inbuf += chunk
            else:
                other.out += chunk
                pair.waiting -= chunk.count(b"\n")
        if writable and side.out:
            del side.out[:side.sock.send(side.out)]
    except BlockingIOError:
        pass
    except OSError as e:  # a reset, or a write to a peer that has gone
        if side is pair.client:
            return close(pair)
        return after(pair, lambda: backend_gone(pair, e.strerror or str(e)))
    after(pair)


def after(pair, action=None):
    if action:
        action()
    cut_requests(pair)
    client, backend = pair.client, pair.backend
    if backend is not None and backend.eof and (pair.waiting or not backend.out):
        # It closed owing answers (each is answered ERR), or it is done: QUIT's BYE, or the backend ended the
        # connection. When done, the client gets what it was sent, then a FIN. (Asked before backend_gone() zeroes
        # pair.waiting.)
        if not pair.waiting:
            client.eof = True
        backend_gone(pair, "closed the connection")
        backend = pair.backend
    if client.eof and not pair.inbuf and not client.out and (backend is None or not pair.waiting and not backend.out):
        return close(pair)
    if client.eof and backend is not None and pair.connected and not backend.out and not backend.shut:
        backend.sock.shutdown(socket.SHUT_WR)  # pass the client's FIN on: the backend answers, then closes
        backend.shut = True
    if client.out:  # a partial send leaves the rest for later
        try:
            del client.out[:client.sock.send(client.out)]
        except BlockingIOError:
            pass
        except OSError:
            return close(pair)
    # Backpressure: read a side only while the other side's queue is under LIMIT.
    read_client = not client.eof and len(client.out) < LIMIT and (backend is None or len(backend.out) < LIMIT)
    watch(pair, client, (selectors.EVENT_READ if read_client else 0) | (selectors.EVENT_WRITE if client.out else 0))
    if backend is not None:
        connecting = not pair.connected
        read_backend = not backend.eof and len(client.out) < LIMIT
        watch(pair, backend, (selectors.EVENT_READ if read_backend else 0)
              | (selectors.EVENT_WRITE if backend.out or connecting else 0))
    if client.events == 0 and (backend is None or backend.events == 0):
        close(pair)  # nothing left to wait for


def main():
    listening, options = listener(backend=True)
    backend_address = options.backend
    listening.setblocking(False)
    sel.register(listening, selectors.EVENT_READ, None)
    while True:
        for key, events in sel.select():
            if key.data is None:
                while True:
                    try:
                        client, _ = listening.accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        break
                    except OSError:  # out of descriptors: the client waits in the backlog
                        break
                    client.setblocking(False)
                    after(Pair(client, backend_address))
                continue
            pair = key.data
            if pair.closed:
                continue
            side = pair.client if key.fileobj is pair.client.sock else pair.backend
            if side is None:
                continue
            step(pair, side, events & selectors.EVENT_READ, events & selectors.EVENT_WRITE)


if __name__ == "__main__":
    main()
