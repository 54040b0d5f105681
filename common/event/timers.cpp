#include "event/timers.hpp"

#include "base/clock.hpp"

namespace sl {

TimerHeap::TimerId TimerHeap::at(int64_t at_ms, std::function<void()> fn) {
    TimerId id = next_id_++;
    heap_.push({at_ms, id});
    callbacks_.emplace(id, std::move(fn));
    return id;
}

void TimerHeap::cancel(TimerId id) {
    callbacks_.erase(id);
    // Cancelled entries stay in the heap until they come up. Rebuild it when
    // they are more than half of it, so that it stays O(live timers) in size
    // however many are cancelled (amortized O(1) per cancel).
    if (heap_.size() > 64 && heap_.size() > 2 * callbacks_.size()) {
        std::vector<Timer> live;
        live.reserve(callbacks_.size());
        while (!heap_.empty()) {
            if (callbacks_.count(heap_.top().id) != 0) live.push_back(heap_.top());
            heap_.pop();
        }
        heap_ = decltype(heap_)(std::greater<>(), std::move(live));
    }
}

void TimerHeap::run_due() {
    const TimerId first_new = next_id_;
    std::vector<Timer> later;
    int64_t now = monotonic_ms();
    while (!heap_.empty() && heap_.top().at_ms <= now) {
        Timer t = heap_.top();
        heap_.pop();
        if (t.id >= first_new) {
            later.push_back(t);
            continue;
        }
        auto it = callbacks_.find(t.id);
        if (it == callbacks_.end()) continue;  // cancelled
        std::function<void()> fn = std::move(it->second);
        callbacks_.erase(it);
        fn();
    }
    for (const Timer& t : later) heap_.push(t);
}

}  // namespace sl
