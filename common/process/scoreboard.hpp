// scoreboard.hpp: what the workers of a prefork server (and 02's children)
// say about themselves, in memory that the master and every worker share
// (an anonymous shared mapping, see shm.hpp), as Apache's scoreboard.
//
// Workers write their own state and counters here, and read everyone's
// (STATS, STATUS, WHO); the master reads it for the pool rules and the
// tables. It is for display and statistics, never for control: any worker
// can write any byte of it, so the pids the master signals and reaps are in
// its own private table (children.hpp's ChildTable, nginx's ngx_processes[]),
// not here. A pid here is what STATUS shows.
//
// The rule that makes it safe without a lock: **one writing process at a
// time per field, and ownership passes with fork() and wait()**.
//   - Before fork() the slot is the master's: it writes the generation, the
//     place, the recycle limit, zeroed counters and the state `starting`.
//   - From fork() until the master reaps the worker, the slot's state and
//     counters are the worker's. In 04 that process has M threads: each
//     writes its own thread slot, and the worker slot's state and accept
//     counts are written by whichever thread changes them (atomic stores and
//     increments: a count is never lost, a state may be a moment stale). The
//     master writes only the pid (for display) and `leaving`. (The one
//     exception to the rule: the new worker also stores its own pid as it
//     starts, so that a STATUS between fork() and the master's store names
//     it. Both write the same value, so neither can undo the other; see
//     become_worker.)
//   - After wait() the slot is the master's again: it moves the counts into
//     the retired totals and marks the slot empty.
// Every field that changes after the first fork is a lock-free std::atomic:
// a reader is never torn, and a process killed at any instruction cannot
// leave a lock held. (The header's plain fields, the sizes and the master's
// pid, are written once before the first fork and only read after it.) A
// reader may see counts a few increments old. One thing would still come
// out wrong: a STATS summing the totals while the master retires a slot
// could count that worker twice or not at all. So retiring is wrapped in a
// sequence count, the Linux kernel's seqlock for one writer and many
// readers: readers that overlap a retirement read again.
#pragma once

#include "accept/accept.hpp"
#include "protocol/counters.hpp"
#include "protocol/status.hpp"

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sl {

enum class WorkerState : int { empty = 0, starting, idle, busy, exiting };
std::string_view state_name(WorkerState state);

/// One worker's line. 128 bytes (two cache lines) with alignas(64), so that
/// one worker's counter updates never share a cache line with another's.
struct alignas(64) WorkerSlot {
    std::atomic<pid_t> pid{0};  // its worker, or its last one (state empty); 0: none yet
    std::atomic<WorkerState> state{WorkerState::empty};
    std::atomic<int> generation{0};  // rolling restarts (HUP) so far when it was forked
    std::atomic<int> place{0};       // its place in the pool, which a successor inherits (accept.hpp)
    std::atomic<int64_t> started_ms{0};
    std::atomic<uint64_t> max_requests{0};  // ask to be replaced after this many requests (0: never)
    std::atomic<bool> replace_me{false};    // the worker asked for a successor (--max-requests)
    std::atomic<bool> leaving{false};       // the master asked it to leave (SIGTERM sent): 'G'. Master only
    Counters counters;                      // connections = this worker's accepts
    AcceptStats accept;                     // counted by its accept strategy

    /// A release store: a master that reads the new state (with an acquire
    /// load, or the default seq_cst one) also sees everything the worker
    /// wrote before it. Leaving `starting` is the worker's "ready", on which
    /// the master retires the worker it replaces.
    void set_state(WorkerState s) { state.store(s, std::memory_order_release); }
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
              "the scoreboard holds only lock-free atomics: a killed process must not leave a lock held");

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

    /// Does slot `i` have a worker (forked, not yet reaped)?
    bool live(int i) const { return slots_[i].state.load(std::memory_order_relaxed) != WorkerState::empty; }

    /// A worker's counts: its own counters plus its threads'. busy_since_ms
    /// is the oldest request being executed in it (0: none).
    struct Counts {
        uint64_t accepts = 0;
        uint64_t requests = 0;
        int64_t busy_since_ms = 0;
    };
    Counts counts(int i) const;

    /// --max-requests reached: the worker should ask to be replaced.
    bool recycle_due(int i) const;

    /// Worker: asks the master for a successor (--max-requests). The master
    /// starts one in the same place and retires this worker once it is
    /// ready, as a rolling restart does for every worker; this one serves on
    /// meanwhile. Rings the doorbell, once.
    void ask_to_be_replaced(int i);

    /// The doorbell: a pipe every worker inherits, on which a worker that
    /// needs the master now writes a byte. The master polls the read end.
    int doorbell_fd() const { return doorbell_[0]; }
    void drain_doorbell();

    /// Master, before fork(): slot `i` is ready for a worker of `generation`
    /// in `place`, which leaves after `max_requests` requests (0: never).
    void prepare(int i, int generation, int place, uint64_t max_requests);
    /// Master: it has asked the worker in slot `i` to leave (HUP, TTOU, a
    /// smaller pool, a stop). The worker may be in the middle of a request:
    /// STATUS shows it as exiting ('G') from now on.
    void leaving(int i) { slots_[i].leaving.store(true, std::memory_order_relaxed); }
    /// Master, after wait(): the worker in slot `i` was reaped. Its counts join
    /// the retired totals and the slot is marked empty; its pid and numbers
    /// stay readable until the slot is prepared again, for the stop table.
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

    /// STATUS: a row per live worker, each followed by its threads' rows (04),
    /// with CPU time from /proc. `accept`: the strategy's name, or empty.
    /// `upstream`: each row also shows its connections to backends (09).
    Status status(std::string_view model, std::string_view accept, bool upstream = false) const;

private:
    struct Header {
        int slots = 0;
        int threads = 0;
        int64_t started_ms = 0;
        pid_t master = 0;  // the process that made the board (STATUS's pid)
        std::atomic<uint32_t> retiring{0};  // the seqlock: odd while the master moves a slot into the totals
        std::atomic<uint64_t> retired_accepts{0};
        std::atomic<uint64_t> retired_requests{0};
        std::atomic<uint64_t> retired_wakeups{0};
        std::atomic<uint64_t> retired_spurious{0};
        Events events;
    };
    Totals sum(std::string_view model) const;

    Header* header_;
    WorkerSlot* slots_;
    ThreadSlot* threads_;
    int doorbell_[2] = {-1, -1};  // read end (master), write end (workers); non-blocking
};

}  // namespace sl
