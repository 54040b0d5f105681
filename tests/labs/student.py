"""A student's server under test: started from any command line, stopped whole.

The grader makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
every process the server forks stays a descendant of the grader even after
its parent dies or it moves to a session of its own (setsid): at the end the
grader finds every one of them through /proc, SIGKILLs them and reaps them.
Nothing is left behind, whatever the server does with signals.
"""
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stat(pid):
    """(state, ppid, threads) or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[17])


def descendants(root):
    """Every live process below `root` (zombies included), by the parent links in /proc."""
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit() and (s := stat(int(p))):
            parent[int(p)] = s[1]
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return sorted(found)


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class StudentServer:
    """Starts `argv` with {port} replaced, in directory `cwd` (relative paths in
    argv resolve there); waits until the port accepts connections."""

    def __init__(self, argv, cwd=None, startup_timeout=10.0):
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.output = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(self.argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self.output,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:  # no such program, not executable, no such directory
            raise RuntimeError(f"the server could not be started: {e}") from e
        self.pid = self.proc.pid
        deadline = time.monotonic() + startup_timeout
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                why = "exited" if self.proc.returncode is not None else f"was not accepting after {startup_timeout} s"
                raise RuntimeError(f"the server {why} on port {self.port}: {' '.join(self.argv)}\n"
                                   f"its output: {self.text()[-2000:]}")
            time.sleep(0.05)

    def _accepts(self):
        try:
            socket.create_connection((HOST, self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def text(self):
        self.output.seek(0)
        return self.output.read().decode(errors="replace")

    def tree(self):
        """The server and every process below it (live or zombie)."""
        return ([self.pid] if stat(self.pid) else []) + descendants(self.pid)

    def processes(self):
        """Live processes of the server (zombies are not serving)."""
        return [p for p in self.tree() if (s := stat(p)) and s[0] != "Z"]

    def zombies(self):
        return [p for p in descendants(self.pid) if (s := stat(p)) and s[0] == "Z"]

    def workers(self):
        """The server's direct children that are alive."""
        return [p for p in descendants(self.pid) if (s := stat(p)) and s[1] == self.pid and s[0] != "Z"]

    def threads(self):
        return sum(s[2] for p in self.processes() if (s := stat(p)))

    def fds(self):
        return sum(fd_count(p) for p in self.processes())

    def connect(self, timeout=5.0):
        from client import Client
        return Client(HOST, self.port, timeout)

    def kill(self):
        """SIGKILL to every process of the tree, found again until none is left, then reaped."""
        for _ in range(50):
            pids = [self.pid] * (self.proc.poll() is None) + descendants(os.getpid())
            pids = [p for p in set(pids) if p != os.getpid()]
            if not pids:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for p in pids:  # reap what the subreaper inherited (Popen reaps its own)
                if p != self.pid:
                    try:
                        os.waitpid(p, os.WNOHANG)
                    except ChildProcessError:
                        pass
            try:
                self.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.02)
