// children.hpp: the children of a process that forks (02's parent, the
// prefork master): who they are, reaping them, and asking them to leave.
//
// Only the parent calls these, from its main loop, never from a signal
// handler: SIGCHLD merely sets a flag (signals.hpp), and the loop reaps.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sl {

struct ChildExit {
    pid_t pid = 0;
    int status = 0;   // as waitpid(2) reports it
    rusage usage{};   // its CPU time, from wait4(2)
    bool clean() const;  // exited with status 0
};

/// "exited with status 0", "killed by SIGKILL".
std::string describe_exit(int status);

/// Collects every child that has exited: wait4(-1, WNOHANG) until it has
/// nothing more to report. One SIGCHLD may stand for several exits (signals
/// do not queue), hence the loop. After it, no child of ours is a zombie.
/// Each exit is traced.
std::vector<ChildExit> reap_children();

/// The parent's own table of the children it forked, one row per slot, in
/// its private memory: nginx's ngx_processes[]. The pids it signals and
/// reaps come from here and nowhere else. A table in memory that children
/// can write (the scoreboard) is for display: a child, buggy or taken over,
/// could write -1 there, and kill(-1, SIGKILL) as root ends every process
/// of the machine; 0 is the parent's own process group. Apache's
/// CVE-2007-3304 was a master that signalled pids read from its scoreboard.
///
/// It is also the one place that sends signals to children, with one
/// policy for every way a child is asked to leave (a HUP, TTOU, a smaller
/// pool, recycling, a request timeout, a stop): SIGTERM now and again every
/// 500 ms (a child whose SIGTERM landed between its last look at the stop
/// flag and a blocking accept() sleeps on; the next one interrupts it),
/// then SIGKILL once its grace is over.
class ChildTable {
public:
    explicit ChildTable(int slots);

    /// fork() returned `pid` to the parent for `slot`.
    void forked(int slot, pid_t pid);
    /// The slot of live child `pid`, or -1: not ours (or already reaped).
    int find(pid_t pid) const;
    /// wait() reported the child of `slot`: the row is free again.
    void reaped(int slot);

    bool live(int slot) const { return rows_[static_cast<size_t>(slot)].pid > 0; }
    pid_t pid(int slot) const { return rows_[static_cast<size_t>(slot)].pid; }
    bool leaving(int slot) const { return rows_[static_cast<size_t>(slot)].kill_at_ms != 0; }
    size_t size() const { return rows_.size(); }
    /// How many rows have a live child.
    int count() const;
    /// A row with no child, or -1 when every row has one.
    int free_slot() const;

    /// SIGTERM to the child of `slot` now, again every 500 ms, and SIGKILL
    /// `grace_ms` from now if it is still there. Asked again, the earlier
    /// deadline holds.
    void ask_to_leave(int slot, int64_t grace_ms);
    /// Every live child, as ask_to_leave (a graceful stop).
    void ask_all_to_leave(int64_t grace_ms);
    /// SIGKILL to every live child at once (SIGQUIT: no grace).
    void kill_all();
    /// Sends what is due: the SIGTERMs to repeat, the SIGKILLs of graces that
    /// are over (logged). Call from the loop at least every 500 ms while
    /// children are leaving; returns the number of SIGKILLs sent.
    int chase();
    /// When chase() next has something to do (ms, CLOCK_MONOTONIC), or -1.
    int64_t next_chase_ms() const;

private:
    struct Row {
        pid_t pid = 0;
        int64_t next_term_ms = 0;  // leaving: when to repeat the SIGTERM
        int64_t kill_at_ms = 0;    // leaving: SIGKILL then (0: not leaving)
    };
    void send(Row& row, int sig);
    std::vector<Row> rows_;
};

/// The graceful stop of every child in `table`: each is asked to leave
/// (SIGTERM, repeated) with `graceful_timeout_s` of grace, then SIGKILL.
/// `reaped` hears of every exit of a child of the table, before its row is
/// freed. Returns once no row is live.
void stop_children(ChildTable& table, int graceful_timeout_s,
                   const std::function<void(int slot, const ChildExit&)>& reaped);

}  // namespace sl
