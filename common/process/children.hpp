// children.hpp: reaping and stopping the children of a process that forks
// (02's parent, the prefork master).
//
// Only the parent calls these, from its main loop, never from a signal
// handler: SIGCHLD merely sets a flag (signals.hpp), and the loop reaps.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

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

/// The graceful stop: SIGTERM to every child `alive()` lists, sent again
/// every 500 ms (a child that was about to block in accept() when the first
/// one came gets the next), then SIGKILL to those left after
/// `graceful_timeout_s`. `reaped` hears of every exit; returns once alive()
/// is empty.
void stop_children(int graceful_timeout_s, const std::function<std::vector<pid_t>()>& alive,
                   const std::function<void(const ChildExit&)>& reaped);

}  // namespace sl
