#include "base/trace.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

namespace sl {
namespace {

std::string g_role = "serverlab";
thread_local std::string t_role;  // a thread's own name (07's loops), when it has one
std::atomic<bool> g_trace{false};

}  // namespace

void set_role(std::string role) {
    g_role = std::move(role);
}

void set_thread_role(std::string role) {
    t_role = std::move(role);
}

const std::string& role() {
    return t_role.empty() ? g_role : t_role;
}

void enable_trace(bool on) {
    g_trace = on;
}

bool tracing() {
    return g_trace.load(std::memory_order_relaxed);
}

void write_line(std::string_view text) {
    std::string line(text);
    line += '\n';
    // One write(2) per line; stderr is unbuffered, and a short write to a
    // terminal or pipe is not worth a retry loop for a log line.
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
}

void trace_line(std::string_view event) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    write_line(fmt::format("[{:6}.{:06}] pid {} tid {} {}: {}", ts.tv_sec, ts.tv_nsec / 1000, ::getpid(),
                           ::syscall(SYS_gettid), role(), event));
}

}  // namespace sl
