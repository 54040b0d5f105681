// 04_prefork_threads: a master and N workers, each with M threads.
//
//     master: listen, create the scoreboard, fork N workers, then supervise
//     worker: start M threads, each: loop { get a connection; serve it }
//
// The master, the scoreboard and the supervision are 03's (process/master.cpp).
// What changes is inside a worker: M threads serve M connections at once,
// so N processes serve N x M clients in parallel, and client N x M + 1 waits.
// Threads share their process's memory (cheap, but one crash takes all M
// connections down); processes keep crash isolation between groups of M.
// How a connection reaches a thread is --thread-accept (process/threads.hpp);
// how processes compete for it is --accept, as in 03. See docs/04-prefork-threads.md.
#include "accept/accept.hpp"
#include "base/cli.hpp"
#include "base/signals.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "process/master.hpp"
#include "process/scoreboard.hpp"
#include "process/shared_state.hpp"
#include "process/threads.hpp"

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "prefork_threads";

    sl::CommonOptions options;
    sl::Accept strategy = sl::Accept::blocking;
    sl::State state = sl::State::shared;
    sl::ThreadOptions threads;
    sl::MasterOptions master;
    master.model = kModel;
    CLI::App app{"A master and N prefork workers with M threads each.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_pool_options(app, master.pool);  // --workers, --pool dynamic, --max-requests ...
    sl::add_accept_option(app, strategy, sl::prefork_strategies(),
                          "is 06's, for event loops (a blocking worker's accept mutex is lock-mutex)");
    sl::add_thread_options(app, threads);  // --threads, --thread-accept
    sl::add_state_option(app, state);      // --state shared|local: where INCR counts
    app.parse_complete_callback([&] {
        // fcntl locks belong to processes: every thread of the holder would hold it too.
        if (strategy == sl::Accept::lock_fcntl && threads.mode == sl::ThreadAccept::each)
            throw CLI::ValidationError("--accept", "lock-fcntl serializes processes, not threads: "
                                                   "use --thread-accept mutex or queue with it");
    });
    CLI11_PARSE(app, argc, argv);

    sl::start_process("master", options);
    // The strategy decides how the socket is shared: blocking or not, or
    // (reuseport) one listening socket per place in the pool.
    const sl::ListenOptions listen = sl::listen_options_for(strategy, sl::listen_options(options));
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // One slot per worker, and now one per thread, in memory every process
    // shares. It must exist before the first fork.
    sl::Scoreboard board(master.pool.slots(), threads.threads);
    auto acceptor = sl::make_accept_strategy(strategy, listener.get(), listen, master.pool.max_workers, board.size());
    // INCR's counters: one table in shared memory that every thread of every
    // worker counts in with atomic adds (a mutex in one process would not
    // reach the others); or (--state local) a map per thread: wrong, on purpose.
    sl::SharedStore shared;

    // What each worker runs, in its own process, after fork(): M threads.
    auto worker_main = [&](const sl::WorkerId& id) {
        // WHO names this slot; STATS and STATUS read the whole scoreboard.
        const sl::ServerContext ctx =
            sl::worker_context(master, options, board, id.slot, sl::accept_name(strategy), shared);
        acceptor->worker_init(id);

        // What each of the M threads runs: 03's worker loop, one per thread.
        auto thread_main = [&](sl::WorkerThread& me) {
            sl::ServerContext mine = ctx;
            mine.counters = &me.counters();
            sl::LocalStore own;  // --state local: this thread's table, which no other thread sees
            if (state == sl::State::local) mine.store = &own;
            while (!sl::stop_requested()) {
                // The --thread-accept way: each thread accepts, or takes turns
                // at a mutex, or takes from the listener thread's queue.
                sl::Fd conn = me.next_connection();
                if (!conn) continue;
                uint64_t serial = me.begin_connection();
                sl::serve_connection(std::move(conn), mine, serial);
                me.end_connection();
                // --max-requests (counted over the whole process): ask for a successor.
                if (board.recycle_due(id.slot)) board.ask_to_be_replaced(id.slot);
            }
            // Leaving: serve what is already ours and no other worker can take.
            while (sl::Fd conn = me.leftover()) {
                uint64_t serial = me.begin_connection();
                sl::serve_connection(std::move(conn), mine, serial);
                me.end_connection();
            }
        };
        return sl::run_worker_threads(board, id, *acceptor, threads, thread_main);
    };

    return sl::run_master(board, acceptor->master_side(), master, worker_main);
}
