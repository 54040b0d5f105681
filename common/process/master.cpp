#include "process/master.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"
#include "net/server.hpp"
#include "process/children.hpp"
#include "process/report.hpp"

#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <random>
#include <vector>

namespace sl {
namespace {

class Master {
public:
    Master(Scoreboard& board, MasterSide* side, const MasterOptions& options, const WorkerMain& worker_main)
        : board_(board), side_(side), options_(options), pool_(options.pool),
          worker_main_(worker_main), slots_(static_cast<size_t>(board.size())), children_(board.size()),
          reaped_usage_(static_cast<size_t>(board.size())), target_(pool_.initial_workers()) {}

    int run() {
        install_master_handlers();
        // The master's loop: sleep until a signal or the next second, then a
        // flat list of "if this happened, deal with it" (nginx's master cycle).
        while (!stop_requested() && !failed_) {
            keep_pool_size();
            wait(next_timeout_ms());
            children_.chase();  // leaving workers: SIGTERM again, or SIGKILL once their grace is over
            if (take_child_exited()) reap_workers();
            if (take_report_request()) print_worker_table(board_, reaped_usage_, target_);
            if (take_reload()) rolling_restart();
            if (take_more_workers()) resize(+1);
            if (take_fewer_workers()) resize(-1);
            if (take_quit()) return quit_now();
            if (monotonic_ms() >= next_tick_ms_) every_second();
            if (outgoing_may_leave(views(), target_)) retire_outgoing();
            update_places();
        }
        shutdown_workers();
        return failed_ ? 1 : 0;
    }

private:
    // What the master alone knows of a slot, in its own memory. The pids
    // it signals and reaps are in children_ (children.hpp: never the
    // scoreboard, which every worker can write); the scoreboard has the
    // workers' own states and counts, for the pool rules and for display.
    struct Slot {
        SlotView::Role role = SlotView::empty;
        int64_t forked_ms = 0;      // running: when fork() returned (the crash-loop rule's clock)
        int quick_deaths = 0;       // in a row: the crash-loop backoff grows with it
        int64_t respawn_at_ms = 0;  // waiting: fork again then
    };

    // The slots as the pool rules (pool.hpp) see them.
    std::vector<SlotView> views() const {
        std::vector<SlotView> v(slots_.size());
        int64_t now = monotonic_ms();
        for (size_t i = 0; i < slots_.size(); ++i) {
            const WorkerSlot& w = board_.slot(static_cast<int>(i));
            WorkerState st = w.state.load();
            v[i].role = slots_[i].role;
            v[i].place = w.place.load();
            v[i].ready = st != WorkerState::starting;
            v[i].idle = st == WorkerState::idle || st == WorkerState::starting;
            v[i].backing_off = slots_[i].respawn_at_ms > now;
            v[i].outgoing = w.generation.load() != generation_ || w.replace_me.load();
        }
        return v;
    }

    // ---- the pool ----------------------------------------------------------------------

    // Until the next second's checks, or a backoff that ends sooner. While
    // a worker is starting, every 10 ms: the worker it replaces leaves as
    // soon as it is ready, and nothing else would wake the master then.
    int next_timeout_ms() const {
        int64_t now = monotonic_ms(), wake = next_tick_ms_;
        if (int64_t chase = children_.next_chase_ms(); chase >= 0) wake = std::min(wake, chase);
        for (int i = 0; i < board_.size(); ++i) {
            if (slots_[i].role == SlotView::waiting) wake = std::min(wake, slots_[i].respawn_at_ms);
            if (slots_[i].role == SlotView::running && board_.slot(i).state == WorkerState::starting)
                wake = std::min(wake, now + 10);
        }
        return static_cast<int>(std::clamp<int64_t>(wake - now, 0, 1000));
    }

    // Forks until the pool has target_ workers; respawns slots whose backoff is over.
    void keep_pool_size() {
        int64_t now = monotonic_ms();
        for (int i = 0; i < board_.size() && !stop_requested(); ++i)
            if (slots_[i].role == SlotView::waiting && slots_[i].respawn_at_ms <= now)
                spawn_worker(i, board_.slot(i).place);
        for (int missing = target_ - pool_size(views()); missing > 0 && !stop_requested(); --missing) {
            int free = first_empty_slot();
            if (free < 0 || !spawn_worker(free, free_place(views()))) break;  // try again next second
        }
        update_places();
    }

