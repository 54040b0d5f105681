// children.hpp: the child table of a process that forks (02's parent, the
// prefork master): who is alive, reaping, and stopping them all.
//
// Only the parent touches it, from its main loop, never from a signal
// handler: SIGCHLD merely sets a flag (signals.hpp), and the loop calls reap().
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace sl {

struct ChildExit {
    pid_t pid = 0;
    int slot = -1;    // the scoreboard slot it served, or -1
    int status = 0;   // as waitpid(2) reports it
    rusage usage{};   // its CPU time, from wait4(2)
    bool clean() const;  // exited with status 0
};

/// "exited with status 0", "killed by SIGKILL".
std::string describe_exit(int status);

class Children {
public:
    void add(pid_t pid, int slot = -1);
    size_t live() const { return table_.size(); }
    std::vector<pid_t> pids() const;

    /// Collects every child that has exited: wait4(-1, WNOHANG) until it has
    /// nothing more to report. One SIGCHLD may stand for several exits
    /// (signals do not queue), hence the loop. After it, no child of ours is a
    /// zombie. Each exit is traced.
    std::vector<ChildExit> reap();

    void signal_all(int sig);

    /// The graceful stop: SIGTERM to every child, sent again every 500 ms
    /// (a child that was about to block in accept() when the first one came
    /// gets the next), then SIGKILL to stragglers after `graceful_timeout_s`.
    /// Returns once every child is reaped.
    std::vector<ChildExit> stop_all(int graceful_timeout_s);

private:
    std::map<pid_t, int> table_;  // pid -> slot
};

}  // namespace sl
