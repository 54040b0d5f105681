#!/usr/bin/env python3
"""The answer key for lab 7 (docs/labs/7-event-loop.md) with asyncio: one thread,
asyncio's loop, a coroutine per connection. A SLEEP is asyncio.sleep, a timer of
the loop; backpressure is `await writer.drain()`, which waits, reading nothing
more from that client, while the transport holds more than its high-water mark
of unsent answers (and the StreamReader stops reading the socket when its own
buffer is full), so the kernel's buffers fill and the client's send() blocks.

The host is a name, "localhost": asyncio resolves it with getaddrinfo() in a
thread of the loop's default executor. That thread stays, idle: lab 7 grades
what the threads do, not how many a runtime starts."""
import asyncio
import socket

from protocol import MAX_LINE, answer, listener


async def client(reader, writer):
    try:
        while True:
            try:
                raw = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                break  # the client closed, maybe in the middle of a line
            except asyncio.LimitOverrunError:
                writer.write(b"ERR line too long\n")
                break
            line = raw.rstrip(b"\n").rstrip(b"\r").decode(errors="replace")
            if not line.strip():
                continue
            word, _, rest = line.lstrip(" \t").partition(" ")
            if word.upper() == "SLEEP" and rest.isdigit() and int(rest) <= 60000:
                await asyncio.sleep(int(rest) / 1000)  # the loop serves everyone else meanwhile
                reply, close = f"SLEPT {rest}", False
            else:
                reply, close = answer(line)  # protocol.py's answers; only SLEEP would block there
            writer.write(reply.encode() + b"\n")
            await writer.drain()
            if close:
                break
    except ConnectionError:
        pass  # reset: that client only (Python ignores SIGPIPE: a write raises instead)
    finally:
        writer.close()


async def main():
    sock, options = listener()  # only for --port and the SIGTERM handler: asyncio binds its own socket
    sock.close()
    server = await asyncio.start_server(client, "localhost", options.port, family=socket.AF_INET,
                                        limit=MAX_LINE, reuse_address=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
