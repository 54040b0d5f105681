#!/usr/bin/python3
"""top.py: a live view of a running model, from its /status.json (docs/status.md),
or of any server, from /proc.

    ./lab top --port P [--host H] [--interval S] [--once]
    ./lab top --pid PID [--interval S] [--once]

Redraws about twice a second: a header (model, accept strategy, uptime,
totals, requests/s) and a row per worker and thread, with requests/s and CPU %
computed from the difference between two polls. --pid needs nothing from the
server (a student's, in any language): the process PID and every process
below it, a row per thread with its state, CPU %, and voluntary and
involuntary context switches per second, and on each process's first row the
TCP connections it holds (established sockets among its descriptors).
Plain ANSI escapes and ASCII only, so it works over ssh and in an 80x24
terminal; `q` or Ctrl-C quits, and the terminal is put back as it was
whatever happens. --once prints one snapshot as plain text and exits (for
scripts).
"""
import argparse
import http.client
import json
import os
import select
import shutil
import signal
import sys
import termios
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proc"))
import proc  # noqa: E402  (tools/proc/proc.py: /proc read as the grader reads it)


def fetch(host, port, timeout=2.0):
    """The model's status as a dict, or raises OSError / ValueError."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/status.json")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise ValueError(f"GET /status.json answered {response.status}")
        return json.loads(body)
    finally:
        conn.close()


def dash(value):
    return "-" if value is None else str(value)


def row_key(row):
    return (row.get("pid"), row.get("tid"))


def rates(now, before, seconds):
    """{(pid, tid): (requests/s, CPU %)} between two snapshots."""
    if not before or seconds <= 0:
        return {}
    old = {row_key(r): r for r in before.get("workers", [])}
    out = {}
    for r in now.get("workers", []):
        o = old.get(row_key(r))
        if o:
            rps = max(0, r.get("requests", 0) - o.get("requests", 0)) / seconds
            cpu = max(0, r.get("cpu_ms", 0) - o.get("cpu_ms", 0)) / (10 * seconds)
            out[row_key(r)] = (rps, cpu)
    return out


def render(status, rate, total_rps, width, height, error=None):
    """The screen as a list of lines, each at most `width` characters, at most `height` lines."""
    lines = []
    if error:
        lines.append(f"no status: {error}; retrying - q quits")
    if status:
        t = status.get("totals", {})
        lines.append(f"{status.get('model')}  pid {status.get('pid')}  accept {dash(status.get('accept'))}  "
                     f"up {status.get('uptime_ms', 0) / 1000:.0f} s")
        head = (f"workers {t.get('workers')}  connections {t.get('connections')}  requests {t.get('requests')}  "
                f"{total_rps:.0f} req/s")
        if "wakeups" in t:
            head += f"  wakeups {t['wakeups']} spurious {t['spurious']}"
        upstream = [r["upstream"] for r in status.get("workers", []) if "upstream" in r]
        if upstream:  # 09: its workers' connections to the backends
            head += f"  upstream {sum(upstream)}"
        lines.append(head)
        legend = status.get("legend", {})
        lines.append("state: " + "  ".join(f"{k} {v.split(':')[0].split()[0]}" for k, v in legend.items()))
        lines.append("")
        # 78 columns: the whole row fits an 80x24 terminal.
        lines.append(f"{'WRK':>3} {'THR':>3} {'PID':>7} {'TID':>7} S {'GEN':>3} {'ACCEPTS':>7} {'REQS':>8} "
                     f"{'REQ/S':>6} {'WAKEUPS':>7} {'SPUR':>5} {'OPEN':>5} {'CPU%':>4}")
        rows = status.get("workers", [])
        room = height - len(lines) - 1
        shown = rows if len(rows) <= room else rows[:max(0, room - 1)]
        for r in shown:
            rps, cpu = rate.get(row_key(r), (0.0, 0.0))
            worker = dash(r.get("worker")) if r.get("thread") is None else ""
            lines.append(f"{worker:>3} {dash(r.get('thread')):>3} {r.get('pid', 0):>7} {r.get('tid', 0):>7} "
                         f"{r.get('state', '?')} {dash(r.get('generation')):>3} {r.get('accepts', 0):>7} "
                         f"{r.get('requests', 0):>8} {rps:>6.0f} {dash(r.get('wakeups')):>7} "
                         f"{dash(r.get('spurious')):>5} {r.get('open', 0):>5} {cpu:>4.0f}")
        if len(shown) < len(rows):
            lines.append(f"... {len(rows) - len(shown)} more rows (a taller terminal shows them)")
    return [line[:width] for line in lines[:height]]


# ---- --pid: any server, from /proc ------------------------------------------------------------

def sample(pid):
    """The server's processes and threads now: {"time", "procs": [(pid, name, conns,
    [(tid, state, cpu ticks, voluntary, involuntary)])]}; raises ProcessLookupError when `pid` is gone."""
    if proc.stat(pid) is None:
        raise ProcessLookupError(f"no process {pid}")
    established = proc.tcp_inodes(proc.ESTABLISHED)
    procs = []
    for p in [pid, *proc.descendants(pid)]:
        threads = [(tid, s[0], s[3], *proc.switches(p, tid)) for tid in proc.tasks(p) if (s := proc.stat(p, tid))]
        if threads:
            procs.append((p, proc.name(p), len(proc.socket_fds(p).keys() & established), threads))
    return {"time": time.monotonic(), "procs": procs}


def render_pid(now, before, width, height, error=None):
    """The screen for --pid: a header, then a row per thread, rates from the two samples."""
    lines = [f"no process: {error} - q quits"] if error else []
    if now:
        seconds = max(now["time"] - before["time"], 1e-6) if before else 0
        old = {tid: t for _, _, _, threads in (before or {"procs": []})["procs"] for t in threads for tid in [t[0]]}
        threads = sum(len(t) for *_, t in now["procs"])
        conns = sum(c for _, _, c, _ in now["procs"])
        lines.append(f"pid {now['procs'][0][0]} {now['procs'][0][1]}  processes {len(now['procs'])}  "
                     f"threads {threads}  connections {conns}")
        lines.append("CPU % and switches per second over the last interval; CONNS: established TCP sockets held")
        lines.append("")
        lines.append(f"{'PID':>7} {'TID':>7} S {'CPU%':>5} {'VOL/S':>7} {'INVOL/S':>7} {'CONNS':>5}  NAME")
        rows = []
        for p, name, conns, ts in now["procs"]:
            for i, (tid, state, ticks, vol, invol) in enumerate(ts):
                was = old.get(tid)
                rate = (lambda a, b: (a - b) / seconds) if was and seconds else (lambda a, b: 0.0)
                cpu = 100 * rate(ticks, was[2]) / proc.TICKS if was and seconds else 0.0
                rows.append(f"{p if i == 0 else '':>7} {tid:>7} {state} {cpu:>5.0f} "
                            f"{rate(vol, was[3] if was else 0):>7.0f} {rate(invol, was[4] if was else 0):>7.0f} "
                            f"{conns if i == 0 else '':>5}  {name if i == 0 else ''}")
        room = height - len(lines) - 1
        shown = rows if len(rows) <= room else rows[:max(0, room - 1)]
        lines += shown
        if len(shown) < len(rows):
            lines.append(f"... {len(rows) - len(shown)} more threads (a taller terminal shows them)")
    return [line[:width] for line in lines[:height]]


def snapshot_text(args):
    """--once: two polls a moment apart, so the rates mean something; plain text."""
    if args.pid:
        first = sample(args.pid)
        time.sleep(min(args.interval, 0.5))
        return "\n".join(render_pid(sample(args.pid), first, 200, 10 ** 6))
    first = fetch(args.host, args.port)
    began = time.monotonic()
    time.sleep(min(args.interval, 0.5))
    status = fetch(args.host, args.port)
    seconds = time.monotonic() - began
    rate = rates(status, first, seconds)
    total = max(0, status["totals"]["requests"] - first["totals"]["requests"]) / seconds
    return "\n".join(render(status, rate, total, 200, 10 ** 6))


def frame_of_status(args):
    """The live frames of --port: each call polls /status.json and returns the screen's lines."""
    state = {"before": None, "before_t": 0.0, "status": None}

    def frame(width, height):
        error, rate, total = None, {}, 0.0
        try:
            now_status = fetch(args.host, args.port)
            now_t = time.monotonic()
            before = state["before"]
            rate = rates(now_status, before, now_t - state["before_t"])
            total = (max(0, now_status["totals"]["requests"] - before["totals"]["requests"]) /
                     (now_t - state["before_t"])) if before else 0.0
            state.update(status=now_status, before=now_status, before_t=now_t)
        except (OSError, ValueError) as e:
            if isinstance(e, ConnectionRefusedError):
                error = "connection refused (server gone?)"
            elif isinstance(e, TimeoutError):
                error = "no answer within 2 s (every worker busy with a connection?)"
            else:
                error = str(e)[:60]
            state["before"] = None
        return render(state["status"], rate, total, width, height, error)
    return frame


