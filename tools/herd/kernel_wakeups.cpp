#include "kernel_wakeups.hpp"

#include <fmt/format.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace lg {
namespace {

// A tracepoint's id ("sched/sched_wakeup"), from tracefs. If tracefs is not
// mounted and we are root, mount it where the kernel documents it (perf does the same).
std::optional<uint64_t> tracepoint_id(std::string& why_not, const std::string& event = "sched/sched_wakeup") {
    const char* dirs[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
    for (int attempt = 0; attempt < 2; ++attempt) {
        for (const char* dir : dirs) {
            std::string path = std::string(dir) + "/events/" + event + "/id";
            std::ifstream in(path);
            uint64_t id = 0;
            if (in >> id) return id;
            if (::access(path.c_str(), F_OK) == 0) {  // there, but not ours to read (tracefs is root's)
                why_not = fmt::format("cannot read {} (tracefs is readable by root only here)", path);
                return std::nullopt;
            }
        }
        struct stat st {};
        if (attempt == 0 && ::stat("/sys/kernel/tracing", &st) == 0 &&
            ::mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
            break;
        }
    }
    why_not = fmt::format("no tracefs with events/{} (mount -t tracefs nodev /sys/kernel/tracing, as root)", event);
    return std::nullopt;
}

// The tracepoint records the woken task's pid as the initial PID namespace
// numbers it (the kernel's task->pid); inside a container's namespace the
// workers have other numbers, no filter on ours would ever match, and the
// count would read 0 with no error. PROC_PID_INIT_INO (include/linux/proc_ns.h)
// is the inode of the initial namespace's /proc/PID/ns/pid.
bool in_initial_pid_namespace() {
    struct stat st {};
    if (::stat("/proc/self/ns/pid", &st) != 0) return true;  // cannot tell (no /proc/self/ns): try
    return st.st_ino == 0xEFFFFFFCU;
}

long perf_event_open(perf_event_attr* attr, pid_t pid, int cpu) {
    return ::syscall(SYS_perf_event_open, attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

}  // namespace

std::string woken_filter(const std::vector<pid_t>& pids) {
    std::string out;
    for (pid_t p : pids) out += fmt::format("{}pid == {}", out.empty() ? "" : " || ", p);
    return out;
}

std::optional<KernelWakeups> KernelWakeups::open(const std::vector<pid_t>& pids, std::string& why_not) {
    if (const char* off = std::getenv("SERVERLAB_NO_PERF"); off && *off && std::strcmp(off, "0") != 0) {
        why_not = "turned off by SERVERLAB_NO_PERF";
        return std::nullopt;
    }
    if (pids.empty()) {
        why_not = "no process to watch";
        return std::nullopt;
    }
    if (!in_initial_pid_namespace()) {
        why_not = "in a PID namespace (a container?): the tracepoint names tasks by the host's pids, not these";
        return std::nullopt;
    }
    auto id = tracepoint_id(why_not);
    if (!id) return std::nullopt;
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = *id;  // counting only: no sampling, nothing is read but the count
    attr.disabled = 1;  // enabled once the filter is set, so nothing unfiltered is counted
    const std::string filter = woken_filter(pids);
    KernelWakeups k;
    long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
    for (int cpu = 0; cpu < cpus; ++cpu) {
        long fd = perf_event_open(&attr, -1, cpu);
        if (fd < 0 && errno == ENODEV) continue;  // a CPU that is offline
        if (fd < 0) {
            why_not = errno == EACCES || errno == EPERM
                          ? "not permitted (a counter per CPU needs root, CAP_PERFMON or kernel.perf_event_paranoid <= 0)"
                          : fmt::format("perf_event_open: {}", std::strerror(errno));
            return std::nullopt;
        }
        sl::Fd counter(static_cast<int>(fd));
        if (::ioctl(counter.get(), PERF_EVENT_IOC_SET_FILTER, filter.c_str()) != 0 ||
            ::ioctl(counter.get(), PERF_EVENT_IOC_ENABLE, 0) != 0) {
            why_not = fmt::format("perf filter or enable: {}", std::strerror(errno));
            return std::nullopt;
        }
        k.per_cpu_.push_back(std::move(counter));
    }
    if (k.per_cpu_.empty()) {
        why_not = "no online CPU";
        return std::nullopt;
    }
    return k;
}

uint64_t KernelWakeups::count() const {
    uint64_t total = 0;
    for (const sl::Fd& fd : per_cpu_) {
        uint64_t value = 0;
        ssize_t n;
        do n = ::read(fd.get(), &value, sizeof value);
        while (n < 0 && errno == EINTR);
        if (n == sizeof value) total += value;
    }
    return total;
}

std::optional<TaskSyscalls> TaskSyscalls::open(pid_t pid, std::string& why_not) {
    if (const char* off = std::getenv("SERVERLAB_NO_PERF"); off && *off && std::strcmp(off, "0") != 0) {
        why_not = "turned off by SERVERLAB_NO_PERF";
        return std::nullopt;
    }
    auto id = tracepoint_id(why_not, "raw_syscalls/sys_enter");
    if (!id) return std::nullopt;
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = *id;
    attr.inherit = 1;  // and the threads it starts from now on (08's --offload)
    // The tracepoint fires in the calling task's context: a counter attached
    // to the server's pid, on every CPU, counts its system calls and no one else's.
    long fd = perf_event_open(&attr, pid, -1);
    if (fd < 0) {
        why_not = errno == EACCES || errno == EPERM
                      ? "not permitted (a tracepoint counter needs root, CAP_PERFMON or kernel.perf_event_paranoid <= 1)"
                      : fmt::format("perf_event_open: {}", std::strerror(errno));
        return std::nullopt;
    }
    TaskSyscalls s;
    s.counter_ = sl::Fd(static_cast<int>(fd));
    return s;
}

uint64_t TaskSyscalls::count() const {
    uint64_t value = 0;
    ssize_t n;
    do n = ::read(counter_.get(), &value, sizeof value);
    while (n < 0 && errno == EINTR);
    return n == sizeof value ? value : 0;
}

}  // namespace lg
