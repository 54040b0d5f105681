// pool.hpp: how many workers a prefork master keeps, which worker goes
// where, and the rules that change them. The rules are pure functions, so
// GoogleTest checks them without forking anything; master.cpp applies them.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <vector>

namespace sl {

enum class Pool { fixed, dynamic };  // --pool static | dynamic (php-fpm's pm = static | dynamic)

struct PoolOptions {
    Pool pool = Pool::fixed;
    int workers = 0;              // static: the pool size (default: the number of CPUs)
    int start_workers = 2;        // dynamic: workers at start
    int min_spare = 1;            // dynamic: fewer idle workers than this: fork more
    int max_spare = 4;            // dynamic: more idle workers than this: retire one a second
    int max_workers = 64;         // the ceiling for dynamic growth and TTIN
    int max_requests = 0;         // recycle a worker after this many requests (0: never)
    int max_requests_jitter = 0;  // ... plus rand(0..jitter), so workers do not all leave at once
    int request_timeout = 0;      // seconds one request may take before its worker is replaced (0: no limit)
    int graceful_timeout = 10;    // seconds a stop or retirement waits before SIGKILL
    bool debug_commands = false;  // enables CRASH (test hook)
    bool debug_fail_start = false;  // every worker exits with failure before it is ready (test hook)
    std::vector<int> debug_forge_pids;  // every worker writes these into the scoreboard's pids (test hook)

    bool dynamic() const { return pool == Pool::dynamic; }
    int initial_workers() const { return dynamic() ? start_workers : workers; }
    /// Scoreboard slots: room for a rolling restart, when a new generation of
    /// workers starts before the old one leaves.
    int slots() const { return 2 * max_workers; }
};

/// --pool --workers --start-workers --min-spare --max-spare --max-workers
/// --max-requests --max-requests-jitter --request-timeout --graceful-timeout
/// --debug-commands --debug-fail-start, checked together after parsing
/// (min-spare <= max-spare, the ceiling above the start size...).
void add_pool_options(CLI::App& app, PoolOptions& options);

/// The dynamic pool, consulted once a second with the number of idle (or
/// starting) workers and the pool's size. Like Apache's prefork MPM, it forks
/// `rate` workers at once when short of spares, doubling the rate each second
/// it stays short (1, 2, 4 ... 32), and retires one idle worker a second when
/// there are too many spares.
struct SpareDecision {
    int spawn = 0;
    bool retire_one = false;
};
SpareDecision decide_spares(int idle, int pool_size, const PoolOptions& options, int& rate);

/// Crash-loop backoff. A death within kQuickDeathMs of the fork is "quick";
/// given how many quick deaths a slot has had in a row, how long to wait
/// before forking its next worker. The first is replaced at once (a single
/// crash is not a loop); from the second on the delay doubles from 100 ms up
/// to 10 s. A worker that stays up kStableMs resets its slot's count.
inline constexpr int64_t kQuickDeathMs = 10000;
inline constexpr int64_t kStableMs = 60000;
int64_t backoff_ms(int quick_deaths);

/// Workers that die before ever becoming ready, this many times in a row,
/// stop the master with an error instead of a fork loop.
inline constexpr int kFailedStartsLimit = 5;

/// The request count after which a worker leaves: max + rand(0..jitter) (0: never).
uint64_t recycle_after(const PoolOptions& options, uint64_t random);

/// A slot as the rules see it: what the master knows of it, and what the
/// worker in it says in the scoreboard.
struct SlotView {
    enum Role { empty, running, retiring, waiting } role = empty;  // waiting: to be respawned (soon, or after a backoff)
    int place = 0;
    bool ready = false;        // the worker has left `starting`
    bool idle = false;         // ... and waits for a connection
    bool backing_off = false;  // waiting: after a crash loop's delay (not just to be replaced at once)
    bool outgoing = false;     // running, but to be replaced: an older generation, or it asked (--max-requests)
};

/// The place for a new worker: the lowest that no worker which is staying
/// holds (running and not outgoing, or waiting to be respawned). After a HUP
/// the new generation thus takes the places of the old one, in order, and a
/// successor takes the place of the worker it replaces.
int free_place(const std::vector<SlotView>& slots);

/// Places with a worker that accepts: running and not asked to leave. If
/// there is none (every worker crashed), the places waiting to be respawned.
std::vector<bool> open_places(const std::vector<SlotView>& slots, int places);

/// Workers that are staying: running and not outgoing, or waiting to be respawned.
int pool_size(const std::vector<SlotView>& slots);

/// Whom to let go when the pool shrinks: a slot waiting out a backoff (there
/// is nothing to stop), else an idle worker (no
/// request waits for it), else any worker that is staying; -1 if there is
/// none. A slot waiting only to be replaced at once (its worker left on its
/// own) is not picked: its successor is about to take over its place, and
/// whatever waits there.
int pick_to_retire(const std::vector<SlotView>& slots);

/// Outgoing workers (an older generation after a HUP, or one that asked to
/// be replaced) may be retired once the pool has `target` staying workers and
/// every one of them is ready, so that no moment is without workers that accept.
bool outgoing_may_leave(const std::vector<SlotView>& slots, int target);

}  // namespace sl
