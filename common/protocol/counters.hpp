// counters.hpp: what a server counts as it serves, and the totals STATS
// reports. Plain data; no sockets, no processes.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace sl {

/// What the owner of a Counters is doing now: the status page's state
/// letters, in the manner of Apache's mod_status (status.hpp).
enum class Activity : uint8_t {
    waiting,    // '_' for a connection: in accept(), poll(), epoll_wait()
    reading,    // 'R' a request: a connection is open and its request is not complete yet
    working,    // 'W' executing a request and writing its answer
    keepalive,  // 'K' a connection is open, between requests
};

/// Counters that one process, one thread, or one scoreboard slot owns.
/// Atomic so that threads may share them and a master may read them from
/// shared memory while the owner writes; relaxed ordering is enough for
/// statistics.
struct Counters {
    std::atomic<uint64_t> connections{0};
    std::atomic<uint64_t> requests{0};
    std::atomic<int64_t> last_active_ms{0};  // monotonic: the last accept or answered request
    std::atomic<int64_t> busy_since_ms{0};   // monotonic: when the request being executed began; 0: none
    std::atomic<uint32_t> open{0};           // connections open now
    std::atomic<uint32_t> upstream{0};       // 09: connections to backends open now
    std::atomic<Activity> activity{Activity::waiting};

    void set_activity(Activity a) { activity.store(a, std::memory_order_relaxed); }

    /// A request runs on the caller's thread from `now_ms`: 'W' on the status
    /// page, and the clock the master's --request-timeout reads.
    void begin_request(int64_t now_ms) {
        busy_since_ms.store(now_ms, std::memory_order_relaxed);
        set_activity(Activity::working);
    }
    void end_request() {
        set_activity(Activity::waiting);
        busy_since_ms.store(0, std::memory_order_relaxed);
    }
    /// A request answered at `now_ms`.
    void count_answer(int64_t now_ms) {
        requests.fetch_add(1, std::memory_order_relaxed);
        last_active_ms.store(now_ms, std::memory_order_relaxed);
    }
};

/// The whole server: STATS's fields (summed over all processes where there are several).
struct Totals {
    std::string_view model;
    uint64_t workers = 0;  // processes (or threads) serving connections now
    uint64_t connections = 0;
    uint64_t requests = 0;
    uint64_t uptime_ms = 0;
    // Accept competition (prefork models): printed only where has_accept_counters.
    bool has_accept_counters = false;
    uint64_t accepts = 0;
    uint64_t wakeups = 0;
    uint64_t spurious = 0;
};

}  // namespace sl
