#!/usr/bin/env python3
"""A cheat for lab 7: one process, and a thread per connection that blocks in
recv() and in time.sleep(). A hundred sleepers are answered together, as from
a loop. Fails one_thread_serves_all: the threads grow with the connections."""
import threading

from protocol import listener, serve

sock, _ = listener()
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
