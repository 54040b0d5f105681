// trace.hpp: --trace lines and error logs, both to stderr.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace sl {

/// Names this process (or thread) in every line it writes: "single_process",
/// "master", "worker 3". Call after fork() in the child as well.
void set_role(std::string role);
const std::string& role();

void enable_trace(bool on);
bool tracing();

/// Writes one whole line with a single write(2), so lines from several
/// processes sharing stderr never interleave mid-line.
void write_line(std::string_view text);

/// `[ 1234.567890] pid 42 tid 42 worker 3: <event>` with CLOCK_MONOTONIC
/// seconds, comparable across processes. Only under --trace.
void trace_line(std::string_view event);

template <class... Args>
void trace(fmt::format_string<Args...> format, Args&&... args) {
    if (tracing()) trace_line(fmt::format(format, std::forward<Args>(args)...));
}

/// `<role>: <message>`, always. For errors and the start/stop summaries.
template <class... Args>
void log(fmt::format_string<Args...> format, Args&&... args) {
    write_line(fmt::format("{}: {}", role(), fmt::format(format, std::forward<Args>(args)...)));
}

}  // namespace sl
