#include "process/pool.hpp"

#include "base/cli.hpp"

#include <algorithm>
#include <map>
#include <string>

namespace sl {

void add_pool_options(CLI::App& app, PoolOptions& o) {
    o.workers = cpu_count();
    add_enum_option(app, "--pool", o.pool, Names<Pool>{{"static", Pool::fixed}, {"dynamic", Pool::dynamic}},
                    "static: --workers workers; dynamic: grow and shrink with the spare rules");
    app.add_option("--workers", o.workers, "static pool: worker processes (default: the number of CPUs)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app.add_option("--start-workers", o.start_workers, "dynamic pool: workers at start")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app.add_option("--min-spare", o.min_spare, "dynamic pool: fork more when fewer workers are idle")
        ->capture_default_str()
        ->check(CLI::Range(0, 1024));
    app.add_option("--max-spare", o.max_spare, "dynamic pool: retire one a second when more are idle")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app.add_option("--max-workers", o.max_workers, "the most workers the pool may have (dynamic growth, TTIN)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app.add_option("--max-requests", o.max_requests, "a worker leaves after this many requests (0: never)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000000000));
    app.add_option("--max-requests-jitter", o.max_requests_jitter, "... plus a random 0..J, so workers leave apart")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000000000));
    app.add_option("--request-timeout", o.request_timeout, "replace a worker busy on one request this long (0: off)")
        ->capture_default_str()
        ->check(CLI::Range(0, 86400));
    add_graceful_timeout_option(app, o.graceful_timeout);
    app.add_flag("--debug-commands", o.debug_commands, "test hook: enable CRASH (the worker serving it aborts)");
    app.add_flag("--debug-fail-start", o.debug_fail_start, "test hook: workers exit with failure before they are ready");
    app.add_option("--debug-forge-pids", o.debug_forge_pids,
                   "test hook: each worker, once started, writes these pids into every slot of the scoreboard "
                   "(slot i gets the (i mod n)-th), as a worker gone wrong could; the master must not care")
        ->delimiter(',');

    // Checks that involve several options, once all are parsed.
    app.callback([&o, &app] {
        if (o.min_spare > o.max_spare) throw CLI::ValidationError("--min-spare", "must not exceed --max-spare");
        // Unless given, the ceiling follows the pool: --workers 100 needs no --max-workers too.
        if (app.count("--max-workers") == 0) o.max_workers = std::max(o.max_workers, o.initial_workers());
        if (o.initial_workers() > o.max_workers)
            throw CLI::ValidationError("--max-workers", "must be at least the starting number of workers");
    });
}

SpareDecision decide_spares(int idle, int pool_size, const PoolOptions& o, int& rate) {
    if (idle < o.min_spare) {
        int n = std::min(rate, o.max_workers - pool_size);
        rate = std::min(rate * 2, 32);
        return {std::max(n, 0), false};
    }
    rate = 1;
    return {0, idle > o.max_spare && pool_size > 1};
}

int64_t backoff_ms(int quick_deaths) {
    if (quick_deaths <= 1) return 0;
    return std::min<int64_t>(int64_t{100} << std::min(quick_deaths - 2, 10), 10000);
}

uint64_t recycle_after(const PoolOptions& o, uint64_t random) {
    if (o.max_requests == 0) return 0;
    uint64_t jitter = o.max_requests_jitter == 0 ? 0 : random % (static_cast<uint64_t>(o.max_requests_jitter) + 1);
    return static_cast<uint64_t>(o.max_requests) + jitter;
}

namespace {

bool staying(const SlotView& s) {
    return (s.role == SlotView::running && !s.outgoing) || s.role == SlotView::waiting;
}

}  // namespace

int free_place(const std::vector<SlotView>& slots) {
    std::vector<bool> held;
    for (const SlotView& s : slots) {
        if (!staying(s)) continue;
        if (static_cast<size_t>(s.place) >= held.size()) held.resize(static_cast<size_t>(s.place) + 1);
        held[static_cast<size_t>(s.place)] = true;
    }
    int place = 0;
    while (static_cast<size_t>(place) < held.size() && held[static_cast<size_t>(place)]) ++place;
    return place;
}

std::vector<bool> open_places(const std::vector<SlotView>& slots, int places) {
    std::vector<bool> open(static_cast<size_t>(places), false);
    bool any = false;
    for (const SlotView& s : slots)
        if (s.role == SlotView::running && s.place < places) any = open[static_cast<size_t>(s.place)] = true;
    if (any) return open;
    // No worker accepts anywhere (all crashed): the places about to be
    // respawned are where a connection will be served soonest.
    for (const SlotView& s : slots)
        if (s.role == SlotView::waiting && s.place < places) open[static_cast<size_t>(s.place)] = true;
    return open;
}

int pool_size(const std::vector<SlotView>& slots) {
    int n = 0;
    for (const SlotView& s : slots) n += staying(s);
    return n;
}

int pick_to_retire(const std::vector<SlotView>& slots) {
    int pick = -1;
    for (size_t i = 0; i < slots.size(); ++i) {
        const SlotView& s = slots[i];
        if (s.role == SlotView::waiting && s.backing_off) return static_cast<int>(i);
        if (s.role != SlotView::running || s.outgoing) continue;
        if (pick < 0 || (s.idle && !slots[static_cast<size_t>(pick)].idle)) pick = static_cast<int>(i);
    }
    return pick;
}

bool outgoing_may_leave(const std::vector<SlotView>& slots, int target) {
    bool outgoing = false;
    for (const SlotView& s : slots) {
        if (s.role != SlotView::running) continue;
        if (s.outgoing) outgoing = true;
        else if (!s.ready) return false;
    }
    return outgoing && pool_size(slots) >= target;
}

}  // namespace sl
