"""proc.py: a server's processes, threads and connections read from /proc,
for the Python tools (the lab grader and `./lab top --pid`); proc.hpp is the
same for the C++ ones.

Everything here reads files a process may disappear from at any moment: a
process or thread that is gone is skipped (or None), never an error. Times
are in clock ticks (os.sysconf("SC_CLK_TCK"), 100 a second on Linux).
"""
import os

TICKS = os.sysconf("SC_CLK_TCK")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def stat(pid, tid=None):
    """(state, ppid, threads, cpu ticks) of a process (or of one of its threads), or None when gone.
    A process's CPU counts its threads, the dead ones included."""
    text = _read(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat")
    if text is None:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[17]), int(fields[11]) + int(fields[12])


def pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root):
    """Every process below `root` (zombies included), by the parent links in /proc."""
    parent = {p: s[1] for p in pids() if (s := stat(p))}
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return sorted(found)


def name(pid):
    """The command line of a process, as ps shows it ("" when gone)."""
    text = _read(f"/proc/{pid}/cmdline") or ""
    return " ".join(text.split("\0")).strip()


def uids(pid):
    """The real, effective, saved and filesystem uids of a process, or () when gone."""
    text = _read(f"/proc/{pid}/status") or ""
    line = next((line for line in text.splitlines() if line.startswith("Uid:")), "")
    return tuple(int(u) for u in line.split()[1:])


def tasks(pid):
    """The thread ids of a process ([] when gone)."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return []


def cpu_ns(pid, tid):
    """Nanoseconds one thread has run on a CPU (/proc/PID/task/TID/schedstat's first field), or,
    on a kernel without schedstat, its clock ticks in nanoseconds; None when gone."""
    text = _read(f"/proc/{pid}/task/{tid}/schedstat")
    if text:
        return int(text.split()[0])
    s = stat(pid, tid)
    return None if s is None else s[3] * 1_000_000_000 // TICKS


def switches(pid, tid):
    """(voluntary, involuntary) context switches of one thread, or (0, 0) when gone."""
    counts = {}
    for line in (_read(f"/proc/{pid}/task/{tid}/status") or "").splitlines():
        key, _, value = line.partition(":")
        if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            counts[key] = int(value)
    return counts.get("voluntary_ctxt_switches", 0), counts.get("nonvoluntary_ctxt_switches", 0)


def voluntary_switches(pid):
    """Voluntary context switches of every live thread of a process: one each time a thread went to sleep."""
    return sum(switches(pid, tid)[0] for tid in tasks(pid))


def asleep(pid):
    """True when every thread of the process sleeps (state S), or the process is gone."""
    return all((s := stat(pid, tid)) is None or s[0] == "S" for tid in tasks(pid))


def rss_kib(pid):
    for line in (_read(f"/proc/{pid}/status") or "").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---- sockets --------------------------------------------------------------------------------

LISTEN, ESTABLISHED, CLOSE_WAIT = "0A", "01", "08"  # the st column of /proc/net/tcp (include/net/tcp_states.h)


def tcp_table():
    """(state, local port, remote port, inode) of every TCP socket, IPv4 and IPv6, from /proc/net/tcp
    and tcp6: those of the reader's network namespace."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in (_read(table) or "").splitlines()[1:]:
            f = line.split()
            yield f[3], int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), int(f[9])


def tcp_sockets(port):
    """[(state, local port, remote port, inode)] of the TCP sockets whose local port is `port`."""
    return [row for row in tcp_table() if row[1] == port]


def tcp_inodes(state):
    """The inodes of the TCP sockets in `state` (ESTABLISHED, LISTEN)."""
    return {inode for st, _, _, inode in tcp_table() if st == state}


def socket_fds(pid):
    """{socket inode: [fd, ...]} of the sockets a process holds."""
    held = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return held
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.setdefault(int(target[8:-1]), []).append(int(fd))
    return held


def holders(pids_, inodes):
    """{inode: {pid, ...}}: which of `pids_` hold each socket of `inodes`."""
    out = {}
    for pid in pids_:
        for inode in socket_fds(pid).keys() & set(inodes):
            out.setdefault(inode, set()).add(pid)
    return out


def fd_flags(pid, fd):
    """The flags line of /proc/PID/fdinfo/FD as a number (O_NONBLOCK is os.O_NONBLOCK), or None."""
    for line in (_read(f"/proc/{pid}/fdinfo/{fd}") or "").splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    return None
