// master.hpp: the master of a prefork server (03, and 04 later).
//
// It forks one worker per scoreboard slot, sleeps until a signal arrives,
// replaces any worker that dies, prints the scoreboard on SIGUSR1, and on
// SIGINT/SIGTERM stops every worker gracefully. It serves no connection.
// The lifecycle has the names the literature uses: spawn_worker,
// worker_main, reap_children, shutdown_workers (nginx's
// ngx_process_cycle.c, Apache's prefork.c).
#pragma once

#include "scoreboard.hpp"

#include <functional>
#include <string_view>

namespace sl {

class Dispatcher;

struct MasterOptions {
    std::string_view model;
    int graceful_timeout_s = 10;
    Dispatcher* dispatcher = nullptr;  // where the master hands out connections (--accept pass-fd)
};

/// What runs in a worker after fork(): gets its slot, returns its exit status.
using WorkerMain = std::function<int(int slot)>;

/// Runs the master until a stop; returns the process's exit status (0 after a
/// graceful stop). Call after listen() and after creating the scoreboard, so
/// workers inherit both.
///
/// Every worker:
///  - has role "worker N" in logs and traces, and default signal dispositions
///    but for SIGINT/SIGTERM (graceful stop) and SIGUSR1 (ignored);
///  - never outlives the master: PR_SET_PDEATHSIG delivers SIGKILL when the
///    master dies, and a master that died before prctl() is caught by
///    checking getppid() after it.
int run_master(Scoreboard& board, const MasterOptions& options, const WorkerMain& worker_main);

}  // namespace sl
