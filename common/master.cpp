#include "master.hpp"

#include "accept.hpp"
#include "children.hpp"
#include "clock.hpp"
#include "signals.hpp"
#include "trace.hpp"

#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>
#include <vector>

namespace sl {
namespace {

class Master {
public:
    Master(Scoreboard& board, const MasterOptions& options, const WorkerMain& worker_main)
        : board_(board), options_(options), pool_(options.pool), worker_main_(worker_main),
          slots_(board.size()), target_(pool_.initial_workers()) {}

    int run() {
        install_master_handlers();
        // The master's loop: sleep until a signal or the next second, then a
        // flat list of "if this happened, deal with it" (nginx's master cycle).
        while (!stop_requested() && !failed_) {
            keep_pool_size();
            wait(next_timeout_ms());
            if (take_child_exited()) reap_children();
            if (take_report_request()) print_table();
            if (take_reload()) rolling_restart();
            if (take_more_workers()) resize(+1);
            if (take_fewer_workers()) resize(-1);
            if (take_quit()) return quit_now();
            if (monotonic_ms() >= next_tick_ms_) every_second();
            finish_rolling_restart();
        }
        shutdown_workers();
        return failed_ ? 1 : 0;
    }

private:
    // What the master knows of each slot; the workers never see this.
    struct Slot {
        enum Role { empty, running, retiring, waiting } role = empty;  // waiting: respawn after a backoff
        pid_t pid = 0;
        pid_t last_pid = 0;
        int generation = 0;
        int64_t spawned_ms = 0;
        int64_t kill_at_ms = 0;  // retiring: SIGKILL if still alive then
        int quick_deaths = 0;  // in a row: the crash-loop backoff grows with it
        int64_t respawn_at_ms = 0;
        rusage usage{};
    };

    // ---- the pool ----------------------------------------------------------------------

    // Workers of the current generation, running or waiting to be respawned.
    int pool_size() const {
        int n = 0;
        for (const Slot& s : slots_)
            n += (s.role == Slot::running && s.generation == generation_) || s.role == Slot::waiting;
        return n;
    }

    // Until the next second's checks, or a backoff that ends sooner.
    int next_timeout_ms() const {
        int64_t now = monotonic_ms();
        int64_t wake = next_tick_ms_;
        for (const Slot& s : slots_)
            if (s.role == Slot::waiting) wake = std::min(wake, s.respawn_at_ms);
        return static_cast<int>(std::clamp<int64_t>(wake - now, 0, 1000));
    }

    // Forks until the pool has target_ workers; respawns slots whose backoff is over.
    void keep_pool_size() {
        int64_t now = monotonic_ms();
        for (int i = 0; i < board_.size() && !stop_requested(); ++i)
            if (slots_[i].role == Slot::waiting && slots_[i].respawn_at_ms <= now) spawn_worker(i);
        for (int missing = target_ - pool_size(); missing > 0 && !stop_requested(); --missing) {
            int free = first_empty_slot();
            if (free < 0 || !spawn_worker(free)) break;  // fork failed: try again next second
        }
    }

    int first_empty_slot() const {
        for (int i = 0; i < board_.size(); ++i)
            if (slots_[i].role == Slot::empty) return i;
        return -1;
    }

    // TTIN and TTOU: one worker more or less, within 1..--max-workers.
    void resize(int delta) {
        int wanted = std::clamp(target_ + delta, 1, pool_.max_workers);
        log("{}: {} workers -> {}", delta > 0 ? "SIGTTIN" : "SIGTTOU", target_, wanted);
        if (wanted < target_) retire_one_worker("SIGTTOU");
        target_ = wanted;
    }

