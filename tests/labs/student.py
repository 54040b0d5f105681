"""A student's server under test: started from any command line, stopped whole.

The grader makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
every process the server forks stays a descendant of the grader even after
its parent dies or it moves to a session of its own (setsid): the server is
every process below the grader, those it adopted included. At the end the
grader SIGKILLs them all (as root, every process of the server's uid too:
contain.py) and reaps them. Nothing is left behind, whatever the server does
with signals.
"""
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time

import proc

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


def reap():
    """Collects every child of the grader that has exited (the server's orphans end up here)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_everything(containment, also=()):
    """SIGKILL to every process below the grader, to `also`, and (as root) to every process of the
    server's uid, found again until none is left; each is reaped."""
    grader = os.getpid()
    for _ in range(50):
        pids = set(proc.descendants(grader)) | {p for p in also if proc.stat(p)}
        pids.discard(grader)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        containment.kill_all()
        time.sleep(0.02)
        reap()


class StudentServer:
    """Starts `argv` with {port} replaced (and {backend}, lab 9's, by `backend`: HOST:PORT), as the
    containment says (in a copy of the submission as root, in the submission itself otherwise);
    waits until the port accepts."""

    def __init__(self, argv, containment, startup_timeout=10.0, backend=None):
        self.containment = containment
        self.port = free_port()
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        if backend:
            self.argv = [a.replace("{backend}", backend) for a in self.argv]
        self.output = tempfile.TemporaryFile()
        self.grader = os.getpid()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.output,
                                         stderr=subprocess.STDOUT, **containment.popen_options())
        except (OSError, subprocess.SubprocessError) as e:  # no such program, not executable, no such directory
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
        """Every process of the server, live or zombie: the grader's descendants (the processes the
        server left to it included) and, as root, every process of the server's uid."""
        found = set(proc.descendants(self.grader))
        if self.containment.uid is not None:
            from contain import processes_of
            found |= set(processes_of(self.containment.uid))
        return sorted(found)

    def processes(self):
        """Live processes of the server (zombies are not serving)."""
        return [p for p in self.tree() if (s := proc.stat(p)) and s[0] != "Z"]

    def adopted(self):
        """Live processes of the server whose parent died: the grader, their subreaper, adopted them."""
        return [p for p in self.processes() if p != self.pid and (s := proc.stat(p)) and s[1] == self.grader]

    def zombies(self):
        """Dead children a live process of the server has not waited for."""
        alive = set(self.processes())
        return [p for p in self.tree() if (s := proc.stat(p)) and s[0] == "Z" and s[1] in alive]

    def workers(self):
        """The server's direct children that are alive."""
        return [p for p in self.processes() if (s := proc.stat(p)) and s[1] == self.pid]

    def threads(self):
        return sum(s[2] for p in self.processes() if (s := proc.stat(p)))

    def fds(self):
        total = 0
        for p in self.processes():
            try:
                total += len(os.listdir(f"/proc/{p}/fd"))
            except OSError:
                pass
        return total

    def connect(self, timeout=5.0):
        from client import Client
        return Client(HOST, self.port, timeout)

    def kill(self):
        """SIGKILL to every process of the server, found again until none is left, then reaped."""
        kill_everything(self.containment, also=self.tree())
        try:
            self.proc.wait(timeout=1)
        except (subprocess.TimeoutExpired, ChildProcessError):
            pass
