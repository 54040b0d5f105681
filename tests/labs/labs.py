"""The labs, in course order, and what each grades: its contracts and their points.

LABS: (name, one-line goal, the page that teaches it).
POINTS: for each lab, each contract's points (70 in all: the grader's share
of docs/course.md's rubric) and whether it is the lab's lesson (True) or a
contract kept from earlier labs (False). The lesson carries at least half
the points, so that last week's server, which passes what it already knew,
scores at most half (tests/blackbox/test_grader.py checks both). A contract
worth 0 points is optional: reported, never counted.
"""

LABS = [
    ("single", "an iterative server that speaks the protocol and survives its clients", "docs/labs/1-single-process.md"),
    ("fork", "a child per connection: concurrency, no zombies, no leaked descriptors", "docs/labs/2-fork-per-connection.md"),
    ("prefork", "a fixed pool of workers forked before any client arrives", "docs/labs/3-prefork.md"),
    ("herd", "workers that wait in poll or epoll, and a connection that does not wake them all",
     "docs/labs/4-herd.md"),
    ("threads", "processes x threads: more connections at once than processes", "docs/labs/5-threads.md"),
    ("supervision", "a master that replaces dead workers and stops gracefully", "docs/labs/6-supervision.md"),
    ("event", "one thread, an event loop: a hundred clients at once, and one that never reads",
     "docs/labs/7-event-loop.md"),
    ("state", "INCR counted exactly once across all the workers: where shared state lives", "docs/labs/8-state.md"),
    ("proxy", "a proxy in front of the grader's backend: concurrency, backpressure, failures, no CLOSE_WAIT",
     "docs/labs/9-proxy.md"),
]
NAMES = [name for name, _, _ in LABS]
NEEDS_BACKEND = {"proxy"}  # labs whose command relays to the grader's backend: it takes {backend} (HOST:PORT)
TOTAL = 70

LESSON, KEPT = True, False
POINTS = {
    "single": {
        "protocol_answers": (15, LESSON), "protocol_pipelining_and_errors": (15, LESSON),
        "survives_rude_clients": (20, LESSON), "clean_sigterm": (10, LESSON), "no_fd_leak": (10, LESSON),
    },
    "fork": {
        "concurrency": (20, LESSON), "no_zombies": (20, LESSON),
        "protocol_answers": (6, KEPT), "protocol_pipelining_and_errors": (6, KEPT), "survives_rude_clients": (6, KEPT),
        "clean_sigterm": (6, KEPT), "no_fd_leak": (6, KEPT),
    },
    "prefork": {
        "fixed_pool": (35, LESSON),
        "protocol_answers": (5, KEPT), "protocol_pipelining_and_errors": (5, KEPT), "survives_rude_clients": (5, KEPT),
        "clean_sigterm": (5, KEPT), "concurrency": (5, KEPT), "no_zombies": (5, KEPT), "no_fd_leak": (5, KEPT),
    },
    "herd": {
        "workers_wait_in_poll": (15, LESSON), "few_workers_woken": (20, LESSON), "herd_counters": (0, LESSON),
        "protocol_answers": (4, KEPT), "protocol_pipelining_and_errors": (4, KEPT), "survives_rude_clients": (4, KEPT),
        "clean_sigterm": (4, KEPT), "concurrency": (4, KEPT), "no_zombies": (4, KEPT), "no_fd_leak": (3, KEPT),
        "fixed_pool": (4, KEPT), "burst_served_by_many": (4, KEPT),
    },
    "threads": {
        "threads_serve_more_than_processes": (35, LESSON),
        "protocol_answers": (5, KEPT), "protocol_pipelining_and_errors": (5, KEPT), "survives_rude_clients": (5, KEPT),
        "clean_sigterm": (5, KEPT), "concurrency": (5, KEPT), "no_fd_leak": (5, KEPT), "fixed_pool": (5, KEPT),
    },
    "supervision": {
        "respawn": (15, LESSON), "graceful_stop": (20, LESSON),
        "protocol_answers": (6, KEPT), "protocol_pipelining_and_errors": (6, KEPT), "survives_rude_clients": (6, KEPT),
        "clean_sigterm": (6, KEPT), "no_zombies": (5, KEPT), "fixed_pool": (6, KEPT),
    },
    "event": {
        "one_thread_serves_all": (20, LESSON), "hundred_sleepers_at_once": (15, LESSON),
        "split_request_does_not_stall_others": (5, LESSON), "backpressure_for_a_client_that_never_reads": (5, LESSON),
        "protocol_answers": (4, KEPT), "protocol_pipelining_and_errors": (4, KEPT), "survives_rude_clients": (4, KEPT),
        "clean_sigterm": (5, KEPT), "concurrency": (4, KEPT), "no_fd_leak": (4, KEPT),
    },
    "state": {
        "every_incr_counted_once": (25, LESSON), "each_incr_answers_its_own_count": (10, LESSON),
        "get_does_not_count_and_names_are_independent": (5, LESSON), "counter_names_and_limit": (5, LESSON),
        "protocol_answers": (4, KEPT), "protocol_pipelining_and_errors": (4, KEPT), "survives_rude_clients": (4, KEPT),
        "clean_sigterm": (4, KEPT), "concurrency": (5, KEPT), "no_fd_leak": (4, KEPT),
    },
    "proxy": {
        "relays_to_the_backend": (10, LESSON), "slow_backend_request_does_not_block_others": (10, LESSON),
        "backpressure_through_the_proxy": (10, LESSON), "dead_backend_gets_an_error": (10, LESSON),
        "nothing_left_in_close_wait": (10, LESSON),
        "protocol_answers": (5, KEPT), "protocol_pipelining_and_errors": (5, KEPT), "survives_rude_clients": (5, KEPT),
        "clean_sigterm": (5, KEPT),
    },
}


def points(lab, contract):
    return POINTS[lab][contract][0]


def labs_of(contract):
    """The labs that check `contract`."""
    return [lab for lab in NAMES if contract in POINTS[lab]]
