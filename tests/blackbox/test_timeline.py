"""./lab timeline: the trace parsed into lanes and bars, and the pictures drawn."""
import pathlib
import re
import subprocess
import sys

from harness import proc_stat

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools" / "views"
sys.path.insert(0, str(TOOLS))
import timeline  # noqa: E402

# 03 with two workers: worker 0 serves conn 1 (two answers), worker 1 serves
# its own conn 1 and is still holding conn 2 when the trace ends; a reap.
TRACE = """\
03 listening on 127.0.0.1:40000 pid 100
[  10.000000] pid 100 tid 100 master: started
[  10.001000] pid 100 tid 100 master: spawned worker 0 pid 101 (generation 0, place 0)
[  10.001500] pid 101 tid 101 worker 0: started
[  10.002000] pid 100 tid 100 master: spawned worker 1 pid 102 (generation 0, place 1)
[  10.002500] pid 102 tid 102 worker 1: started
[  10.500000] pid 101 tid 101 worker 0: conn 1 from 127.0.0.1:50000
[  10.600000] pid 101 tid 101 worker 0: conn 1: PING -> PONG
[  10.700000] pid 101 tid 101 worker 0: conn 1: SLEEP 100 -> SLEPT 100
[  10.800000] pid 101 tid 101 worker 0: conn 1 closed: client closed
[  10.900000] pid 102 tid 102 worker 1: conn 1 from 127.0.0.1:50002
[  11.000000] pid 102 tid 102 worker 1: conn 1 closed: client closed
[  11.100000] pid 102 tid 102 worker 1: conn 2 from 127.0.0.1:50004
slot      pid gen place    state   accepts
[  11.500000] pid 100 tid 100 master: reaped pid 101: exited with status 0
"""


def test_the_trace_becomes_lanes_bars_forks_and_reaps():
    t = timeline.parse(TRACE.splitlines())
    assert t["lanes"] == [(101, 101, "worker 0"), (102, 102, "worker 1")], "a lane per worker, in start order"
    bars = [(b["lane"], b["conn"], round(b["start"], 3), round(b["end"], 3), len(b["requests"])) for b in t["bars"]]
    assert bars == [(0, 1, 0.5, 0.8, 2), (1, 1, 0.9, 1.0, 0), (1, 2, 1.1, 1.5, 0)], (
        f"a bar per connection from accept to close, its answers counted; one still open ends with the trace: {bars}")
    assert [round(x, 3) for x, _ in t["forks"]] == [0.001, 0.002] and [p for _, p in t["forks"]] == [101, 102]
    assert t["reaps"] == [(1.5, 101)]


def test_overlapping_connections_of_one_lane_are_stacked():
    bars = [{"lane": 0, "start": 0.0, "end": 1.0}, {"lane": 0, "start": 0.5, "end": 2.0},
            {"lane": 0, "start": 1.5, "end": 3.0}]
    assert timeline.stack(bars) == {0: 2}, "three connections, at most two at once: two rows"
    assert [b["row"] for b in bars] == [0, 1, 0], "the third reuses the row the first left"


def test_it_runs_a_model_and_draws_png_and_svg(bin_dir, tmp_path):
    r = subprocess.run([sys.executable, str(TOOLS / "timeline.py"), "--bin-dir", str(bin_dir), "--clients", "3",
                        "--seconds", "1", "--out", str(tmp_path), "03", "--workers", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "timeline.png"), str(tmp_path / "timeline.svg")], r.stdout
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "timeline.svg").read_bytes()[:2000]
    assert "conn 1 from" in (tmp_path / "trace.txt").read_text(), "the trace it drew from is kept beside"
    # The model's own processes, named in its trace (the master and its
    # workers), must all be gone: other tests run prefork servers meanwhile.
    ours = {int(p) for p in re.findall(r"\bpid (\d+)", (tmp_path / "trace.txt").read_text())}
    left = sorted(p for p in ours if proc_stat(p) and proc_stat(p)[0] != "Z")
    assert not left, f"the model's processes are left running: {left}"


def test_07_gets_a_lane_per_loop_thread(bin_dir, tmp_path):
    # One process: the lanes are its loops' threads, each with the connections it served.
    r = subprocess.run([sys.executable, str(TOOLS / "timeline.py"), "--bin-dir", str(bin_dir), "--clients", "4",
                        "--seconds", "1", "--out", str(tmp_path), "07", "--threads", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    t = timeline.parse((tmp_path / "trace.txt").read_text().splitlines())
    pids = {pid for pid, _, _ in t["lanes"]}
    # Lanes come in the order their first line does: under a sanitizer loop 1 may start first.
    assert sorted(name for _, _, name in t["lanes"]) == ["loop 0", "loop 1"] and len(pids) == 1, (
        f"a lane per loop, all in one process: {t['lanes']}")
    assert {b["lane"] for b in t["bars"]} == {0, 1}, "each loop's lane holds connections it served"
