#include "scoreboard.hpp"

#include "clock.hpp"
#include "shm.hpp"
#include "trace.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>

namespace sl {

std::string_view state_name(WorkerState s) {
    switch (s) {
    case WorkerState::empty: return "empty";
    case WorkerState::starting: return "starting";
    case WorkerState::idle: return "idle";
    case WorkerState::busy: return "busy";
    case WorkerState::exiting: return "exiting";
    }
    return "?";
}

Scoreboard::Scoreboard(int slots, int threads_per_worker) {
    size_t thread_slots = static_cast<size_t>(slots) * static_cast<size_t>(threads_per_worker);
    void* mem = map_shared_or_die(sizeof(Header) + sizeof(WorkerSlot) * static_cast<size_t>(slots) +
                                  sizeof(ThreadSlot) * thread_slots + 64);
    header_ = new (mem) Header();
    header_->slots = slots;
    header_->threads = threads_per_worker;
    header_->started_ms = monotonic_ms();
    // The slots start at the next 64-byte boundary after the header.
    auto base = (reinterpret_cast<uintptr_t>(header_ + 1) + 63) & ~uintptr_t{63};
    slots_ = reinterpret_cast<WorkerSlot*>(base);
    for (int i = 0; i < slots; ++i) new (&slots_[i]) WorkerSlot();
    threads_ = reinterpret_cast<ThreadSlot*>(slots_ + slots);  // 64-byte multiples: still aligned
    for (size_t i = 0; i < thread_slots; ++i) new (&threads_[i]) ThreadSlot();
}

Scoreboard::Counts Scoreboard::counts(int i) const {
    auto add = [](Counts& c, const Counters& k) {
        c.accepts += k.connections.load(std::memory_order_relaxed);
        c.requests += k.requests.load(std::memory_order_relaxed);
        int64_t since = k.busy_since_ms.load(std::memory_order_relaxed);
        if (since != 0 && (c.busy_since_ms == 0 || since < c.busy_since_ms)) c.busy_since_ms = since;
    };
    Counts c;
    add(c, slots_[i].counters);
    for (int t = 0; t < threads(); ++t) add(c, thread(i, t).counters);
    return c;
}

bool Scoreboard::recycle_due(int i) const {
    uint64_t limit = slots_[i].max_requests.load(std::memory_order_relaxed);
    return limit != 0 && counts(i).requests >= limit;
}

void Scoreboard::begin(int i, pid_t pid, uint64_t max_requests) {
    WorkerSlot& w = slots_[i];
    w.max_requests = max_requests;
    w.counters.busy_since_ms = 0;
    w.counters.connections = 0;
    w.counters.requests = 0;
    w.counters.last_active_ms = monotonic_ms();
    for (int t = 0; t < threads(); ++t) {
        ThreadSlot& th = thread(i, t);
        th.tid = 0;
        th.set_state(WorkerState::empty);
        th.counters.connections = 0;
        th.counters.requests = 0;
        th.counters.busy_since_ms = 0;
    }
    w.wakeups = 0;
    w.spurious = 0;
    w.lock_waits = 0;
    w.started_ms = monotonic_ms();
    w.set_state(WorkerState::starting);
    w.pid = pid;
}

void Scoreboard::retire(int i) {
    WorkerSlot& w = slots_[i];
    Counts c = counts(i);
    header_->retired_accepts += c.accepts;
    header_->retired_requests += c.requests;
    header_->retired_wakeups += w.wakeups.load();
    header_->retired_spurious += w.spurious.load();
    w.pid = 0;
    w.set_state(WorkerState::empty);
}

uint64_t Scoreboard::live_workers() const {
    uint64_t n = 0;
    for (int i = 0; i < size(); ++i) n += slots_[i].pid.load(std::memory_order_relaxed) != 0;
    return n;
}

Totals Scoreboard::totals(std::string_view model) const {
    Totals t{model, 0, header_->retired_accepts.load(), header_->retired_requests.load(),
             static_cast<uint64_t>(monotonic_ms() - header_->started_ms)};
    t.has_accept_counters = true;
    t.wakeups = header_->retired_wakeups.load();
    t.spurious = header_->retired_spurious.load();
    for (int i = 0; i < size(); ++i) {
        const WorkerSlot& w = slots_[i];
        if (w.pid.load(std::memory_order_relaxed) == 0) continue;
        ++t.workers;
        Counts c = counts(i);
        t.connections += c.accepts;
        t.requests += c.requests;
        t.wakeups += w.wakeups.load(std::memory_order_relaxed);
        t.spurious += w.spurious.load(std::memory_order_relaxed);
    }
    t.accepts = t.connections;
    return t;
}

void print_worker_table(const std::vector<WorkerRow>& rows) {
    std::string table = fmt::format("{:>4} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8}\n", "slot", "pid",
                                    "state", "accepts", "requests", "wakeups", "spurious", "lock_waits", "user_s",
                                    "sys_s");
    for (const WorkerRow& r : rows)
        table += fmt::format("{:>4} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8.3f} {:>8.3f}\n", r.slot, r.pid,
                             state_name(r.state), r.accepts, r.requests, r.wakeups, r.spurious, r.lock_waits,
                             r.user_s, r.sys_s);
    table.pop_back();
    write_line(table);  // one write(2): the table is not interleaved with workers' traces
}

bool process_cpu(pid_t pid, double& user, double& sys) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // The command name (field 2) may contain spaces and ')': skip past the last ')'.
    size_t close = text.rfind(')');
    if (close == std::string::npos) return false;
    std::istringstream rest(text.substr(close + 2));
    std::string field;
    unsigned long long ticks[2] = {0, 0};
    for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15: utime, stime
        if (i >= 14) ticks[i - 14] = std::stoull(field);
    }
    double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    user = static_cast<double>(ticks[0]) / hz;
    sys = static_cast<double>(ticks[1]) / hz;
    return true;
}

}  // namespace sl
