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
#include <vector>

namespace sl {
namespace {

class Master {
public:
    Master(Scoreboard& board, const MasterOptions& options, const WorkerMain& worker_main)
        : board_(board), options_(options), worker_main_(worker_main), last_(board.size()) {}

    int run() {
        install_master_handlers();
        for (int slot = 0; slot < board_.size(); ++slot) spawn_worker(slot);

        // The master's loop: sleep until a signal, then a flat list of
        // "if this happened, deal with it" (nginx's master cycle).
        while (!stop_requested()) {
            wait(1000);
            if (take_child_exited()) reap_children();
            if (take_report_request()) print_table();
            respawn_empty_slots();  // slots whose fork() failed get another try each second
        }
        shutdown_workers();
        Totals t = board_.totals(options_.model);
        print_summary(options_.model, t.connections, t.requests);
        return 0;
    }

private:
    // What the master remembers of the last worker in each slot, for the table.
    struct Last {
        pid_t pid = 0;
        rusage usage{};
    };

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

    // Forks a worker for `slot`. Returns in the master only: the child runs
    // worker_main and exits.
    void spawn_worker(int slot) {
        const pid_t master = ::getpid();
        if (options_.dispatcher) options_.dispatcher->before_fork(slot);
        pid_t pid = ::fork();
        if (pid < 0) {
            log("fork: {} (worker {} not started; retrying in a second)", std::strerror(errno), slot);
            return;
        }
        if (pid == 0) {
            become_worker(slot, master);
            if (options_.dispatcher) options_.dispatcher->after_fork_in_worker(slot);
            ::_exit(worker_main_(slot));  // _exit: never run the master's atexit handlers or flush its stdio twice
        }
        if (options_.dispatcher) options_.dispatcher->after_fork_in_master(slot);
        board_.begin(slot, pid);
        children_.add(pid, slot);
        last_[slot].pid = pid;
        trace("spawned worker {} pid {}", slot, pid);
    }

    void become_worker(int slot, pid_t master) {
        set_role(fmt::format("worker {}", slot));
        reset_signals_after_fork();
        // Workers never outlive the master: the kernel sends SIGKILL when it
        // dies. If it died before this line, nobody would send it, so look.
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || ::getppid() != master) ::_exit(1);
        board_.slot(slot).pid = ::getpid();
        trace("started");
    }

    void reap_children() {
        for (const ChildExit& e : children_.reap()) {
            if (e.slot < 0) continue;
            board_.retire(e.slot);
            last_[e.slot].usage = e.usage;
            if (options_.dispatcher) options_.dispatcher->worker_gone(e.slot);
            if (stop_requested()) continue;
            log("worker {} (pid {}) {}; replacing it", e.slot, e.pid, describe_exit(e.status));
            spawn_worker(e.slot);
        }
    }

    void respawn_empty_slots() {
        for (int slot = 0; slot < board_.size() && !stop_requested(); ++slot)
            if (board_.slot(slot).pid == 0) spawn_worker(slot);
    }

    void print_table() {
        std::vector<WorkerRow> rows;
        for (int slot = 0; slot < board_.size(); ++slot) {
            const WorkerSlot& w = board_.slot(slot);
            WorkerRow r{slot, w.pid, w.state, w.counters.connections, w.counters.requests,
                        w.wakeups,   w.spurious, w.lock_waits,           0,
                        0};
            if (r.pid != 0) {
                process_cpu(r.pid, r.user_s, r.sys_s);
            } else {  // nobody in the slot now: its last worker's figures
                r.pid = last_[slot].pid;
                r.user_s = to_seconds(last_[slot].usage.ru_utime);
                r.sys_s = to_seconds(last_[slot].usage.ru_stime);
            }
            rows.push_back(r);
        }
        print_worker_table(rows);
    }

    // Graceful stop: workers stop accepting, finish the request in progress,
    // close idle connections and exit; stragglers get SIGKILL after the timeout.
    void shutdown_workers() {
        for (const ChildExit& e : children_.stop_all(options_.graceful_timeout_s)) {
            if (e.slot < 0) continue;
            board_.retire(e.slot);
            last_[e.slot].usage = e.usage;
        }
        print_table();
    }

    Scoreboard& board_;
    const MasterOptions& options_;
    const WorkerMain& worker_main_;
    Children children_;
    std::vector<Last> last_;
};

}  // namespace

int run_master(Scoreboard& board, const MasterOptions& options, const WorkerMain& worker_main) {
    return Master(board, options, worker_main).run();
}

}  // namespace sl
