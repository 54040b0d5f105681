#include "process/report.hpp"

#include "base/clock.hpp"
#include "base/procfs.hpp"
#include "base/trace.hpp"

namespace sl {

void print_worker_table(const Scoreboard& board, const std::vector<rusage>& reaped, int target) {
    std::string out = fmt::format("{:>4} {:>8} {:>3} {:>5} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8}\n", "slot",
                                  "pid", "gen", "place", "state", "accepts", "requests", "wakeups", "spurious",
                                  "lock_waits", "user_s", "sys_s");
    std::string threads;
    for (int i = 0; i < board.size(); ++i) {
        const WorkerSlot& w = board.slot(i);
        pid_t pid = w.pid.load();
        if (pid == 0) continue;  // never used
        WorkerState state = w.state.load();
        double user = to_seconds(reaped[static_cast<size_t>(i)].ru_utime);
        double sys = to_seconds(reaped[static_cast<size_t>(i)].ru_stime);
        if (state != WorkerState::empty) {  // alive: ask /proc
            if (auto st = read_proc_stat(pid)) user = st->utime, sys = st->stime;
        }
        Scoreboard::Counts c = board.counts(i);
        out += fmt::format("{:>4} {:>8} {:>3} {:>5} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8.3f} {:>8.3f}\n", i, pid,
                           w.generation.load(), w.place.load(), state_name(state), c.accepts, c.requests,
                           w.accept.wakeups.load(), w.accept.spurious.load(), w.accept.lock_waits.load(), user, sys);
        if (board.threads() == 0 || state == WorkerState::empty) continue;
        // 04: what each thread of a live worker is doing (B busy, . idle) and how many connections it took.
        threads += fmt::format("worker {} threads (state:accepts):", i);
        for (int t = 0; t < board.threads(); ++t) {
            const ThreadSlot& th = board.thread(i, t);
            threads += fmt::format(" {}:{}", th.state.load() == WorkerState::busy ? 'B' : '.',
                                   th.counters.connections.load());
        }
        threads += '\n';
    }
    const Scoreboard::Events& e = board.events();
    out += threads;
    out += fmt::format("workers: {} now, target {}; spawned {}, died {}, retired {}, backoffs {}", board.live_workers(),
                       target, e.spawns.load(), e.deaths.load(), e.retirements.load(), e.backoffs.load());
    write_line(out);
}

}  // namespace sl
