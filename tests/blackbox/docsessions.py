"""The terminal sessions shown in the docs, found and replayed (test_docs.py).

A session is a fenced block whose info string is `console`:

    ```console
    $ build/bin/single_process --port 8080 &
    single_process listening on 127.0.0.1:8080 pid 4306
    $ printf 'PING\\n' | nc -N 127.0.0.1 8080
    PONG
    ```

Lines that begin with `$ ` are commands; the lines after one, up to the next
command, are what it printed. The blocks of one page are one session, run in
order in one shell, as a reader types along the page (a server started in
one block is still there in the next). Before comparing, both sides are masked where a
run cannot repeat itself (pids, times, CPU seconds, ephemeral ports), and a
line `...` stands for any number of lines. A block whose first line is a
comment (`# needs a second terminal`, `# not run: ...`) is shown to the reader
but not replayed.

Each page's session runs in a shell of its own, in new PID and network namespaces
(`unshare`, root only): port 8080 is always free there, `pgrep` sees only the
session's processes, and everything the session started dies with it. The
commands run one at a time, from the repository's root, with stdin from
/dev/null; what a command prints, and what its background jobs print until
the output has been quiet for a moment, is its output.
"""
import os
import re
import select
import signal
import subprocess
import time

import markdown

MARK = "__serverlab_session_done__"

# (pattern, replacement): what a run cannot repeat. Applied to both sides.
MASKS = [
    (re.compile(r"\[\s*\d+\.\d+\]"), "[TIME]"),                       # --trace's monotonic seconds
    (re.compile(r"\b(pid|ppid|tid)([= ])\d+"), r"\1\2N"),            # WHO, the listening line, traces
    (re.compile(r"\(pid \d+\)"), "(pid N)"),
    (re.compile(r"\b(prefork|prefork_threads|fork_per_conn|single_process|event_loop|prefork_event_l)\((\d+)\)"), r"\1(N)"),  # pstree
    (re.compile(r"\bfd=\d+"), "fd=N"),                                # ss -p
    (re.compile(r"\b\d+\.\d{3} s\b"), "N s"),                          # CPU seconds in summaries
    (re.compile(r"\b\d+\.\d{3}\b"), "N.NNN"),                          # CPU seconds in tables
    (re.compile(r"uptime_ms=\d+"), "uptime_ms=N"),
    (re.compile(r'"(pid|tid|uptime_ms|cpu_ms)": \d+'), r'"\1": N'),  # /status.json
    (re.compile(r"\bup \d+ s\b"), "up N s"),                        # ./lab top's header
    (re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b"), "DATE"),            # compare's title
    (re.compile(r"\b\d{8}-\d{6}\b"), "STAMP"),                          # results/<timestamp>/
    (re.compile(r"(?<=\| )[\d.N]+(?= \|)"), "N"),                         # a number in a Markdown table
    (re.compile(r"cpu_ms=\d+"), "cpu_ms=N"),                          # STATUS
    (re.compile(r"^Date: .*$"), "Date: D"),
    (re.compile(r"127\.0\.0\.1:(?!8080\b)\d+"), "127.0.0.1:PORT"),   # a client's ephemeral port
    (re.compile(r"\bconn=\d+"), "conn=N"),
    (re.compile(r"\bworker=\d+"), "worker=N"),                       # which worker the kernel woke
    (re.compile(r"\bworker \d+\b"), "worker N"),                       # which worker died first
]


class Session:
    def __init__(self, path, line, commands, skip=None):
        self.path, self.line, self.commands, self.skip = path, line, commands, skip

    def __repr__(self):
        return f"{self.path}:{self.line}"


def sessions(path):
    """Every ```console block of a Markdown file, as Session(path, line, [(command, [expected lines])])."""
    found = []
    for block in markdown.blocks(path):
        if block.info != "console":
            continue
        commands, skip = [], None
        if block.lines and block.lines[0].startswith("# "):
            skip = block.lines[0][2:]
        for text in block.lines:
            if text.startswith("$ "):
                commands.append((text[2:], []))
            elif commands:
                commands[-1][1].append(text)
        found.append(Session(path, block.line, commands, skip))
    return found


def mask(line):
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())  # table columns move with the width of a pid


def matches(expected, actual):
    """Do the actual lines fit the expected ones (masked; `...` = any lines)?"""
    expected = [mask(e) for e in expected]
    actual = [mask(a) for a in actual if a.strip()]
    expected = [e for e in expected if e]

    def fit(i, j):
        if i == len(expected):
            return j == len(actual)
        if expected[i] == "...":
            return any(fit(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and expected[i] == actual[j] and fit(i + 1, j + 1)

    return fit(0, 0)


class Shell:
    """A bash in new PID and network namespaces, fed one command at a time."""

    def __init__(self, cwd, env=None):
        # bash reads the commands on fd 3, so that every command's stdin is /dev/null.
        loop = (f'exec 3<&0 0</dev/null; ip link set lo up; '
                f'while IFS= read -r line <&3; do eval "$line"; echo {MARK}; done')
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--", "bash", "--norc", "--noprofile", "-c", loop],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, env=env,
            start_new_session=True)
        self.pending = b""

    def run(self, command, expected, timeout=20.0, wait_for_background=5.0):
        """What `command` printed, and what its background jobs printed after it.

        Output after the command returns (a server started with `&` printing
        its listening line) is awaited until it matches `expected` or
        `wait_for_background` seconds pass: a session on a page is typed by a
        person, who waits for what the page shows before the next command."""
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        out, deadline = self.pending, time.monotonic() + timeout
        self.pending = b""
        while MARK.encode() + b"\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"`{command}` did not finish within {timeout} s; it printed {out.decode()[-500:]!r}")
            out += self._read(left)
        before, _, after = out.partition(MARK.encode() + b"\n")
        out = before + after
        deadline = time.monotonic() + wait_for_background
        while not matches(expected, out.decode(errors="replace").splitlines()) and time.monotonic() < deadline:
            out += self._read(deadline - time.monotonic())
        return out.decode(errors="replace").splitlines()

    def _read(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not ready:
            return b""
        data = os.read(self.proc.stdout.fileno(), 65536)
        if not data:
            raise ConnectionError("the session's shell exited")
        return data

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the namespace's first process dies, and with it all of them
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
