// kernel_wakeups.hpp: how many times the kernel woke a set of processes,
// counted at the scheduler's sched:sched_wakeup tracepoint (herd, compare's
// herd scenario; docs/thundering-herd.md).
//
// The tracepoint never fires in the woken task's context: in the waker's
// (the softirq that queued the connection, another worker), or, for a
// wakeup handed to the woken task's CPU, in whatever runs there. A counter
// attached to a worker's pid would count the wakeups that worker causes. So there is one counter per CPU for every task (pid -1),
// each with a filter on the tracepoint's `pid` field, the woken task's.
// A counter per CPU needs root, CAP_PERFMON, or kernel.perf_event_paranoid
// <= 0 (perf_allow_cpu() in the kernel), and pids that the tracepoint names
// the same way (not inside a PID namespace); where that is not so, open()
// says why and the caller falls back to voluntary context switches. Only
// the measuring tools count: the servers never pay for it.
#pragma once

#include "base/fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lg {

/// "pid == 12 || pid == 13": the tracepoint filter for wakeups of these tasks.
std::string woken_filter(const std::vector<pid_t>& pids);

class KernelWakeups {
public:
    /// Counters for wakeups of `pids` on every online CPU, counting from
    /// now; or nothing, with `why_not` saying what was missing or refused.
    /// SERVERLAB_NO_PERF=1 in the environment refuses too (to test the fallback).
    static std::optional<KernelWakeups> open(const std::vector<pid_t>& pids, std::string& why_not);
    /// Wakeups counted so far, summed over the CPUs.
    uint64_t count() const;

private:
    std::vector<sl::Fd> per_cpu_;
};

/// System calls made by one process (its threads included), counted at the
/// raw_syscalls:sys_enter tracepoint (compare's uring scenario: system calls
/// per request). Needs root, CAP_PERFMON or kernel.perf_event_paranoid <= 1.
class TaskSyscalls {
public:
    /// A counter on `pid` from now on, or nothing, with `why_not`.
    static std::optional<TaskSyscalls> open(pid_t pid, std::string& why_not);
    uint64_t count() const;

private:
    sl::Fd counter_;
};

}  // namespace lg
