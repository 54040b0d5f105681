#!/usr/bin/env python3
"""A cheat for lab 9: a thread per client and a backend connection each, and two
threads per pair: one relays the client's bytes to the backend, the other
reads the backend's answers as fast as they come and puts them in a queue
that a third writes to the client. The queue has no bound: a client that
never reads makes it, and the proxy, grow by every answer. Fails
backpressure_through_the_proxy."""
import queue
import socket
import threading

from protocol import listener

sock, options = listener(backend=True)


def pump(source, sink):
    """Client to backend: a blocking send() here pushes back on the client, as it should."""
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def answers(upstream, pending):
    """Backend to queue: reads whatever the backend sends, whether or not the client reads."""
    try:
        while chunk := upstream.recv(65536):
            pending.put(chunk)
    except OSError:
        pass
    pending.put(None)


def writer(conn, pending):
    while (chunk := pending.get()) is not None:
        try:
            conn.sendall(chunk)
        except OSError:
            break
    conn.close()


def pair(conn):
    try:
        upstream = socket.create_connection(options.backend)
    except OSError as e:
        conn.sendall(f"ERR upstream {e.strerror}\n".encode())
        conn.close()
        return
    pending = queue.Queue()  # no maxsize
    threading.Thread(target=answers, args=(upstream, pending), daemon=True).start()
    threading.Thread(target=writer, args=(conn, pending), daemon=True).start()
    pump(conn, upstream)
    upstream.close()


while True:
    conn, _ = sock.accept()
    threading.Thread(target=pair, args=(conn,), daemon=True).start()