    // The dynamic pool's spare rules, the request timeout, the backoff reset.
    void every_second() {
        int64_t now = monotonic_ms();
        next_tick_ms_ = now + 1000;
        if (pool_.dynamic()) {
            int idle = 0;
            for (int i = 0; i < board_.size(); ++i) {
                WorkerState st = board_.slot(i).state;
                idle += slots_[i].role == Slot::running && (st == WorkerState::idle || st == WorkerState::starting);
            }
            SpareDecision d = decide_spares(idle, pool_size(), pool_, spawn_rate_);
            if (d.spawn > 0) trace("dynamic pool: {} idle < --min-spare {}: forking {}", idle, pool_.min_spare, d.spawn);
            target_ = std::min(pool_size() + d.spawn, pool_.max_workers);
            if (d.retire_one && retire_one_worker("dynamic pool: too many idle workers")) target_ = pool_size();
        }
        for (int i = 0; i < board_.size(); ++i) {
            Slot& s = slots_[i];
            if (s.role != Slot::running) continue;
            if (now - s.spawned_ms >= kStableMs) s.quick_deaths = 0;  // a stable minute
            int64_t busy_since = board_.counts(i).busy_since_ms;
            if (pool_.request_timeout > 0 && busy_since != 0 && now - busy_since > pool_.request_timeout * 1000LL) {
                log("worker {} (pid {}) busy on one request for over --request-timeout {} s; replacing it", i, s.pid,
                    pool_.request_timeout);
                retire_worker(i, 1);  // SIGTERM, and SIGKILL after a 1 s grace: the request will not finish
            }
        }
        for (Slot& s : slots_)
            if (s.role == Slot::retiring && s.kill_at_ms != 0 && now >= s.kill_at_ms) {
                ::kill(s.pid, SIGKILL);
                s.kill_at_ms = 0;
            }
    }

    // ---- workers: spawn, retire, reap --------------------------------------------------

    // Forks a worker into `slot`. Returns in the master only: the child runs
    // worker_main and exits.
    bool spawn_worker(int slot) {
        const pid_t master = ::getpid();
        // The slot is ready before the worker exists, so no count of its is lost.
        board_.begin(slot, 0, recycle_after(pool_, random_()));
        if (options_.dispatcher) options_.dispatcher->before_fork(slot);
        pid_t pid = ::fork();
        if (pid < 0) {
            log("fork: {} (worker {} not started; retrying in a second)", std::strerror(errno), slot);
            slots_[slot].role = Slot::waiting;
            slots_[slot].respawn_at_ms = monotonic_ms() + 1000;
            return false;
        }
        if (pid == 0) {
            become_worker(slot, master);
            if (options_.dispatcher) options_.dispatcher->after_fork_in_worker(slot);
            ::_exit(worker_main_(slot));  // _exit: never run the master's atexit handlers or flush its stdio twice
        }
        if (options_.dispatcher) options_.dispatcher->after_fork_in_master(slot);
        board_.slot(slot).pid = pid;
        children_.add(pid, slot);
        Slot& s = slots_[slot];
        s.role = Slot::running;
        s.pid = s.last_pid = pid;
        s.generation = generation_;
        s.spawned_ms = monotonic_ms();
        ++board_.events().spawns;
        trace("spawned worker {} pid {} (generation {})", slot, pid, generation_);
        return true;
    }

    void become_worker(int slot, pid_t master) {
        set_role(fmt::format("worker {}", slot));
        reset_signals_after_fork();
        // Workers never outlive the master: the kernel sends SIGKILL when it
        // dies. If it died before this line, nobody would send it, so look.
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ::getppid() != master) ::_exit(1);
        board_.slot(slot).pid = ::getpid();
        trace("started");
        if (pool_.debug_fail_start) ::_exit(3);  // test hook: fail before ever being ready
    }

    // Asks the worker in `slot` to leave: SIGTERM (it finishes its request),
    // then SIGKILL after `grace_s`. It is not replaced in its slot.
    void retire_worker(int slot, int grace_s) {
        Slot& s = slots_[slot];
        ::kill(s.pid, SIGTERM);
        s.role = Slot::retiring;
        s.kill_at_ms = monotonic_ms() + grace_s * 1000LL;
        ++board_.events().retirements;
        trace("retiring worker {} pid {}", slot, s.pid);
    }

