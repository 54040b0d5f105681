#!/usr/bin/env python3
"""A cheat for lab 9: a byte pipe, as socat or `nc -l | nc` makes one. A backend
connection per client and a thread per direction, each copying bytes as they
come, blocking (the kernel's buffers push back on both sides); an end of file
on one side is passed on as a shutdown of the other, and both sockets are
closed once both directions have ended. Every answer is the backend's, and
nothing is left in CLOSE_WAIT, but the pipe never reads the lines, so it does
not know that a request is owed an answer: when the backend dies, or refuses,
the client's connection just closes, unanswered. Fails
dead_backend_gets_an_error."""
import socket
import threading

from protocol import listener

sock, options = listener(backend=True)


def pump(source, sink, pair):
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)  # pass the end of file on
    except OSError:  # a reset, a peer gone: end both directions (the other pump's recv returns 0)
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(client):
    try:
        upstream = socket.create_connection(options.backend)
    except OSError:
        client.close()  # refused: the client is hung up on
        return
    pair = (client, upstream)
    back = threading.Thread(target=pump, args=(upstream, client, pair), daemon=True)
    back.start()
    pump(client, upstream, pair)
    back.join()
    client.close()
    upstream.close()


while True:
    conn, _ = sock.accept()
    threading.Thread(target=relay, args=(conn,), daemon=True).start()
