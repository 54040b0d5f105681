#include "process/children.hpp"

#include "base/clock.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace sl {
namespace {

// A leaving child gets its SIGTERM again this often (see ChildTable).
constexpr int64_t kTermEveryMs = 500;

}  // namespace

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

ChildTable::ChildTable(int slots) : rows_(static_cast<size_t>(slots)) {}

void ChildTable::forked(int slot, pid_t pid) {
    rows_[static_cast<size_t>(slot)] = Row{pid, 0, 0};
}

int ChildTable::find(pid_t pid) const {
    if (pid <= 0) return -1;
    for (size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i].pid == pid) return static_cast<int>(i);
    return -1;
}

void ChildTable::reaped(int slot) {
    rows_[static_cast<size_t>(slot)] = Row{};
}

int ChildTable::count() const {
    return static_cast<int>(std::count_if(rows_.begin(), rows_.end(), [](const Row& r) { return r.pid > 0; }));
}

// The only kill() of the parent. A row's pid is one fork() returned, and
// rows are freed as soon as wait() reports them, so it names our child,
// alive or a zombie: never a recycled pid, never -1 or 0.
void ChildTable::send(Row& row, int sig) {
    if (row.pid > 0) ::kill(row.pid, sig);
}

int ChildTable::free_slot() const {
    for (size_t i = 0; i < rows_.size(); ++i)
        if (rows_[i].pid <= 0) return static_cast<int>(i);
    return -1;
}

void ChildTable::ask_to_leave(int slot, int64_t grace_ms) {
    Row& row = rows_[static_cast<size_t>(slot)];
    if (row.pid <= 0) return;
    int64_t now = monotonic_ms();
    int64_t kill_at = now + std::max<int64_t>(grace_ms, 1);
    row.kill_at_ms = row.kill_at_ms == 0 ? kill_at : std::min(row.kill_at_ms, kill_at);
    row.next_term_ms = now + kTermEveryMs;
    send(row, SIGTERM);
}

void ChildTable::ask_all_to_leave(int64_t grace_ms) {
    if (count() > 0) SL_TRACE("stopping {} children: SIGTERM", count());
    for (size_t i = 0; i < rows_.size(); ++i) ask_to_leave(static_cast<int>(i), grace_ms);
}

void ChildTable::kill_all() {
    for (Row& row : rows_) send(row, SIGKILL);
}

int ChildTable::chase() {
    int64_t now = monotonic_ms();
    int killed = 0;
    for (Row& row : rows_) {
        if (row.pid <= 0 || row.kill_at_ms == 0) continue;
        if (now >= row.kill_at_ms) {
            ++killed;
            log("pid {} still running when its grace ended: SIGKILL", row.pid);
            send(row, SIGKILL);
            row.next_term_ms = row.kill_at_ms = INT64_MAX;  // sent once; the reap frees the row
        } else if (now >= row.next_term_ms) {
            send(row, SIGTERM);
            row.next_term_ms = now + kTermEveryMs;
        }
    }
    return killed;
}

int64_t ChildTable::next_chase_ms() const {
    int64_t next = -1;
    for (const Row& row : rows_) {
        if (row.pid <= 0 || row.kill_at_ms == 0 || row.kill_at_ms == INT64_MAX) continue;
        int64_t due = std::min(row.next_term_ms, row.kill_at_ms);
        next = next < 0 ? due : std::min(next, due);
    }
    return next;
}

void stop_children(ChildTable& table, int graceful_timeout_s,
                   const std::function<void(int slot, const ChildExit&)>& reaped) {
    table.ask_all_to_leave(int64_t{graceful_timeout_s} * 1000);
    while (table.count() > 0) {
        for (const ChildExit& e : reap_children()) {
            int slot = table.find(e.pid);
            if (slot < 0) continue;  // not one of the table's
            reaped(slot, e);
            table.reaped(slot);
        }
        if (table.count() == 0) break;
        table.chase();
        wait_for_event(100);  // SIGCHLD wakes us early
    }
}

}  // namespace sl