    int first_empty_slot() const {
        for (int i = 0; i < board_.size(); ++i)
            if (slots_[i].role == SlotView::empty) return i;
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
            std::vector<SlotView> v = views();
            int idle = 0;
            for (const SlotView& s : v) idle += s.role == SlotView::running && !s.outgoing && s.idle;
            SpareDecision d = decide_spares(idle, pool_size(v), pool_, spawn_rate_);
            if (d.spawn > 0) SL_TRACE("dynamic pool: {} idle < --min-spare {}: forking {}", idle, pool_.min_spare, d.spawn);
            target_ = std::min(pool_size(v) + d.spawn, pool_.max_workers);
            if (d.retire_one && retire_one_worker("dynamic pool: too many idle workers")) target_ = pool_size(views());
        }
        for (int i = 0; i < board_.size(); ++i) {
            Slot& s = slots_[i];
            if (s.role != SlotView::running) continue;
            if (now - s.forked_ms >= kStableMs) s.quick_deaths = 0;  // a stable minute
            int64_t busy_since = board_.counts(i).busy_since_ms;
            if (pool_.request_timeout > 0 && busy_since != 0 && now - busy_since > pool_.request_timeout * 1000LL) {
                log("worker {} (pid {}) busy on one request for over --request-timeout {} s; replacing it", i,
                    children_.pid(i), pool_.request_timeout);
                retire_worker(i, 1);  // SIGTERM, and SIGKILL after a 1 s grace: the request will not finish
            }
        }
    }

    // The places with a worker that accepts, told to the strategy when they change (reuseport steers by them).
    void update_places() {
        if (side_ == nullptr) return;
        std::vector<bool> open = open_places(views(), pool_.max_workers);
        if (open == places_) return;
        places_ = open;
        side_->open_places(open);
    }

    // ---- workers: spawn, retire, reap --------------------------------------------------

    // Forks a worker into `slot` and `place`. Returns in the master only: the
    // child runs worker_main and exits.
    bool spawn_worker(int slot, int place) {
        const pid_t master = ::getpid();
        // The slot is ready before the worker exists, so no count of its is lost.
        board_.prepare(slot, generation_, place, recycle_after(pool_, random_()));
        WorkerId id{slot, place};
        if (side_ != nullptr && !side_->before_fork(id)) return wait_to_respawn(slot, 1000);
        pid_t pid = fork_child();
        if (pid == 0) {
            become_worker(slot, master);
            ::_exit(worker_main_(id));  // _exit: never run the master's atexit handlers or flush its stdio twice
        }
        int fork_error = errno;
        if (side_ != nullptr) side_->after_fork(id, pid > 0);
        if (pid < 0) {
            log("fork: {} (worker {} not started; trying again in a second)", std::strerror(fork_error), slot);
            return wait_to_respawn(slot, 1000);
        }
        children_.forked(slot, pid);  // the master's own record: the one it will signal and reap
        board_.slot(slot).pid = pid;  // for display (STATUS, the worker table)
        slots_[slot].role = SlotView::running;
        slots_[slot].forked_ms = monotonic_ms();
        ++board_.events().spawns;
        SL_TRACE("spawned worker {} pid {} (generation {}, place {})", slot, pid, generation_, place);
        return true;
    }

    // The slot gets no worker for now; it is forked again after `delay_ms`. False, for spawn_worker.
    bool wait_to_respawn(int slot, int64_t delay_ms) {
        if (board_.live(slot)) board_.retire(slot);  // nothing was counted: just empty
        slots_[slot].role = SlotView::waiting;
        slots_[slot].respawn_at_ms = monotonic_ms() + delay_ms;
        return false;
    }

    void become_worker(int slot, pid_t master) {
        set_role(fmt::format("worker {}", slot));
        // The master writes this pid too, once fork() returns to it; whichever
        // of the two runs first, the table never shows a running worker as pid 0.
        // (The same value from both: no conflict. Found by a STATUS that landed
        // between the fork and the master's store, on a loaded machine.)
        board_.slot(slot).pid = ::getpid();
        // Workers never outlive the master: the kernel sends SIGKILL when it
        // dies. If it died before this line, nobody would send it, so look.
        // (die() in a forked worker _exits: the master's atexit handlers are not ours to run.)
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("prctl PR_SET_PDEATHSIG");
        if (::getppid() != master) ::_exit(1);  // the master is gone already: nobody to serve for
        SL_TRACE("started");
        if (pool_.debug_fail_start) ::_exit(3);  // test hook: fail before ever being ready
        if (!pool_.debug_forge_pids.empty()) {   // test hook: what a worker gone wrong could write
            const std::vector<int>& forged = pool_.debug_forge_pids;
            for (int i = 0; i < board_.size(); ++i) board_.slot(i).pid = forged[static_cast<size_t>(i) % forged.size()];
        }
    }

