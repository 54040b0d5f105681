#include "process/children.hpp"

#include "base/clock.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"

#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace sl {

bool ChildExit::clean() const {
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const char* name = sigabbrev_np(WTERMSIG(status));
        return fmt::format("killed by SIG{}{}", name ? name : std::to_string(WTERMSIG(status)).c_str(),
                           WCOREDUMP(status) ? " (core dumped)" : "");
    }
    return fmt::format("status {:#x}", status);
}

std::vector<ChildExit> reap_children() {
    std::vector<ChildExit> exits;
    for (;;) {
        ChildExit e;
        pid_t pid = ::wait4(-1, &e.status, WNOHANG, &e.usage);
        if (pid == 0) break;  // children left, none exited
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;  // ECHILD: no children at all
        e.pid = pid;
        SL_TRACE("reaped pid {}: {}", pid, describe_exit(e.status));
        exits.push_back(e);
    }
    return exits;
}

void stop_children(int graceful_timeout_s, const std::function<std::vector<pid_t>()>& alive,
                   const std::function<void(const ChildExit&)>& reaped) {
    auto signal_all = [&](int sig) {
        for (pid_t pid : alive()) ::kill(pid, sig);
    };
    const int64_t deadline = monotonic_ms() + int64_t{graceful_timeout_s} * 1000;
    int64_t last_term = monotonic_ms();
    bool killed = false;
    if (!alive().empty()) SL_TRACE("stopping {} children: SIGTERM", alive().size());
    signal_all(SIGTERM);
    for (;;) {
        for (const ChildExit& e : reap_children()) reaped(e);
        if (alive().empty()) return;
        int64_t now = monotonic_ms();
        if (!killed && now >= deadline) {
            log("{} children still running after --graceful-timeout {} s: SIGKILL", alive().size(),
                graceful_timeout_s);
            signal_all(SIGKILL);
            killed = true;
        } else if (!killed && now - last_term >= 500) {
            signal_all(SIGTERM);
            last_term = now;
        }
        wait_for_event(100);  // SIGCHLD wakes us early
    }
}

}  // namespace sl
