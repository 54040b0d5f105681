"""contain: what stands between a student's server and the machine that grades it.

Grading a class runs strangers' programs. As root, the grader:
- enters a network namespace of its own (unshare CLONE_NEWNET, then brings
  lo up): the grader and the server share a loopback and nothing else;
- starts each server as a uid of its own, with no passwd entry and no groups
  (a fresh one per grading: RLIMIT_NPROC then counts only that submission,
  and every process it left can be found by its uid), with
  PR_SET_NO_NEW_PRIVS (no setuid program gives it root back) and LIMITS;
- gives each server a mount namespace of its own: fresh tmpfs on /tmp,
  /var/tmp and /dev/shm (TMPFS), every other file system read-only (bind
  remounts: this namespace's view, not the file systems), and a copy of the
  submission's directory in /tmp/submission as its working directory, owned
  by its uid. It can fill its tmpfs, not the disk; the teacher's files and
  the other submissions are not its to write; what it writes is thrown away
  with the namespace, so each contract starts from the submission as handed in.
  A directory of more than COPY_MAX (a repository with its builds, say) is
  not copied for every server: it is bound there read-only instead;
- kills every process of that uid after each contract, found by kill(-1)
  sent as that uid (every process it may signal: its own), until none is left.
Where the kernel refuses a namespace (a container without CAP_SYS_ADMIN),
the grader says so and goes on without it: without a mount namespace the
copy is made in a directory of /tmp owned by the uid, and the server can
write wherever its uid may (world-writable directories).
Without root, a user can only lower their own limits: the server runs as
the user, in the user's directory, under LIMITS (RLIMIT_NPROC as many more
processes than the user has now), and the subreaper's cleanup finds what it
left. Both ways, a contract has WALL_S seconds (conftest.py).
`notes` says what this grading has, for the report.
"""
import ctypes
import fcntl
import os
import pwd
import random
import resource
import shutil
import signal
import socket
import stat
import struct
import tempfile
import time

import proc

