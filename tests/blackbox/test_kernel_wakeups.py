"""herd's kernel wakeups per accept: the herd counted at the scheduler (sched:sched_wakeup)."""
import json
import os
import shutil
import subprocess

import pytest


def herd(bin_dir, strategies, env=None):
    r = subprocess.run([bin_dir / "herd", "--models", "03", "--strategies", ",".join(strategies), "--workers", "4",
                        "--connections", "150", "--duration", "0", "--json"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    return {row["strategy"]: row for row in json.loads(r.stdout)["rows"]}


# Reasons herd gives for not counting that this machine can have (not a bug of ours).
NOT_HERE = ("not permitted", "PID namespace", "tracefs", "cannot read")


def test_poll_wakes_idle_workers_that_blocking_accept_leaves_asleep(bin_dir):
    rows = herd(bin_dir, ["blocking", "poll"])
    note = rows["blocking"]["kernel_note"]
    if note and any(reason in note for reason in NOT_HERE):
        pytest.skip(f"the kernel's count is not available here: {note}")
    blocking, poll = rows["blocking"]["kernel_wakeups_per_accept"], rows["poll"]["kernel_wakeups_per_accept"]
    assert blocking is not None and poll is not None, f"the kernel's count is missing for another reason: {rows}"
    # Blocking accept: the one worker woken for the connection, then for its
    # request: about 2. poll: every idle worker is woken for each connection.
    assert 1.5 <= blocking <= 3.5, f"blocking accept: {blocking:.2f} kernel wakeups per connection, expected about 2"
    assert poll > blocking + 1, (f"4 idle workers in poll(): {poll:.2f} kernel wakeups per connection against "
                                 f"blocking accept's {blocking:.2f}: the herd should show in the scheduler")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="unshare --pid needs root")
def test_in_a_pid_namespace_it_falls_back_instead_of_counting_nothing(bin_dir):
    # Inside a PID namespace the workers' pids are not those the tracepoint
    # reports: the count would be 0 for every strategy, silently.
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", bin_dir / "herd", "--models", "03",
                        "--strategies", "poll", "--workers", "2", "--connections", "20", "--duration", "0", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)["rows"][0]
    assert row["kernel_wakeups_per_accept"] is None and "PID namespace" in (row["kernel_note"] or ""), (
        f"in a PID namespace herd must say it cannot count, not report {row['kernel_wakeups_per_accept']}: {row}")


def test_without_perf_it_says_so_and_shows_context_switches(bin_dir):
    env = dict(os.environ, SERVERLAB_NO_PERF="1")
    row = herd(bin_dir, ["blocking"], env)["blocking"]
    assert row["kernel_wakeups_per_accept"] is None, row
    r = subprocess.run([bin_dir / "herd", "--models", "03", "--strategies", "blocking", "--workers", "2",
                        "--connections", "20", "--duration", "0"], capture_output=True, text=True, timeout=60, env=env)
    assert "* kernel wakeups: turned off by SERVERLAB_NO_PERF; the column shows voluntary context switches" in r.stdout
