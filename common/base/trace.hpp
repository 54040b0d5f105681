// trace.hpp: --trace lines and error logs, both to stderr.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace sl {

/// Names this process (or thread) in every line it writes: "single_process",
/// "master", "worker 3". Call after fork() in the child as well.
void set_role(std::string role);
/// Names the calling thread alone ("loop 2"), over the process's role.
void set_thread_role(std::string role);
const std::string& role();

void enable_trace(bool on);
bool tracing();

/// Writes one whole line with a single write(2), so lines from several
/// processes sharing stderr never interleave mid-line.
void write_line(std::string_view text);

/// `[ 1234.567890] pid 42 tid 42 worker 3: <event>` with CLOCK_MONOTONIC
/// seconds, comparable across processes.
void trace_line(std::string_view event);

/// `<role>: <message>`, always. For errors and the start/stop summaries.
template <class... Args>
void log(fmt::format_string<Args...> format, Args&&... args) {
    write_line(fmt::format("{}: {}", role(), fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace sl

/// SL_TRACE("conn {} from {}", serial, peer_name(fd)): one --trace line.
/// A macro, as glog's LOG_IF and absl's logging macros are, for one reason:
/// without --trace its arguments are not evaluated at all. A function would
/// evaluate them first (peer_name() is a getpeername(2) per connection) and
/// then throw the result away, a cost every model would pay untraced.
#define SL_TRACE(...)                                                                  \
    do {                                                                               \
        if (::sl::tracing()) ::sl::trace_line(::fmt::format(__VA_ARGS__));            \
    } while (0)