    // Asks the worker in `slot` to leave: no more work for it, SIGTERM (it
    // finishes what it has; repeated every 500 ms), then SIGKILL after
    // `grace_s` (children.hpp). It is not replaced in its slot.
    void retire_worker(int slot, int grace_s) {
        if (side_ != nullptr) side_->retiring(slot);
        slots_[slot].role = SlotView::retiring;
        update_places();  // before the signal: reuseport stops steering to its place first
        board_.leaving(slot);
        children_.ask_to_leave(slot, grace_s * 1000LL);
        ++board_.events().retirements;
        SL_TRACE("retiring worker {} pid {}", slot, children_.pid(slot));
    }

    // When the pool shrinks: pick_to_retire's choice (pool.hpp).
    bool retire_one_worker(const char* why) {
        int pick = pick_to_retire(views());
        if (pick < 0) return false;
        if (slots_[pick].role == SlotView::waiting) {
            slots_[pick].role = SlotView::empty;  // waiting out a backoff: nothing to stop
            return true;
        }
        SL_TRACE("{}: retiring worker {}", why, pick);
        retire_worker(pick, pool_.graceful_timeout);
        return true;
    }

    void reap_workers() {
        for (const ChildExit& e : reap_children()) {
            int slot = children_.find(e.pid);
            if (slot < 0) continue;
            Slot& s = slots_[slot];
            bool never_ready = board_.slot(slot).state == WorkerState::starting;
            bool took_work = board_.counts(slot).accepts > 0;
            bool outgoing = views()[slot].outgoing;
            if (side_ != nullptr) side_->retiring(slot);
            board_.retire(slot);
            children_.reaped(slot);
            reaped_usage_[slot] = e.usage;
            if (s.role == SlotView::retiring || stop_requested()) {
                s.role = SlotView::empty;
            } else if (outgoing) {  // it was being replaced anyway: its successor takes its place
                if (!e.clean()) log("worker {} (pid {}) {} while being replaced", slot, e.pid, describe_exit(e.status));
                s.role = SlotView::empty;
            } else if (e.clean()) {  // left on its own (a SIGTERM sent to it alone): replace at once, in its place
                SL_TRACE("worker {} (pid {}) left on its own; replacing it", slot, e.pid);
                wait_to_respawn(slot, 0);
            } else {
                worker_died(slot, e, never_ready, took_work);
            }
        }
    }

    // A crash, a kill, a failed start: respawn in the same slot and place,
    // after a backoff if it keeps happening.
    void worker_died(int slot, const ChildExit& e, bool never_ready, bool took_work) {
        Slot& s = slots_[slot];
        ++board_.events().deaths;
        failed_starts_ = never_ready ? failed_starts_ + 1 : 0;
        if (failed_) {  // giving up already (several died in one reap): said once
            s.role = SlotView::empty;
            return;
        }
        if (failed_starts_ >= kFailedStartsLimit) {
            log("workers exit before they are ready ({} in a row, the last {}): giving up", failed_starts_,
                describe_exit(e.status));
            failed_ = true;
            s.role = SlotView::empty;
            return;
        }
        // Quick: dead within 10 s of its fork *without having taken a
        // connection*. A worker that served and was then killed (kill -9, the
        // OOM killer, a crashing request) proved it can start: replace it at
        // once, or a few kills in a row would starve the pool into backoff.
        int64_t now = monotonic_ms();
        if (took_work) s.quick_deaths = 0;
        else if (now - s.forked_ms < kQuickDeathMs) ++s.quick_deaths;
        int64_t delay = backoff_ms(s.quick_deaths);
        wait_to_respawn(slot, delay);
        if (delay > 0) {
            ++board_.events().backoffs;
            log("worker {} (pid {}) {}, {} times in a row within {} s of start; respawning in {} ms", slot, e.pid,
                describe_exit(e.status), s.quick_deaths, kQuickDeathMs / 1000, delay);
        } else {
            log("worker {} (pid {}) {}; replacing it", slot, e.pid, describe_exit(e.status));
        }
    }

