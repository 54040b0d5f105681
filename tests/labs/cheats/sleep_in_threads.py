#!/usr/bin/env python3
"""A cheat for lab 7: an asyncio loop that serves every connection, except that a
SLEEP blocks a thread of a large pool (run_in_executor(time.sleep)) instead of
being a timer of the loop. Fails one_thread_serves_all: a thread per SLEEP."""
import asyncio
import concurrent.futures
import sys
import time

POOL = concurrent.futures.ThreadPoolExecutor(max_workers=200)


async def client(reader, writer):
    while line := await reader.readline():
        word, _, rest = line.decode(errors="replace").strip().partition(" ")
        word = word.upper()
        if word == "SLEEP" and rest.isdigit():
            await asyncio.get_running_loop().run_in_executor(POOL, time.sleep, int(rest) / 1000)
            answer = f"SLEPT {rest}"
        else:
            answer = {"PING": "PONG", "ECHO": rest, "QUIT": "BYE"}.get(word, "ERR unknown command")
        writer.write(answer.encode() + b"\n")
        await writer.drain()
        if word == "QUIT":
            break
    writer.close()


async def main():
    port = int(sys.argv[sys.argv.index("--port") + 1])
    server = await asyncio.start_server(client, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
