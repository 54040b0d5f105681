// master.hpp: the master of a prefork server (03, 04, and 06 later).
//
// It forks the pool's workers, sleeps until a signal arrives or a second
// passes, and keeps the pool as configured: it replaces workers that die
// (with a backoff when they keep dying), grows and shrinks a dynamic pool,
// recycles workers after --max-requests, replaces workers stuck longer than
// --request-timeout, restarts every worker on SIGHUP, and stops them all on
// SIGINT/SIGTERM (gracefully) or SIGQUIT (at once). It serves no connection.
// Replacing and retiring workers (HUP, TTOU, a shrinking pool, recycling)
// loses no request that was accepted, with any accept strategy: a worker is
// replaced only once its successor is ready, a leaving worker finishes what
// it has, and the two strategies in which connections wait somewhere of a
// worker's own (reuseport's listener, pass-fd's channel) keep them for a
// successor or serve them before leaving (accept.hpp). What does lose
// requests, on purpose: SIGQUIT (SIGKILL to every worker), --request-timeout
// (a stuck worker is killed with its request), and a worker that crashes.
// A graceful stop answers every request in flight that ends within
// --graceful-timeout; a worker still busy then gets SIGKILL.
//
// The lifecycle has the names the literature uses: spawn_worker,
// worker_main, reap_children, retire_worker, shutdown_workers (nginx's
// ngx_process_cycle.c, Apache's prefork.c, gunicorn's arbiter.py).
// docs/03-prefork.md sets each behaviour beside the server it comes from.
#pragma once

#include "accept/accept.hpp"
#include "base/cli.hpp"
#include "net/server.hpp"
#include "process/pool.hpp"
#include "process/scoreboard.hpp"

#include <functional>
#include <string_view>

namespace sl {

struct MasterOptions {
    std::string_view model;
    PoolOptions pool;
};

/// The context a worker of a prefork model serves with (03, 04, 06): WHO
/// names its slot, STATS and STATUS read the whole scoreboard, and it counts
/// into its slot (04: each thread sets its own `counters` instead). INCR
/// counts in `store`. `accept` is the strategy's name, for STATUS. `board`
/// and `store` must outlive it.
ServerContext worker_context(const MasterOptions& master, const CommonOptions& options, Scoreboard& board,
                             int slot, std::string_view accept, CounterStore& store);

/// What runs in a worker after fork(): gets who it is, returns its exit
/// status. A worker that leaves on its own (--max-requests) returns 0.
using WorkerMain = std::function<int(const WorkerId& me)>;

/// Runs the master until a stop; returns the process's exit status: 0 after a
/// stop, 1 when workers kept failing before they were ready. Call after
/// listen(), after creating the scoreboard (options.pool.slots() slots) and
/// the accept strategy, so that workers inherit all three. `side` is the
/// strategy's part in the master (AcceptStrategy::master_side()), or nullptr.
///
/// Every worker:
///  - is forked by fork_child() (signals.hpp): signals blocked around fork,
///    the master's handlers and pipes reset before they are unblocked;
///  - has role "worker N" in logs and traces; SIGINT/SIGTERM stop it
///    gracefully; the master's other signals are ignored;
///  - never outlives the master: PR_SET_PDEATHSIG delivers SIGKILL when the
///    master dies, and a master that died before prctl() is caught by
///    checking getppid() after it.
int run_master(Scoreboard& board, MasterSide* side, const MasterOptions& options, const WorkerMain& worker_main);

}  // namespace sl
