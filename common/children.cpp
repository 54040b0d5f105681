#include "children.hpp"

#include "clock.hpp"
#include "signals.hpp"
#include "trace.hpp"

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

void Children::add(pid_t pid, int slot) {
    table_[pid] = slot;
}

std::vector<pid_t> Children::pids() const {
    std::vector<pid_t> out;
    for (const auto& [pid, slot] : table_) out.push_back(pid);
    return out;
}

std::vector<ChildExit> Children::reap() {
    std::vector<ChildExit> exits;
    for (;;) {
        ChildExit e;
        pid_t pid = ::wait4(-1, &e.status, WNOHANG, &e.usage);
        if (pid == 0) break;                   // children left, none exited
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) break;                    // ECHILD: no children at all
        auto it = table_.find(pid);
        e.pid = pid;
        e.slot = it == table_.end() ? -1 : it->second;
        if (it != table_.end()) table_.erase(it);
        trace("reaped pid {}{}: {}", pid, e.slot >= 0 ? fmt::format(" (worker {})", e.slot) : "",
              describe_exit(e.status));
        exits.push_back(e);
    }
    return exits;
}

void Children::signal_all(int sig) {
    for (const auto& [pid, slot] : table_) ::kill(pid, sig);
}

std::vector<ChildExit> Children::stop_all(int graceful_timeout_s) {
    std::vector<ChildExit> exits;
    const int64_t deadline = monotonic_ms() + int64_t{graceful_timeout_s} * 1000;
    int64_t last_term = monotonic_ms();
    bool killed = false;
    if (!table_.empty()) trace("stopping {} children: SIGTERM", table_.size());
    signal_all(SIGTERM);
    for (;;) {
        for (ChildExit& e : reap()) exits.push_back(e);
        if (table_.empty()) break;
        int64_t now = monotonic_ms();
        if (!killed && now >= deadline) {
            log("{} children still running after --graceful-timeout {} s: SIGKILL", table_.size(),
                graceful_timeout_s);
            signal_all(SIGKILL);
            killed = true;
        } else if (!killed && now - last_term >= 500) {
            signal_all(SIGTERM);
            last_term = now;
        }
        wait_for_event(100);  // SIGCHLD wakes us early
    }
    return exits;
}

}  // namespace sl