    // An idle worker if there is one (nobody's request is cut short), else any.
    bool retire_one_worker(const char* why) {
        int pick = -1;
        for (int i = 0; i < board_.size(); ++i) {
            if (slots_[i].role == Slot::waiting) {  // a slot waiting out a backoff is the cheapest to drop
                slots_[i].role = Slot::empty;
                return true;
            }
            if (slots_[i].role != Slot::running || slots_[i].generation != generation_) continue;
            if (pick < 0 || board_.slot(i).state == WorkerState::idle) pick = i;
        }
        if (pick < 0) return false;
        trace("{}: retiring worker {}", why, pick);
        retire_worker(pick, pool_.graceful_timeout);
        return true;
    }

    void reap_children() {
        for (const ChildExit& e : children_.reap()) {
            if (e.slot < 0) continue;
            Slot& s = slots_[e.slot];
            bool never_ready = board_.slot(e.slot).state == WorkerState::starting;
            board_.retire(e.slot);
            s.usage = e.usage;
            s.pid = 0;
            if (options_.dispatcher) options_.dispatcher->worker_gone(e.slot);
            if (s.role == Slot::retiring || stop_requested()) {
                s.role = Slot::empty;
            } else if (e.clean()) {  // left on its own after --max-requests: replace at once
                trace("worker {} (pid {}) recycled after {} requests", e.slot, e.pid, board_.counts(e.slot).requests);
                s.role = Slot::empty;
            } else {
                worker_died(e, never_ready);
            }
        }
    }

    // A crash, a kill, a failed start: respawn in the same slot, after a backoff if it keeps happening.
    void worker_died(const ChildExit& e, bool never_ready) {
        Slot& s = slots_[e.slot];
        ++board_.events().deaths;
        failed_starts_ = never_ready ? failed_starts_ + 1 : 0;
        if (failed_starts_ >= kFailedStartsLimit) {
            log("workers exit before they are ready ({} in a row, the last {}): giving up", failed_starts_,
                describe_exit(e.status));
            failed_ = true;
            s.role = Slot::empty;
            return;
        }
        int64_t now = monotonic_ms();
        // Quick: dead within 10 s of its fork *without having taken a
        // connection*. A worker that served and was then killed (kill -9, the
        // OOM killer, a crashing request) proved it can start: replace it at
        // once, or a few kills in a row would starve the pool into backoff.
        bool took_work = board_.counts(e.slot).accepts > 0;
        if (took_work) s.quick_deaths = 0;
        else if (now - s.spawned_ms < kQuickDeathMs) ++s.quick_deaths;
        int64_t delay = backoff_ms(s.quick_deaths);
        s.role = Slot::waiting;
        s.respawn_at_ms = now + delay;
        if (delay > 0) {
            ++board_.events().backoffs;
            log("worker {} (pid {}) {}, {} times in a row within {} s of start; respawning in {} ms", e.slot,
                e.pid, describe_exit(e.status), s.quick_deaths, kQuickDeathMs / 1000, delay);
        } else {
            log("worker {} (pid {}) {}; replacing it", e.slot, e.pid, describe_exit(e.status));
        }
    }

    // ---- restart and stop --------------------------------------------------------------

    // SIGHUP: a new generation of workers starts now; the old one is retired
    // once the new one is ready (finish_rolling_restart), so nothing fails.
    void rolling_restart() {
        ++generation_;
        log("SIGHUP: starting generation {} of workers", generation_);
    }