MIB = 1 << 20
LIMITS = {  # per process, except NPROC: the processes and threads of the uid
    resource.RLIMIT_NPROC: 256,
    resource.RLIMIT_AS: 4096 * MIB,  # Node.js reserves about 0.7 GiB of address space at start
    resource.RLIMIT_CPU: 60,         # seconds; a contract needs a few
    resource.RLIMIT_FSIZE: 64 * MIB,
    resource.RLIMIT_CORE: 0,
}
TMPFS = {"/tmp": "256m", "/var/tmp": "16m", "/dev/shm": "64m"}
KEEP_WRITABLE = {"proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue"}  # kernel interfaces, not storage
WORKDIR = "/tmp/submission"
COPY_MAX = 64 * MIB  # larger directories are bound read-only, not copied (/tmp's tmpfs is 256m)
WALL_S = 60  # per contract

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}  # a bind remount sets its flags anew
PR_SET_NO_NEW_PRIVS = 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _call(name, *args):
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _loopback_up():
    ifreq = "16sH22x"  # struct ifreq: the name, then ifr_flags in a 24-byte union
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack(ifreq, fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack(ifreq, b"lo", 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(ifreq, b"lo", flags | IFF_UP))


def _private_file_systems(keep=None):
    """In a new mount namespace: fresh tmpfs on TMPFS's directories, every other storage read-only.
    Returns a descriptor of directory `keep` opened in the new namespace before a tmpfs could hide it
    (a bind mount's source must be a mount of the caller's namespace: an fd opened before unshare is not)."""
    _call("unshare", CLONE_NEWNS)
    _call("mount", b"none", b"/", None, MS_REC | MS_PRIVATE, None)  # nothing we mount propagates out
    kept = os.open(keep, os.O_RDONLY | os.O_DIRECTORY) if keep else None
    for path, size in TMPFS.items():
        if os.path.isdir(path):
            _call("mount", b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777".encode())
    with open("/proc/self/mountinfo") as f:
        mounts = [(line.split()[4], line.split()[5], line.split(" - ")[1].split()[0]) for line in f]
    for point, options, fstype in mounts:
        point = point.encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
        if fstype in KEEP_WRITABLE or point in TMPFS:
            continue
        flags = sum(flag for name, flag in KEPT_FLAGS.items() if name in options.split(","))
        try:  # MS_BIND: this namespace's view of the mount becomes read-only, not the file system
            _call("mount", None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None)
        except OSError:
            pass  # a mount hidden below another one, or one the kernel locks: what covers it counts
    return kept


def _bind_read_only(source, target):
    """`source` seen at `target`, read-only, in this mount namespace. Not MS_REC: a mount below
    `source` would come along with its own flags, writable. The remount sets the flags anew, so it
    names nodev and nosuid too: a device node in the submission must not reach the device, and
    read-only does not stop writes to a device."""
    os.mkdir(target)
    _call("mount", source.encode(), target.encode(), None, MS_BIND, None)
    _call("mount", None, target.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NODEV | MS_NOSUID, None)


def _larger_than(top, limit):
    """Whether the regular files under `top` hold more than `limit` bytes (stops counting there)."""
    total = 0
    for where, _, files in os.walk(top):  # symbolic links to directories are not followed
        for name in files:
            try:
                st = os.lstat(os.path.join(where, name))
            except OSError:
                continue
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
            if total > limit:
                return True
    return False


def _copy_owned(source, target, uid):
    shutil.copytree(source, target, symlinks=True)
    for top, dirs, files in os.walk(target):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)
    os.chmod(target, 0o700)


def processes_of(uid, zombies=True):
    """Pids whose real, effective or saved uid is `uid` (from /proc/PID/status, which a process
    cannot hide: /proc/PID's owner is root for a process that made itself non-dumpable)."""
    return [p for p in proc.pids() if uid in proc.uids(p)[:3] and (zombies or (proc.stat(p) or "Z")[0] != "Z")]


def free_uid():
    """A uid no account and no process has: 2^30 + a random 24-bit number (far above any
    distribution's ranges, below the 2^32 - 1 that means 'no uid')."""
    while True:
        uid = (1 << 30) + random.randrange(1 << 24)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if not processes_of(uid):
                return uid


class Containment:
    def __init__(self, submission):
        """`submission`: the directory the student's command runs in (a copy of it, as root)."""
        self.submission = os.path.abspath(submission)
        self.root = os.geteuid() == 0
        self.uid = None
        self.private_mounts = False
        self.notes = []
        if self.root:
            self.uid = free_uid()
            self._source = os.open(self.submission, os.O_RDONLY | os.O_DIRECTORY)  # copied from, in each server's preexec
            self._network()
            self.private_mounts = self._try_private_mounts(big=_larger_than(self.submission, COPY_MAX))
        else:
            self.notes.append("runs as you, in your directory (as root it would get a uid, a copy and namespaces "
                              "of its own)")
        # RLIMIT_NPROC counts the tasks (processes and threads) of the real uid, whoever started them.
        mine = 0 if self.root else sum(len(proc.tasks(p)) for p in proc.pids() if proc.uids(p)[:1] == (os.getuid(),))
        self.limits = {**LIMITS, resource.RLIMIT_NPROC: LIMITS[resource.RLIMIT_NPROC] + mine}
        self.notes.append(f"has rlimits of {self.limits[resource.RLIMIT_NPROC]} processes and threads"
                          f"{'' if self.root else ' for your uid'}, {LIMITS[resource.RLIMIT_AS] // MIB} MiB of "
                          f"address space and {LIMITS[resource.RLIMIT_CPU]} s of CPU per process, files up to "
                          f"{LIMITS[resource.RLIMIT_FSIZE] // MIB} MiB, and {WALL_S} s per contract")

    def _network(self):
        try:
            _call("unshare", CLONE_NEWNET)
            _loopback_up()
            self.notes.append("is in a network namespace of its own (loopback only)")
        except OSError as e:
            self.notes.append(f"shares the machine's network ({e})")

    def _try_private_mounts(self, big):
        """Whether the kernel lets a child set up the private file systems (a container may not)."""
        child = os.fork()
        if child == 0:
            try:
                _private_file_systems()
                os._exit(0)
            except BaseException:  # noqa: BLE001 - reported through the exit status
                os._exit(1)
        _, status = os.waitpid(child, 0)
        ok = os.waitstatus_to_exitcode(status) == 0
        self.copy = not (ok and big)
        where = ("in a copy of its directory" if self.copy else
                 f"in a read-only view of its directory (it holds more than {COPY_MAX // MIB} MiB, too much to "
                 f"copy for each server: run ./lab grade from a directory that holds only your server to give it "
                 f"a writable copy)")
        mode = os.stat(self.submission).st_mode & 0o777
        if not self.copy and mode & 0o005 != 0o005:  # the view keeps the owner's modes; the server is another uid
            where += f" whose mode {mode:o} keeps the server's uid out: make it and its files readable by others"
        self.notes.append(f"runs as uid {self.uid} (no account, no groups), {where}, "
                          + ("with its own tmpfs on " + ", ".join(f"{p} ({s})" for p, s in TMPFS.items())
                             + " and every other file system read-only" if ok else
                             "in the machine's file systems (no mount namespace here): it can write where "
                             "its uid may"))
        return ok

    def popen_options(self):
        """Keyword arguments for subprocess.Popen that start the next server contained."""
        limits, uid, submission = self.limits, self.uid, self.submission

        def set_limits():
            for which, value in limits.items():
                _, hard = resource.getrlimit(which)
                cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(which, (cap, cap))
            _call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)

        if not self.root:
            return dict(cwd=self.submission, preexec_fn=set_limits, start_new_session=True)
        if self.private_mounts:
            workdir, source = WORKDIR, f"/proc/self/fd/{self._source}"
        else:
            workdir, source = os.path.join(tempfile.mkdtemp(prefix="serverlab-grade-"), "submission"), None
            os.chmod(os.path.dirname(workdir), 0o711)
            _copy_owned(self.submission, workdir, uid)
            self._host_copies = getattr(self, "_host_copies", []) + [os.path.dirname(workdir)]

        def in_child():  # after fork, as root, before exec: Popen's user= would come too early
            if source is not None:
                if self.copy:
                    _private_file_systems()
                    _copy_owned(source, workdir, uid)
                else:
                    _bind_read_only(f"/proc/self/fd/{_private_file_systems(keep=submission)}", workdir)
            os.chdir(workdir)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            set_limits()

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": workdir, "LANG": "C.UTF-8"}
        # self._source is open in the child until exec (close_fds closes it after preexec_fn): the server never has it.
        return dict(preexec_fn=in_child, start_new_session=True, env=env)

    def kill_all(self):
        """Root: SIGKILL to every process of the uid, sent as the uid (kill(-1) reaches every process
        it may signal but itself), again until none is alive; the caller reaps (it is their subreaper)."""
        if not self.root:
            return
        for _ in range(100):
            helper = os.fork()
            if helper == 0:
                try:
                    os.setgroups([])
                    os.setgid(self.uid)
                    os.setuid(self.uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(helper, 0)
            if not processes_of(self.uid, zombies=False):
                break
            time.sleep(0.01)
        for path in getattr(self, "_host_copies", []):
            shutil.rmtree(path, ignore_errors=True)
        self._host_copies = []