def frame_of_pid(args):
    """The live frames of --pid: each call samples /proc."""
    state = {"before": None, "now": None}

    def frame(width, height):
        error = None
        try:
            state["before"], state["now"] = state["now"], sample(args.pid)
        except ProcessLookupError as e:
            error = str(e)
        return render_pid(state["now"], state["before"], width, height, error)
    return frame


def live(args, frame):
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    out = sys.stdout
    # The terminal is restored in `finally`, and SIGTERM/SIGHUP become exceptions that reach it.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        tty.setcbreak(fd)
        out.write("\x1b[?1049h\x1b[?25l")  # the alternate screen, cursor hidden
        while True:
            width, height = shutil.get_terminal_size((80, 24))
            lines = frame(width, height)
            # Home, then each line cleared to its end, then the rest of the screen: no flicker.
            out.write("\x1b[H" + "".join(line + "\x1b[K\r\n" for line in lines[:-1]) +
                      (lines[-1] + "\x1b[K" if lines else "") + "\x1b[J")
            out.flush()
            if select.select([fd], [], [], args.interval)[0]:
                if os.read(fd, 1) in (b"q", b"Q"):
                    return
    except KeyboardInterrupt:
        return
    finally:
        out.write("\x1b[?25h\x1b[?1049l")  # cursor back, main screen back
        out.flush()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main():
    parser = argparse.ArgumentParser(prog="./lab top", description="A live view of a running model (docs/status.md), "
                                     "or of any server's processes and threads (--pid).")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--port", type=int, help="a model's port (its /status.json)")
    which.add_argument("--pid", type=int, help="any server's process id: it and every process below it, from /proc")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between refreshes (default 0.5)")
    parser.add_argument("--once", action="store_true", help="print one plain snapshot and exit")
    args = parser.parse_args()
    if args.once:
        try:
            text = snapshot_text(args)
        except (OSError, ValueError) as e:
            sys.exit(f"top: no process {args.pid}" if args.pid else f"top: no status from {args.host}:{args.port}: {e}")
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `./lab top --once | head`: the reader had enough, which is no error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        sys.exit("top: needs a terminal (or --once for a plain snapshot)")
    live(args, frame_of_pid(args) if args.pid else frame_of_status(args))


if __name__ == "__main__":
    main()
