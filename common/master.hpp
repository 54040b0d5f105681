// master.hpp: the master of a prefork server (03, and 04 later).
//
// It forks the pool's workers, sleeps until a signal arrives or a second
// passes, and keeps the pool as configured: it replaces workers that die
// (with a backoff when they keep dying), grows and shrinks a dynamic pool,
// recycles workers after --max-requests, replaces workers stuck longer than
// --request-timeout, restarts every worker on SIGHUP without dropping a
// request, and stops them all on SIGINT/SIGTERM (gracefully) or SIGQUIT (at
// once). It serves no connection. The lifecycle has the names the literature
// uses: spawn_worker, worker_main, reap_children, retire_worker,
// shutdown_workers (nginx's ngx_process_cycle.c, Apache's prefork.c,
// gunicorn's arbiter.py). docs/03-prefork.md sets each behaviour beside the
// server it comes from.
#pragma once

#include "pool.hpp"
#include "scoreboard.hpp"

#include <functional>
#include <string_view>

namespace sl {

class Dispatcher;

struct MasterOptions {
    std::string_view model;
    PoolOptions pool;
    Dispatcher* dispatcher = nullptr;  // where the master hands out connections (--accept pass-fd)
};

/// What runs in a worker after fork(): gets its slot, returns its exit status.
/// A worker that leaves on its own (--max-requests) returns 0.
using WorkerMain = std::function<int(int slot)>;

/// Runs the master until a stop; returns the process's exit status: 0 after a
/// stop, 1 when workers kept failing before they were ready. Call after
/// listen() and after creating the scoreboard (options.pool.slots() slots),
/// so workers inherit both.
///
/// Every worker:
///  - has role "worker N" in logs and traces; SIGINT/SIGTERM stop it
///    gracefully; the master's other signals are ignored;
///  - never outlives the master: PR_SET_PDEATHSIG delivers SIGKILL when the
///    master dies, and a master that died before prctl() is caught by
///    checking getppid() after it.
int run_master(Scoreboard& board, const MasterOptions& options, const WorkerMain& worker_main);

}  // namespace sl
