"""The prefork master's supervision (03): pools, signals, recycling, timeouts, crash loops."""
import re
import signal
import threading
import time

import pytest

from harness import children_of, group_members, kv, wait_until


# Supervision is common/process/master.cpp, shared by 03, 04 and 06: every test
# runs against each. 04 runs with one thread per worker, so "an idle worker"
# means the same as in 03.
pytestmark = pytest.mark.parametrize("model", ["prefork", "prefork_threads", "prefork_event_loop"])


@pytest.fixture
def start_model(start, model):
    extra = ["--threads", "1"] if model == "prefork_threads" else []
    return lambda *args: start(model, *args, *extra)


def start_prefork(start_model, *args, workers=None):
    server = start_model(*args)
    if workers is not None:
        assert wait_until(lambda: len(children_of(server.pid)) == workers, timeout=10), \
            f"expected {workers} workers, found {len(children_of(server.pid))}"
    return server


class SteadyLoad:
    """Client threads doing connect, PING, close in a loop; counts answers and failures."""

    def __init__(self, server, threads=2):
        self.server, self.ok, self.failures, self.running = server, 0, [], True
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        while self.running:
            try:
                with self.server.connect(timeout=5) as c:
                    assert c.ask("PING") == "PONG"
                with self.lock:
                    self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                with self.lock:
                    self.failures.append(repr(e))

    def stop(self):
        self.running = False
        for t in self.threads:
            t.join(timeout=10)


def test_dynamic_pool_grows_under_load_and_shrinks_when_idle(start_model, model):
    if model == "prefork_event_loop":
        pytest.skip("an event-loop worker takes every connection it is given: one worker holds all four sleepers")
    server = start_prefork(start_model, "--pool", "dynamic", "--start-workers", "1", "--min-spare", "1",
                           "--max-spare", "1", "--max-workers", "6", workers=1)
    holders = [server.connect(timeout=15) for _ in range(4)]
    for h in holders:
        h.send("SLEEP 5000\nQUIT\n")
    # Forks 1, 2, then 4 a second while short: 5 workers take about 3 s. The load outlasts that.
    grew = wait_until(lambda: len(children_of(server.pid)) >= 5, timeout=6)
    assert grew, f"4 busy workers with --min-spare 1 should grow the pool to 5; it has {len(children_of(server.pid))}"
    for h in holders:
        assert h.line() == "SLEPT 5000"
        h.close()
    shrank = wait_until(lambda: len(children_of(server.pid)) <= 2, timeout=8)
    assert shrank, f"idle again with --max-spare 1, the pool should shrink to 1-2; it has {len(children_of(server.pid))}"


def test_ttin_and_ttou_change_the_worker_count(start_model):
    server = start_prefork(start_model, "--workers", "2", workers=2)
    server.signal(signal.SIGTTIN)
    assert wait_until(lambda: len(children_of(server.pid)) == 3, timeout=10), "SIGTTIN should add a worker"
    server.signal(signal.SIGTTOU)
    time.sleep(0.2)
    server.signal(signal.SIGTTOU)
    assert wait_until(lambda: len(children_of(server.pid)) == 1, timeout=10), \
        f"two SIGTTOU from 3 should leave 1 worker, found {len(children_of(server.pid))}"
    with server.connect() as c:
        assert c.ask("PING") == "PONG"


def test_hup_replaces_every_worker_without_failing_a_request(start_model):
    server = start_prefork(start_model, "--workers", "2", workers=2)
    old = set(children_of(server.pid))
    load = SteadyLoad(server)
    try:
        time.sleep(0.3)
        server.signal(signal.SIGHUP)
        replaced = wait_until(lambda: (now := set(children_of(server.pid))) and not (now & old) and len(now) == 2,
                              timeout=8)
        time.sleep(0.3)
    finally:
        load.stop()
    assert replaced, f"after SIGHUP the workers are {children_of(server.pid)}; the old ones were {sorted(old)}"
    assert not load.failures, f"{len(load.failures)} requests failed during the rolling restart: {load.failures[:3]}"
    assert load.ok > 50, f"only {load.ok} requests were answered during the test"