    // ---- restart and stop --------------------------------------------------------------

    // SIGHUP: a new generation of workers starts now, in the places of the
    // old one; the old one is retired once the new one is ready.
    void rolling_restart() {
        ++generation_;
        log("SIGHUP: starting generation {} of workers", generation_);
    }

    // The old generation, and the workers that asked to be replaced
    // (--max-requests), once their successors are ready.
    void retire_outgoing() {
        std::vector<SlotView> v = views();
        for (int i = 0; i < board_.size(); ++i) {
            if (v[i].role != SlotView::running || !v[i].outgoing) continue;
            if (board_.slot(i).replace_me)
                SL_TRACE("worker {} replaced after {} requests (--max-requests)", i, board_.counts(i).requests);
            retire_worker(i, pool_.graceful_timeout);
        }
    }

    // SIGQUIT: no grace. Workers get SIGKILL; requests in flight are lost.
    int quit_now() {
        log("SIGQUIT: stopping now");
        children_.kill_all();
        shutdown_workers();
        return 0;
    }

    // Graceful stop: workers stop accepting, finish what they have, close
    // idle connections and exit; stragglers get SIGKILL after the timeout.
    void shutdown_workers() {
        for (int i = 0; i < board_.size(); ++i) {
            if (!children_.live(i)) continue;
            if (side_ != nullptr) side_->retiring(i);  // hand out nothing more (pass-fd: its channel closes after what is queued)
            board_.leaving(i);
        }
        stop_children(children_, pool_.graceful_timeout, [this](int slot, const ChildExit& e) {
            board_.retire(slot);
            reaped_usage_[slot] = e.usage;
            slots_[slot].role = SlotView::empty;
        });
        print_worker_table(board_, reaped_usage_, target_);
        Totals t = board_.totals(options_.model);
        print_summary(options_.model, t.connections, t.requests);
    }

    // Sleeps until a signal event, the doorbell (or, with pass-fd, a
    // connection or a ready worker) or the timeout; drains the event pipe.
    void wait(int timeout_ms) {
        std::vector<pollfd> fds{{event_fd(), POLLIN, 0}, {board_.doorbell_fd(), POLLIN, 0}};
        if (side_ != nullptr) side_->poll_set(fds);
        int n = ::poll(fds.data(), fds.size(), timeout_ms);
        if (n < 0 && errno != EINTR) die("poll");  // a bug (EINVAL, EFAULT): spinning on it would hide it
        if (n <= 0) return;                        // EINTR: the flags say why
        if (fds[0].revents != 0) drain_events();
        if (fds[1].revents != 0) board_.drain_doorbell();  // a worker asked for a successor: the loop looks
        if (side_ != nullptr) side_->on_ready(fds);
    }

    Scoreboard& board_;
    MasterSide* side_;
    const MasterOptions& options_;
    const PoolOptions& pool_;
    const WorkerMain& worker_main_;
    std::vector<Slot> slots_;          // index: scoreboard slot
    ChildTable children_;              // index: scoreboard slot; the workers' pids, the master's alone
    std::vector<rusage> reaped_usage_;  // index: scoreboard slot; CPU of its last reaped worker
    std::vector<bool> places_;         // the open places last told to the strategy
    int target_;
    int generation_ = 0;
    int spawn_rate_ = 1;
    int failed_starts_ = 0;
    bool failed_ = false;
    int64_t next_tick_ms_ = 0;
    std::minstd_rand random_{static_cast<unsigned>(::getpid())};
};

}  // namespace

ServerContext worker_context(const MasterOptions& master, const CommonOptions& options, Scoreboard& board,
                             int slot, std::string_view accept, CounterStore& store) {
    ServerContext ctx;
    ctx.store = &store;
    ctx.model = master.model;
    ctx.worker = slot;
    ctx.idle_timeout_s = options.idle_timeout;
    ctx.counters = &board.slot(slot).counters;
    ctx.totals = [&board, model = master.model] { return board.totals(model); };
    ctx.status = [&board, model = master.model, accept] { return board.status(model, accept); };  // STATUS, /status
    ctx.debug_commands = master.pool.debug_commands;
    return ctx;
}

int run_master(Scoreboard& board, MasterSide* side, const MasterOptions& options, const WorkerMain& worker_main) {
    return Master(board, side, options, worker_main).run();
}

}  // namespace sl
