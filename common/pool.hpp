// pool.hpp: how many workers a prefork master keeps, and the rules that change
// that number. The rules are pure functions, so GoogleTest checks them
// without forking anything; master.cpp applies them.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace sl {

struct PoolOptions {
    std::string pool = "static";  // static | dynamic (php-fpm's pm = static | dynamic)
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

    bool dynamic() const { return pool == "dynamic"; }
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

}  // namespace sl
