"""A text-framing client with timeouts everywhere: a broken server fails a contract, never hangs it."""
import socket


class Client:
    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        """The next answer line, without LF (and CR); raises on EOF or timeout."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the server closed the connection (unanswered: {self.buf!r})")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r").decode(errors="replace")

    def ask(self, request):
        self.send(request + "\n")
        return self.line()

    def closed_by_server(self, timeout=3.0):
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                self.buf += chunk
            return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
