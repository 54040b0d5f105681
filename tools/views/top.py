#!/usr/bin/python3
"""top.py: a live view of a running model, from its /status.json (docs/status.md).

    ./lab top --port P [--host H] [--interval S] [--once]

Redraws about twice a second: a header (model, accept strategy, uptime,
totals, requests/s) and a row per worker and thread, with requests/s and CPU %
computed from the difference between two polls. Plain ANSI escapes and ASCII
only, so it works over ssh and in an 80x24 terminal; `q` or Ctrl-C quits, and
the terminal is put back as it was whatever happens. --once prints one
snapshot as plain text and exits (for scripts).
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


def snapshot_text(args):
    """--once: two polls a moment apart, so requests/s means something; plain text."""
    first = fetch(args.host, args.port)
    began = time.monotonic()
    time.sleep(min(args.interval, 0.5))
    status = fetch(args.host, args.port)
    seconds = time.monotonic() - began
    rate = rates(status, first, seconds)
    total = max(0, status["totals"]["requests"] - first["totals"]["requests"]) / seconds
    return "\n".join(render(status, rate, total, 200, 10 ** 6))


def live(args):
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    out = sys.stdout
    # The terminal is restored in `finally`, and SIGTERM/SIGHUP become exceptions that reach it.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        tty.setcbreak(fd)
        out.write("\x1b[?1049h\x1b[?25l")  # the alternate screen, cursor hidden
        before, before_t, status, error = None, 0.0, None, None
        while True:
            try:
                now_status = fetch(args.host, args.port)
                now_t = time.monotonic()
                rate = rates(now_status, before, now_t - before_t)
                total = (max(0, now_status["totals"]["requests"] - before["totals"]["requests"]) /
                         (now_t - before_t)) if before else 0.0
                status, error, before, before_t = now_status, None, now_status, now_t
            except (OSError, ValueError) as e:
                if isinstance(e, ConnectionRefusedError):
                    error = "connection refused (server gone?)"
                elif isinstance(e, TimeoutError):
                    error = "no answer within 2 s (every worker busy with a connection?)"
                else:
                    error = str(e)[:60]
                rate, total, before = {}, 0.0, None
            width, height = shutil.get_terminal_size((80, 24))
            lines = render(status, rate, total, width, height, error)
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
    parser = argparse.ArgumentParser(prog="./lab top", description="A live view of a running model (docs/status.md).")
    parser.add_argument("--port", type=int, required=True, help="the model's port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between refreshes (default 0.5)")
    parser.add_argument("--once", action="store_true", help="print one plain snapshot and exit")
    args = parser.parse_args()
    if args.once:
        try:
            text = snapshot_text(args)
        except (OSError, ValueError) as e:
            sys.exit(f"top: no status from {args.host}:{args.port}: {e}")
        try:
            print(text, flush=True)
        except BrokenPipeError:  # `./lab top --once | head`: the reader had enough, which is no error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        sys.exit("top: needs a terminal (or --once for a plain snapshot)")
    live(args)


if __name__ == "__main__":
    main()
