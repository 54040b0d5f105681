#!/usr/bin/python3
"""timeline.py: a model's connections on a time line, drawn from its --trace.

    ./lab timeline [--clients N] [--seconds S] [--out DIR] MODEL [MODEL ARGS...]
    ./lab timeline --trace-file FILE [--out DIR]

Runs MODEL (01 ... 09, or its name) with --trace on a free port under a
short load: N clients (6) for S seconds (2), each connecting again and again
and sending one to three requests, PINGs and SLEEPs of 100 to 300 ms. Then it
stops the model and draws timeline.png and timeline.svg: a lane per worker
process or thread, a bar per connection from accept to close, a tick per
answered request, forks (^) and reaps (x) marked. Overlapping connections in
one lane (an event loop's) are stacked in the lane. Prints the paths.
With --trace-file it only draws, from a trace saved earlier.
"""
import argparse
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACE = re.compile(r"^\[\s*(\d+\.\d+)\] pid (\d+) tid (\d+) ([^:]+): (.*)$")
OPENED = re.compile(r"^conn (\d+) from ")
CLOSED = re.compile(r"^conn (\d+) closed")
ANSWERED = re.compile(r"^conn (\d+): ")
FORKED = re.compile(r"^(?:spawned worker \d+ pid|forked pid) (\d+)")
REAPED = re.compile(r"^reaped pid (\d+)")


def parse(lines):
    """Trace lines -> {"lanes": [(pid, tid, role)], "bars": [...], "forks": [(t, pid)], "reaps": [(t, pid)]}.

    A bar is {"lane": index, "conn": serial, "start": t, "end": t or None, "requests": [t, ...]}.
    Times are seconds from the first trace line. Lines that are not trace lines are ignored."""
    lanes, lane_of, bars, open_bars, forks, reaps = [], {}, [], {}, [], []
    t0 = None
    for line in lines:
        m = TRACE.match(line.rstrip("\n"))
        if not m:
            continue
        t, pid, tid, role, what = float(m[1]), int(m[2]), int(m[3]), m[4], m[5]
        t0 = t if t0 is None else t0
        t -= t0
        if what == "started" or what.endswith(" started"):
            # A worker (or thread) gets its lane when it starts, so that one
            # that never gets a connection shows as an empty lane.
            if role not in ("master", "parent") and (pid, tid) not in lane_of:
                lane_of[(pid, tid)] = len(lanes)
                lanes.append((pid, tid, role))
        elif (f := FORKED.match(what)):
            forks.append((t, int(f[1])))
        elif (r := REAPED.match(what)):
            reaps.append((t, int(r[1])))
        elif (o := OPENED.match(what)):
            if (pid, tid) not in lane_of:
                lane_of[(pid, tid)] = len(lanes)
                lanes.append((pid, tid, role))
            bar = {"lane": lane_of[(pid, tid)], "conn": int(o[1]), "start": t, "end": None, "requests": []}
            bars.append(bar)
            open_bars[(pid, tid, int(o[1]))] = bar
        elif (c := CLOSED.match(what)):
            bar = open_bars.pop((pid, tid, int(c[1])), None)
            if bar:
                bar["end"] = t
        elif (a := ANSWERED.match(what)):
            bar = open_bars.get((pid, tid, int(a[1])))
            if bar:
                bar["requests"].append(t)
    # A process whose threads serve (04) keeps its main thread's lane only if it served something itself.
    used = {b["lane"] for b in bars}
    threaded = {pid for pid, tid, _ in lanes if pid != tid}
    keep = [i for i, (pid, tid, _) in enumerate(lanes) if i in used or not (pid == tid and pid in threaded)]
    renumber = {old: new for new, old in enumerate(keep)}
    lanes = [lanes[i] for i in keep]
    for b in bars:
        b["lane"] = renumber[b["lane"]]
    end = max([b["end"] or b["start"] for b in bars] + [t for t, _ in forks + reaps] + [0.0])
    for bar in bars:  # still open when the trace ends (the model was stopped)
        if bar["end"] is None:
            bar["end"] = end
    return {"lanes": lanes, "bars": bars, "forks": forks, "reaps": reaps}


