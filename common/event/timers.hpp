// timers.hpp: a loop's timers, the earliest first (05, 06, 07's epoll loops
// and 08's ring share it).
//
// A binary min-heap of (when, id): the earliest timer is at the top, in
// O(1); adding one is O(log n). Cancelling only forgets the callback: the
// heap entry is skipped when it comes up, and the heap is rebuilt without
// them when they outnumber the live timers (a connection per request
// cancels an idle timer per connection). libuv keeps a heap too; nginx a
// red-black tree; redis a list it scans, fine for its few timers.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

namespace sl {

class TimerHeap {
public:
    using TimerId = uint64_t;

    /// Runs `fn` once, in run_due(), at CLOCK_MONOTONIC time `at_ms`.
    TimerId at(int64_t at_ms, std::function<void()> fn);
    /// A timer that has not run yet will not run.
    void cancel(TimerId id);
    /// The earliest deadline (ms, CLOCK_MONOTONIC), or -1 without timers.
    int64_t next_deadline() const { return heap_.empty() ? -1 : heap_.top().at_ms; }
    /// Runs the timers that are due, only those that existed when it began:
    /// one that a timer sets for a time already past waits for the next
    /// call, so the loop still polls its descriptors (libuv's uv__run_timers
    /// does the same).
    void run_due();
    /// Entries in the heap, cancelled ones included (for the tests).
    size_t entries() const { return heap_.size(); }

private:
    struct Timer {
        int64_t at_ms;
        TimerId id;
        bool operator>(const Timer& other) const { return at_ms > other.at_ms; }
    };
    std::priority_queue<Timer, std::vector<Timer>, std::greater<>> heap_;
    std::unordered_map<TimerId, std::function<void()>> callbacks_;
    TimerId next_id_ = 1;
};

}  // namespace sl
