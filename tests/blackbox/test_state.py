"""INCR in every model: each counts every INCR exactly once, however its requests are spread
over processes and threads; `--state local` counts per process or thread, the wrong answer on
purpose (docs/07-event-loop-threads.md)."""
import pytest

from harness import counts_read, incr_from_clients
from models import MODELS

# How each model spreads the work, so that the count is really shared.
SPREAD = {"prefork": ["--workers", "3"], "prefork_threads": ["--workers", "2", "--threads", "4"],
          "prefork_event_loop": ["--workers", "3"], "event_loop_threads": ["--threads", "3"]}


@pytest.mark.parametrize("model", MODELS)
def test_every_incr_is_counted_exactly_once(start, model):
    server = start(model, *SPREAD.get(model, []))
    errors = incr_from_clients(server)
    assert not errors, errors[:3]
    seen = counts_read(server)
    assert set(seen.values()) == {1000}, (
        f"{model}: 20 clients x 50 INCR hits, and GET hits read {sorted(set(seen.values()))} "
        f"from {len(seen)} processes/threads: the count must be one, shared by all")


@pytest.mark.parametrize("model", ["prefork", "prefork_threads", "prefork_event_loop", "event_loop_threads"])
def test_state_local_counts_alone_in_each_process_or_thread(start, model):
    server = start(model, *SPREAD[model], "--state", "local")
    assert not incr_from_clients(server)
    seen = counts_read(server, count=20)
    assert max(seen.values()) < 1000 and len(set(seen.values())) >= 2, (
        f"{model} --state local: a table per process or thread, so each GET reads only what its "
        f"own counted: {seen}")