def pack(timeline, most=12):
    """A process per connection (02) makes a lane per child, hundreds of them:
    children of one role whose lifetimes do not overlap share a row instead,
    as slots of a table. Lanes of roles with `most` lanes or fewer stay as they are."""
    lanes, bars = timeline["lanes"], timeline["bars"]
    by_role = {}
    for i, (_, _, role) in enumerate(lanes):
        by_role.setdefault(role, []).append(i)
    if all(len(v) <= most for v in by_role.values()):
        return timeline
    span = {i: [None, None] for i in range(len(lanes))}
    for b in bars:
        lo, hi = span[b["lane"]]
        span[b["lane"]] = [b["start"] if lo is None else min(lo, b["start"]), max(hi or 0.0, b["end"])]
    new_lanes, new_of = [], {}
    for role, members in by_role.items():
        if len(members) <= most:
            for i in members:
                new_of[i] = len(new_lanes)
                new_lanes.append(lanes[i])
            continue
        rows = []  # (row's index in new_lanes, when its last child ended)
        for i in sorted(members, key=lambda i: span[i][0]):
            free = next((r for r in rows if r[1] <= span[i][0]), None)
            if free is None:
                free = [len(new_lanes), 0.0]
                rows.append(free)
                new_lanes.append((None, None, f"{role}, slot {len(rows)}"))
            new_of[i] = free[0]
            free[1] = span[i][1]
    pid_lane = {pid: new_of[i] for i, (pid, _, _) in enumerate(lanes)}
    for b in bars:
        b["lane"] = new_of[b["lane"]]
    return {**timeline, "lanes": new_lanes, "pid_lane": pid_lane}


def stack(bars):
    """Gives each bar a row within its lane: the lowest row free at its start (connections that overlap)."""
    rows = {}
    for bar in sorted(bars, key=lambda b: b["start"]):
        ends = rows.setdefault(bar["lane"], [])
        row = next((i for i, e in enumerate(ends) if e <= bar["start"]), len(ends))
        if row == len(ends):
            ends.append(bar["end"])
        else:
            ends[row] = bar["end"]
        bar["row"] = row
    return {lane: len(ends) for lane, ends in rows.items()}


