#include "process/scoreboard.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/procfs.hpp"
#include "base/shm.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sched.h>

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
    header_->master = ::getpid();
    // The slots start at the next 64-byte boundary after the header.
    auto base = (reinterpret_cast<uintptr_t>(header_ + 1) + 63) & ~uintptr_t{63};
    slots_ = reinterpret_cast<WorkerSlot*>(base);
    for (int i = 0; i < slots; ++i) new (&slots_[i]) WorkerSlot();
    threads_ = reinterpret_cast<ThreadSlot*>(slots_ + slots);  // 64-byte multiples: still aligned
    for (size_t i = 0; i < thread_slots; ++i) new (&threads_[i]) ThreadSlot();
    // Non-blocking: a full pipe already says "look", and a worker must never wait on the master.
    if (::pipe2(doorbell_, O_CLOEXEC | O_NONBLOCK) < 0) die("pipe2 doorbell");
}

void Scoreboard::ask_to_be_replaced(int i) {
    if (slots_[i].replace_me.exchange(true)) return;  // asked already (04: another thread did)
    char ring = 1;
    [[maybe_unused]] ssize_t n = ::write(doorbell_[1], &ring, 1);
}

void Scoreboard::drain_doorbell() {
    char buf[64];
    while (::read(doorbell_[0], buf, sizeof buf) > 0) {
    }
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

void Scoreboard::prepare(int i, int generation, int place, uint64_t max_requests) {
    WorkerSlot& w = slots_[i];
    w.pid = 0;  // the new worker and the master both write it once fork() returns
    w.generation = generation;
    w.place = place;
    w.max_requests = max_requests;
    w.replace_me = false;
    w.leaving = false;
    w.counters.busy_since_ms = 0;
    w.counters.connections = 0;
    w.counters.requests = 0;
    w.counters.last_active_ms = monotonic_ms();
    w.counters.open = 0;  // a killed worker's slot may say it had a connection open
    w.counters.set_activity(Activity::waiting);
    for (int t = 0; t < threads(); ++t) {
        ThreadSlot& th = thread(i, t);
        th.tid = 0;
        th.set_state(WorkerState::empty);
        th.counters.connections = 0;
        th.counters.requests = 0;
        th.counters.busy_since_ms = 0;
        th.counters.open = 0;
        th.counters.set_activity(Activity::waiting);
    }
    w.accept.wakeups = 0;
    w.accept.spurious = 0;
    w.accept.lock_waits = 0;
    w.started_ms = monotonic_ms();
    w.set_state(WorkerState::starting);
}

void Scoreboard::retire(int i) {
    WorkerSlot& w = slots_[i];
    Counts c = counts(i);
    // The seqlock's write side (one writer: the master). Readers that see an
    // odd count, or a count that changed while they read, read again.
    uint32_t seq = header_->retiring.load(std::memory_order_relaxed);
    header_->retiring.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    header_->retired_accepts += c.accepts;
    header_->retired_requests += c.requests;
    header_->retired_wakeups += w.accept.wakeups.load();
    header_->retired_spurious += w.accept.spurious.load();
    w.set_state(WorkerState::empty);  // the pid stays, for the tables: the slot's last worker
    header_->retiring.store(seq + 2, std::memory_order_release);
}

uint64_t Scoreboard::live_workers() const {
    uint64_t n = 0;
    for (int i = 0; i < size(); ++i) n += live(i);
    return n;
}

Totals Scoreboard::totals(std::string_view model) const {
    // The seqlock's read side: read, and read again if a retirement began
    // or ended meanwhile. The master holds it for a few stores, so a retry
    // is rare. A count left odd forever would mean the master died between
    // two stores; its workers die with it (PR_SET_PDEATHSIG).
    for (unsigned attempt = 1;; ++attempt) {
        uint32_t before = header_->retiring.load(std::memory_order_acquire);
        if (before % 2 == 0) {
            Totals t = sum(model);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (header_->retiring.load(std::memory_order_relaxed) == before) return t;
        }
        if (attempt % 64 == 0) ::sched_yield();  // let the master finish
    }
}

namespace {

uint64_t cpu_ms(pid_t pid) {  // a thread's id works too: /proc/<tid>/stat is that thread's
    auto st = read_proc_stat(pid);
    return st ? static_cast<uint64_t>((st->utime + st->stime) * 1000) : 0;
}

}  // namespace

Status Scoreboard::status(std::string_view model, std::string_view accept, bool upstream) const {
    Status s{model, accept, header_->master, totals(model), {}};
    for (int i = 0; i < size(); ++i) {
        if (!live(i)) continue;
        const WorkerSlot& w = slots_[i];
        StatusRow row = counters_row(w.counters);
        row.worker = i;
        row.pid = row.tid = w.pid.load(std::memory_order_relaxed);
        row.generation = w.generation.load(std::memory_order_relaxed);
        Counts c = counts(i);
        row.accepts = c.accepts;
        row.requests = c.requests;
        if (!accept.empty()) {  // counted by an accept strategy; 02's children never accept
            row.wakeups = w.accept.wakeups.load(std::memory_order_relaxed);
            row.spurious = w.accept.spurious.load(std::memory_order_relaxed);
        }
        row.cpu_ms = cpu_ms(row.pid);
        if (upstream) row.upstream = w.counters.upstream.load(std::memory_order_relaxed);
        WorkerState state = w.state.load(std::memory_order_relaxed);
        if (state == WorkerState::starting) row.state = 'S';
        // 04's process has no connection of its own: '_' while a thread is free, 'W' when none is.
        if (threads() > 0 && (state == WorkerState::idle || state == WorkerState::busy))
            row.state = state == WorkerState::busy ? 'W' : '_';
        // Asked to leave, it finishes what it has (the master knows before the worker does).
        if (state == WorkerState::exiting || w.leaving.load(std::memory_order_relaxed)) row.state = 'G';
        size_t at = s.rows.size();
        s.rows.push_back(row);
        for (int t = 0; t < threads(); ++t) {
            const ThreadSlot& th = thread(i, t);
            if (th.state.load(std::memory_order_relaxed) == WorkerState::empty) continue;
            StatusRow tr = counters_row(th.counters);
            tr.worker = i;
            tr.thread = t;
            tr.pid = row.pid;
            tr.tid = th.tid.load(std::memory_order_relaxed);
            tr.generation = row.generation;
            tr.cpu_ms = cpu_ms(tr.tid);
            s.rows[at].open += tr.open;
            s.rows.push_back(tr);
        }
    }
    return s;
}

Totals Scoreboard::sum(std::string_view model) const {
    Totals t{model, 0, header_->retired_accepts.load(), header_->retired_requests.load(),
             static_cast<uint64_t>(monotonic_ms() - header_->started_ms)};
    t.has_accept_counters = true;
    t.wakeups = header_->retired_wakeups.load();
    t.spurious = header_->retired_spurious.load();
    for (int i = 0; i < size(); ++i) {
        const WorkerSlot& w = slots_[i];
        if (!live(i)) continue;
        ++t.workers;
        Counts c = counts(i);
        t.connections += c.accepts;
        t.requests += c.requests;
        t.wakeups += w.accept.wakeups.load(std::memory_order_relaxed);
        t.spurious += w.accept.spurious.load(std::memory_order_relaxed);
    }
    t.accepts = t.connections;
    return t;
}

}  // namespace sl