    void finish_rolling_restart() {
        bool old_running = false, new_ready = pool_size() >= target_;
        for (int i = 0; i < board_.size(); ++i) {
            const Slot& s = slots_[i];
            if (s.role != Slot::running) continue;
            if (s.generation != generation_) old_running = true;
            else if (board_.slot(i).state == WorkerState::starting) new_ready = false;
        }
        if (!old_running || !new_ready) return;
        for (int i = 0; i < board_.size(); ++i)
            if (slots_[i].role == Slot::running && slots_[i].generation != generation_)
                retire_worker(i, pool_.graceful_timeout);
    }

    // SIGQUIT: no grace. Workers get SIGKILL; requests in flight are lost.
    int quit_now() {
        log("SIGQUIT: stopping now");
        children_.signal_all(SIGKILL);
        shutdown_workers();
        return 0;
    }

    // Graceful stop: workers stop accepting, finish the request in progress,
    // close idle connections and exit; stragglers get SIGKILL after the timeout.
    void shutdown_workers() {
        for (const ChildExit& e : children_.stop_all(pool_.graceful_timeout)) {
            if (e.slot < 0) continue;
            board_.retire(e.slot);
            slots_[e.slot].usage = e.usage;
            slots_[e.slot].role = Slot::empty;
        }
        print_table();
        Totals t = board_.totals(options_.model);
        print_summary(options_.model, t.connections, t.requests);
    }

    void print_table() {
        std::vector<WorkerRow> rows;
        for (int i = 0; i < board_.size(); ++i) {
            const WorkerSlot& w = board_.slot(i);
            const Slot& s = slots_[i];
            if (s.last_pid == 0) continue;  // never used
            Scoreboard::Counts c = board_.counts(i);
            WorkerRow r{i, s.last_pid, w.state, c.accepts, c.requests, w.wakeups, w.spurious,
                        w.lock_waits, to_seconds(s.usage.ru_utime), to_seconds(s.usage.ru_stime)};
            if (s.pid != 0) process_cpu(s.pid, r.user_s, r.sys_s);  // alive: ask /proc
            rows.push_back(r);
        }
        print_worker_table(rows);
        for (const WorkerRow& r : rows) {  // 04: what each thread of a live worker is doing
            if (board_.threads() == 0 || slots_[r.slot].pid == 0) continue;
            std::string line = fmt::format("worker {} threads (state:accepts):", r.slot);
            for (int t = 0; t < board_.threads(); ++t) {
                const ThreadSlot& th = board_.thread(r.slot, t);
                line += fmt::format(" {}:{}", th.state.load() == WorkerState::busy ? 'B' : '.',
                                    th.counters.connections.load());
            }
            write_line(line);
        }
        const auto& e = board_.events();
        write_line(fmt::format("workers: {} now, target {}; spawned {}, died {}, retired {}, backoffs {}",
                               board_.live_workers(), target_, e.spawns.load(), e.deaths.load(),
                               e.retirements.load(), e.backoffs.load()));
    }

    // Sleeps until a signal event (or, with a dispatcher, a connection or a
    // ready worker) or the timeout; drains the event pipe.
    void wait(int timeout_ms) {
        Dispatcher* d = options_.dispatcher;
        if (d == nullptr) return wait_for_event(timeout_ms);
        std::vector<pollfd> fds{{event_fd(), POLLIN, 0}};
        d->poll_set(fds);
        if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;  // EINTR: the flags say why
        if (fds[0].revents != 0) drain_events();
        d->on_ready(fds);
    }

    Scoreboard& board_;
    const MasterOptions& options_;
    const PoolOptions& pool_;
    const WorkerMain& worker_main_;
    Children children_;
    std::vector<Slot> slots_;
    int target_;
    int generation_ = 0;
    int spawn_rate_ = 1;
    int failed_starts_ = 0;
    bool failed_ = false;
    int64_t next_tick_ms_ = 0;
    std::minstd_rand random_{static_cast<unsigned>(::getpid())};
};

}  // namespace

int run_master(Scoreboard& board, const MasterOptions& options, const WorkerMain& worker_main) {
    return Master(board, options, worker_main).run();
}

}  // namespace sl