def draw(timeline, title, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timeline = pack(timeline)
    lanes, bars = timeline["lanes"], timeline["bars"]
    depth = stack(bars)
    heights = [max(1, depth.get(i, 1)) for i in range(len(lanes))]
    # A lane's own height grows with its stacked rows, up to a point: 05 may hold dozens at once.
    scale = [min(h, 12) for h in heights]
    base, y = [], 0.0
    for s in scale:
        base.append(y)
        y += s + 0.6
    fig, ax = plt.subplots(figsize=(11, max(2.5, 0.35 * y + 1.2)))
    colors = plt.get_cmap("tab10")
    for bar in bars:
        lane = bar["lane"]
        h = scale[lane] / heights[lane]
        y0 = base[lane] + bar["row"] * h
        ax.broken_barh([(bar["start"], max(bar["end"] - bar["start"], 0.002))], (y0, h * 0.85),
                       facecolors=colors(bar["conn"] % 10), edgecolor="black", linewidth=0.3)
        for t in bar["requests"]:
            ax.plot([t, t], [y0, y0 + h * 0.85], color="black", linewidth=0.6)
    lane_of_pid = dict(timeline.get("pid_lane", {}))
    for i, (pid, _, _) in enumerate(lanes):
        if pid is not None:
            lane_of_pid.setdefault(pid, i)
    for marks, symbol, label in ((timeline["forks"], "^", "fork"), (timeline["reaps"], "x", "reap")):
        xs = [t for t, pid in marks if pid in lane_of_pid]
        ys = [base[lane_of_pid[pid]] - 0.25 for t, pid in marks if pid in lane_of_pid]
        if xs:
            ax.plot(xs, ys, symbol, color="black", markersize=5, label=label, linestyle="none")
    ax.set_yticks([base[i] + scale[i] / 2 for i in range(len(lanes))])
    ax.set_yticklabels([role if pid is None else f"{role} pid {pid}" if pid == tid else f"{role} tid {tid}"
                        for pid, tid, role in lanes], fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the model started")
    ax.set_title(f"{title}: a bar per connection (accept to close), a tick per answer")
    if timeline["forks"] or timeline["reaps"]:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "timeline.png", out_dir / "timeline.svg"]
    for path in paths:
        fig.savefig(path, dpi=90)
    plt.close(fig)
    return paths


def binary(model, bin_dir):
    """01, 01_single_process or single_process -> BIN_DIR/single_process; 08 -> BIN_DIR/uring (the
    binary is the one the model's CMakeLists.txt names)."""
    for d in sorted(ROOT.glob("[0-9][0-9]_*")):
        number, _, name = d.name.partition("_")
        m = re.search(r"^\s*add_executable\((\w+) ", (d / "CMakeLists.txt").read_text(), re.M)
        exe = m.group(1) if m else name
        if model in (d.name, number, name, exe):
            return pathlib.Path(bin_dir) / exe
    sys.exit(f"timeline: unknown model {model!r} (01 ... 09, or a name such as prefork)")


def client(port, stop_at, seed):
    rng = random.Random(seed)
    while time.monotonic() < stop_at:
        requests = [rng.choice(["PING", "PING", f"SLEEP {rng.randrange(100, 301, 50)}"])
                    for _ in range(rng.randint(1, 3))]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                f = s.makefile("rwb")
                for r in requests:
                    f.write(r.encode() + b"\n")
                    f.flush()
                    f.readline()
        except OSError:
            time.sleep(0.05)


def run(argv, clients, seconds, trace_path):
    """Runs the model with --trace under the load; its stderr goes to trace_path."""
    with open(trace_path, "w") as trace:
        proc = subprocess.Popen([*argv, "--port", "0", "--trace"], stdout=subprocess.PIPE, stderr=trace,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            line = proc.stdout.readline()
            m = re.search(r"listening on [\d.]+:(\d+)", line)
            if not m:
                raise SystemExit(f"timeline: {argv[0]} did not start: {line.strip()} (see {trace_path})")
            port = int(m[1])
            time.sleep(0.3)  # workers forked and waiting
            stop_at = time.monotonic() + seconds
            threads = [threading.Thread(target=client, args=(port, stop_at, n), daemon=True) for n in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=seconds + 15)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def main():
    parser = argparse.ArgumentParser(prog="./lab timeline", description=__doc__.split("\n\n")[2].strip())
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (default 6)")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds of load (default 2)")
    parser.add_argument("--out", help="directory for the pictures (default results/timeline-MODEL-TIME/)")
    parser.add_argument("--trace-file", help="draw from this saved trace; run nothing")
    parser.add_argument("--bin-dir", default=str(ROOT / "build" / "bin"), help="where the models are (build/bin)")
    parser.add_argument("model", nargs="?", help="01 ... 09, or a model's name")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the model's own options (--workers 4 ...)")
    a = parser.parse_args()
    if not (1 <= a.clients <= 64 and 0.2 <= a.seconds <= 60):
        sys.exit("timeline: --clients must be 1..64 and --seconds 0.2..60")
    if a.trace_file:
        trace_path, title = pathlib.Path(a.trace_file), pathlib.Path(a.trace_file).name
        out = pathlib.Path(a.out) if a.out else trace_path.parent
    else:
        if not a.model:
            parser.error("give a MODEL (01 ... 09) or --trace-file")
        exe = binary(a.model, a.bin_dir)
        if not exe.exists():
            sys.exit(f"timeline: {exe} is not built (./lab build)")
        title = " ".join([exe.name, *a.args])
        out = pathlib.Path(a.out) if a.out else ROOT / "results" / f"timeline-{exe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out.mkdir(parents=True, exist_ok=True)
        trace_path = out / "trace.txt"
        run([str(exe), *a.args], a.clients, a.seconds, trace_path)
    with open(trace_path, errors="replace") as f:
        timeline = parse(f)
    if not timeline["bars"]:
        sys.exit(f"timeline: no connection in {trace_path}")
    for path in draw(timeline, title, out):
        print(path)


if __name__ == "__main__":
    main()
