// report.hpp: the master's table of workers, printed on SIGUSR1 and at stop.
#pragma once

#include "process/scoreboard.hpp"

#include <sys/resource.h>

#include <vector>

namespace sl {

/// One line per slot that ever had a worker: slot, pid, generation, place,
/// state, accepts, requests, wakeups, spurious, lock_waits, and CPU seconds
/// (from /proc while the worker runs, from wait4()'s `reaped[slot]` once it
/// is reaped); then 04's threads of live workers; then the master's events
/// (spawned, died, retired, backoffs) beside the pool's `target` size. Written
/// to stderr with one write(2), so workers' traces never cut into it.
void print_worker_table(const Scoreboard& board, const std::vector<rusage>& reaped, int target);

}  // namespace sl
