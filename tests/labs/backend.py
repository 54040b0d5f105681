"""The grader's own backend for lab 9 (./lab grade proxy): the server a student's
proxy relays to, given to the proxy's command as {backend} (HOST:PORT).

It runs inside the grader, in a thread of its own (an asyncio loop), so that
the contracts can see what reached it and act on it: which requests arrived
(a proxy that answers by itself is caught: the backend never saw them), how
many connections were opened, and the two things a backend does to a proxy,
dying (stop(): no more listening, every connection closed) and closing its
connections (close_connections()), then coming back (start()). Only Python's
standard library, so that grading needs nothing but python3 and pytest.

It speaks what a lab's server speaks: PING, ECHO, SLEEP, QUIT, ERR for the
rest, one answer line per request line (docs/protocol.md). Its own buffers are
bounded: a connection is read no further while its answers are unsent
(drain()), so a proxy that never reads makes it stop reading, as a well-behaved
server does.
"""
import asyncio
import collections
import socket
import threading

HOST = "127.0.0.1"
MAX_LINE = 8192
KEPT = 10000  # request lines remembered (the first 100 characters of each)


class Backend:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="grader-backend", daemon=True)
        self.thread.start()
        self.port = None
        self.server = None
        self.writers = set()
        self.requests = collections.deque(maxlen=KEPT)  # the request lines received, in order
        self.received = 0      # request lines received in all
        self.connections = 0   # connections accepted in all
        self.start()

    @property
    def address(self):
        return f"{HOST}:{self.port}"

    def _run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self):
        """Listens (again, on the same port after a stop())."""
        async def listen():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, self.port or 0))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            self.server = await asyncio.start_server(self._serve, sock=sock, limit=2 * MAX_LINE)
        self._run(listen())

    async def _die(self):
        """Stops listening (a connect is then refused) and aborts every connection (a reset each)."""
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()

    def stop(self):
        """The backend dies: it stops listening (a connect is refused) and every connection closes at once."""
        self._run(self._die())

    def close_connections(self):
        """The backend closes every connection it holds (a FIN each), and goes on listening."""
        async def close():
            for w in list(self.writers):
                w.close()
        self._run(close())

    def open_connections(self):
        return len(self.writers)

    def saw(self, line):
        return line in self.requests

    def close(self):
        """Stops the backend for good: its connections' tasks end, then its loop and thread."""
        async def end():
            await self._die()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            self._run(end())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()

    async def _answer(self, line):
        """protocol.py's answer() (docs/labs/solutions/), SLEEP as a timer: the grader ships without the keys."""
        word, _, rest = line.lstrip(" \t").partition(" ")
        word = word.upper()
        if word == "PING" and not rest:
            return "PONG", False
        if word == "ECHO":
            return rest, False
        if word == "SLEEP" and rest.isdigit() and int(rest) <= 60000:
            await asyncio.sleep(int(rest) / 1000)
            return f"SLEPT {rest}", False
        if word == "QUIT":
            return "BYE", True
        printable = "".join(c if c.isprintable() else "?" for c in word[:32])
        return f"ERR unknown command '{printable}'", False

    async def _serve(self, reader, writer):
        self.connections += 1
        self.writers.add(writer)
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    break  # the proxy closed its side
                except asyncio.LimitOverrunError:
                    writer.write(b"ERR line too long\n")
                    break
                line = raw.rstrip(b"\n").rstrip(b"\r").decode(errors="replace")
                if not line.strip():
                    continue
                self.received += 1
                self.requests.append(line[:100])
                reply, close = await self._answer(line)
                writer.write(reply.encode() + b"\n")
                await writer.drain()  # answers unsent: read nothing more from this connection
                if close:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()
