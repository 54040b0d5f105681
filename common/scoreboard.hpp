// scoreboard.hpp: what every worker is doing, in memory the master and all
// workers share (an anonymous shared mapping, see shm.hpp).
//
// The rule that makes it safe without a lock: every field has one writer.
//   - pid and started_ms: the master, before the worker runs (spawn) and
//     after it is reaped (retire). The worker also stores its own pid first
//     thing, the same value, so readers never wait on the master's store.
//   - state and the counters: the worker in that slot, and nobody else.
//   - retired_*: the master, when it reaps a worker, so the server's totals
//     do not drop when a worker is replaced.
// Readers (STATS in any worker, the master's table) may see a snapshot that
// is a few increments old; nothing is ever torn, because every field is a
// lock-free std::atomic.
#pragma once

#include "commands.hpp"
#include "server.hpp"

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sl {

enum class WorkerState : int { empty = 0, starting, idle, busy, exiting };
std::string_view state_name(WorkerState state);

/// One worker's line. alignas(64): a slot per cache line, so one worker's
/// counter updates do not bounce the line another worker is writing.
struct alignas(64) WorkerSlot {
    std::atomic<pid_t> pid{0};
    std::atomic<WorkerState> state{WorkerState::empty};
    std::atomic<int64_t> started_ms{0};
    Counters counters;  // connections = this worker's accepts
    // Accept competition, counted by the accept strategy (accept.hpp):
    std::atomic<uint64_t> wakeups{0};     // returns from the wait that precedes accept
    std::atomic<uint64_t> spurious{0};    // wakeups that got no connection: another worker won
    std::atomic<uint64_t> lock_waits{0};  // times the accept lock was held by another worker
    std::atomic<uint64_t> max_requests{0};  // set by the master at spawn: leave after this many (0: never)

    void set_state(WorkerState s) { state.store(s, std::memory_order_relaxed); }
};

/// One thread of a worker process (04): written by that thread only.
struct alignas(64) ThreadSlot {
    std::atomic<pid_t> tid{0};
    std::atomic<WorkerState> state{WorkerState::empty};  // idle or busy
    Counters counters;                                    // connections = this thread's accepts

    void set_state(WorkerState s) { state.store(s, std::memory_order_relaxed); }
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<pid_t>::is_always_lock_free &&
                  std::atomic<WorkerState>::is_always_lock_free,
              "shared memory holds only lock-free atomics: a killed process must not leave a lock held");

class Scoreboard {
public:
    /// Maps the shared memory: call before the first fork(). With
    /// `threads_per_worker` > 0, each worker slot also gets that many thread slots.
    explicit Scoreboard(int slots, int threads_per_worker = 0);
    Scoreboard(const Scoreboard&) = delete;
    Scoreboard& operator=(const Scoreboard&) = delete;

    int size() const { return header_->slots; }
    WorkerSlot& slot(int i) { return slots_[i]; }
    const WorkerSlot& slot(int i) const { return slots_[i]; }
    int threads() const { return header_->threads; }
    ThreadSlot& thread(int i, int t) { return threads_[i * threads() + t]; }
    const ThreadSlot& thread(int i, int t) const { return threads_[i * threads() + t]; }

    /// A worker's counts: its own counters plus its threads'. busy_since_ms
    /// is the oldest request being executed in it (0: none).
    struct Counts {
        uint64_t accepts = 0;
        uint64_t requests = 0;
        int64_t busy_since_ms = 0;
    };
    Counts counts(int i) const;

    /// --max-requests reached: the worker should leave once its connections end.
    bool recycle_due(int i) const;

    /// Master: a new worker `pid` starts in slot `i` (counters reset); it
    /// leaves after `max_requests` requests (0: never).
    void begin(int i, pid_t pid, uint64_t max_requests = 0);
    /// Master: the worker in slot `i` was reaped. Its counts join the retired
    /// totals and the slot is marked empty; its numbers stay readable until
    /// the slot is reused, for the stop table.
    void retire(int i);

    /// What the master did, for the tables: written by the master only.
    struct Events {
        std::atomic<uint64_t> spawns{0};
        std::atomic<uint64_t> deaths{0};       // unexpected: crashes, kills, failed starts
        std::atomic<uint64_t> retirements{0};  // asked to leave: pool shrink, TTOU, HUP, timeouts
        std::atomic<uint64_t> backoffs{0};     // respawns delayed by the crash-loop backoff
    };
    Events& events() { return header_->events; }
    const Events& events() const { return header_->events; }

    /// STATS for the whole server: retired counts plus every live slot's.
    Totals totals(std::string_view model) const;
    uint64_t live_workers() const;

private:
    struct Header {
        int slots = 0;
        int threads = 0;
        int64_t started_ms = 0;
        std::atomic<uint64_t> retired_accepts{0};
        std::atomic<uint64_t> retired_requests{0};
        std::atomic<uint64_t> retired_wakeups{0};
        std::atomic<uint64_t> retired_spurious{0};
        Events events;
    };
    Header* header_;
    WorkerSlot* slots_;
    ThreadSlot* threads_;
};

/// One row of the per-worker table that SIGUSR1 and the stop print.
struct WorkerRow {
    int slot = 0;
    pid_t pid = 0;
    WorkerState state = WorkerState::empty;
    uint64_t accepts = 0;
    uint64_t requests = 0;
    uint64_t wakeups = 0;
    uint64_t spurious = 0;
    uint64_t lock_waits = 0;
    double user_s = 0;  // CPU seconds: from /proc while it runs, from wait4(2) once reaped
    double sys_s = 0;
};
void print_worker_table(const std::vector<WorkerRow>& rows);

/// User and system CPU seconds of a live process, from /proc/<pid>/stat.
bool process_cpu(pid_t pid, double& user, double& sys);

}  // namespace sl
