// procfs.hpp: reading /proc/<pid>/ the way ps and top do, safely.
//
// A process may exit at any moment, including between the open() of its
// /proc file and the read(): the read then fails with ESRCH. That is not an
// error for the reader, only news that the process is gone, so these calls
// use open/read and say "gone" (an empty optional) instead of throwing, as
// a C++ stream would (std::istreambuf_iterator throws from underflow).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace sl {

/// The whole text of a small /proc file, or nothing if it (or its process) is gone.
std::optional<std::string> read_proc_file(const std::string& path);

/// The fields of /proc/<pid>/stat that serverlab reads (proc(5)); times in seconds.
struct ProcStat {
    pid_t pid = 0, ppid = 0, pgid = 0;
    char state = '?';
    double utime = 0, stime = 0;    // this process's CPU time
    double cutime = 0, cstime = 0;  // its reaped children's
    long threads = 0;
    uint64_t rss_kib = 0;
};

/// /proc/<pid>/stat parsed, or nothing if the process is gone.
std::optional<ProcStat> read_proc_stat(pid_t pid);

}  // namespace sl