def test_max_requests_recycles_workers_without_failures(start_model):
    """A worker that reached --max-requests asks for a successor and serves on until it is ready
    (a few milliseconds), so it may serve a few requests more; then it is retired."""
    server = start_prefork(start_model, "--workers", "2", "--max-requests", "5", "--max-requests-jitter", "2", workers=2)
    # Until 4 pids have served (the 2 first workers and 2 successors), at
    # most 600 requests in 10 s: how soon a successor is ready depends on the
    # machine (a loaded one, a sanitizer build), the property does not.
    served, failures = {}, []
    deadline = time.monotonic() + 10
    for i in range(600):
        if len(served) >= 4 or time.monotonic() > deadline:
            break
        try:
            with server.connect(timeout=5) as c:
                who = kv(c.ask("WHO"))
                served[who["pid"]] = max(served.get(who["pid"], 0), int(who["conn"]))
        except Exception as e:  # noqa: BLE001
            failures.append(f"request {i}: {e!r}")
        time.sleep(0.005)
    assert not failures, failures[:3]
    assert len(served) >= 4, f"{i} requests in 10 s with --max-requests 5 (+0..2) were served by only " \
                             f"{len(served)} pids (connections each: {served}): workers are not recycled"


def test_request_timeout_replaces_the_stuck_worker(start_model, model):
    if model == "prefork_event_loop":
        pytest.skip("an event loop is never stuck in a SLEEP (a timer), and the longest WORK takes about a second: "
                    "nothing holds it past --request-timeout's shortest limit")
    server = start_prefork(start_model, "--workers", "2", "--request-timeout", "1", workers=2)
    with server.connect(timeout=10) as stuck:
        stuck_pid = int(kv(stuck.ask("WHO"))["pid"])
        began = time.monotonic()
        stuck.send("SLEEP 10000\n")
        for _ in range(5):  # others are served meanwhile
            with server.connect() as other:
                assert other.ask("PING") == "PONG"
        closed = stuck.closed_by_server(timeout=6)
        waited = time.monotonic() - began
    assert closed and not stuck.buf, f"the stuck request's connection should be closed unanswered; got {stuck.buf!r}"
    assert waited < 5, f"a 10 s request under --request-timeout 1 was cut after {waited:.1f} s"
    assert wait_until(lambda: len(children_of(server.pid)) == 2 and stuck_pid not in children_of(server.pid),
                      timeout=10), "the stuck worker should be replaced"
    assert "--request-timeout 1 s; replacing it" in server.stderr()


def test_crash_is_followed_by_a_respawn(start_model):
    server = start_prefork(start_model, "--workers", "1", "--debug-commands", workers=1)
    victim = children_of(server.pid)[0]
    with server.connect() as c:
        c.send("CRASH\n")
        assert c.closed_by_server(), "the worker serving CRASH aborts, closing the connection"
    assert wait_until(lambda: children_of(server.pid) and victim not in children_of(server.pid), timeout=10)
    with server.connect() as c:
        assert c.ask("PING") == "PONG"
    assert "killed by SIGABRT" in server.stderr()


def test_crash_needs_debug_commands(start_model):
    server = start_prefork(start_model, "--workers", "1", workers=1)
    with server.connect() as c:
        assert c.ask("CRASH") == "ERR unknown command 'CRASH'", "CRASH is a test hook, off by default"


def test_workers_failing_at_start_stop_the_master(start_model):
    server = start_model("--workers", "2", "--debug-fail-start")
    began = time.monotonic()
    status = server.wait(timeout=10)
    took = time.monotonic() - began
    err = server.stderr()
    assert status != 0, f"the master exited {status} although no worker ever became ready"
    assert took < 5, f"giving up took {took:.1f} s"
    assert "workers exit before they are ready" in err and "giving up" in err, err
    spawned = int(re.search(r"spawned (\d+)", err).group(1))
    assert spawned <= 10, f"{spawned} forks before giving up: that is a fork storm"
    assert not group_members(server.pid)


def test_quit_stops_at_once(start_model):
    server = start_prefork(start_model, "--workers", "2", workers=2)
    with server.connect(timeout=10) as c:
        c.send("SLEEP 10000\n")
        time.sleep(0.2)
        began = time.monotonic()
        server.signal(signal.SIGQUIT)
        assert server.wait(timeout=5) == 0
        took = time.monotonic() - began
    assert took < 2, f"SIGQUIT took {took:.1f} s: it must not wait for requests"
    assert not group_members(server.pid)


def test_inconsistent_pool_options_are_refused(bin_dir, model):
    import subprocess
    for args, mentions in ((["--pool", "dynamic", "--min-spare", "5", "--max-spare", "2"], "--min-spare"),
                           (["--workers", "8", "--max-workers", "4"], "--max-workers")):
        r = subprocess.run([bin_dir / model, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and mentions in r.stderr, f"{args}: exit {r.returncode}, {r.stderr!r}"


def test_workers_above_the_default_ceiling_need_no_max_workers(start_model):
    start_prefork(start_model, "--workers", "70", workers=70)  # the default --max-workers is 64
