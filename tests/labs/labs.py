"""The labs, in course order: name, one-line goal, the page that teaches it."""

LABS = [
    ("single", "an iterative server that speaks the protocol and survives its clients", "docs/labs/1-single-process.md"),
    ("fork", "a child per connection: concurrency, no zombies, no leaked descriptors", "docs/labs/2-fork-per-connection.md"),
    ("prefork", "a fixed pool of workers forked before any client arrives", "docs/labs/3-prefork.md"),
    ("herd", "workers competing in accept: every connection of a burst is served, and served by many", "docs/labs/4-herd.md"),
    ("threads", "processes x threads: more connections at once than processes", "docs/labs/5-threads.md"),
    ("supervision", "a master that replaces dead workers and stops gracefully", "docs/labs/6-supervision.md"),
    ("event", "one process, one thread, an event loop: a hundred clients at once, and one that never reads",
     "docs/labs/7-event-loop.md"),
]
NAMES = [name for name, _, _ in LABS]
