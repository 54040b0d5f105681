// 04_prefork_threads: a master and N workers, each with M threads.
//
//     master: listen, create the scoreboard, fork N workers, then supervise
//     worker: start M threads, each: loop { get a connection; serve it }
//
// The master, the scoreboard and the supervision are 03's (common/master.cpp).
// What changes is inside a worker: M threads serve M connections at once,
// so N processes serve N x M clients in parallel, and client N x M + 1 waits.
// Threads share their process's memory (cheap, but one crash takes all M
// connections down); processes keep crash isolation between groups of M.
// How a connection reaches a thread is --thread-accept (threads.hpp); how
// processes compete for it is --accept, as in 03. See docs/04-prefork-threads.md.
#include "accept.hpp"
#include "cli.hpp"
#include "master.hpp"
#include "net.hpp"
#include "scoreboard.hpp"
#include "server.hpp"
#include "signals.hpp"
#include "threads.hpp"

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "prefork_threads";

    sl::CommonOptions options;
    std::string strategy = "blocking";
    sl::ThreadOptions threads;
    sl::MasterOptions master;
    master.model = kModel;
    CLI::App app{"A master and N prefork workers with M threads each.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_pool_options(app, master.pool);  // --workers, --pool dynamic, --max-requests ...
    app.add_option("--accept", strategy, "how worker processes compete for connections")
        ->capture_default_str()
        ->check(CLI::IsMember(sl::accept_strategy_names()));
    app.add_option("--threads", threads.threads, "serving threads per worker process")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app.add_option("--thread-accept", threads.mode, "how a worker's threads get connections")
        ->capture_default_str()
        ->check(CLI::IsMember(sl::thread_accept_names()));
    app.parse_complete_callback([&] {
        // fcntl locks belong to processes: every thread of the holder would hold it too.
        if (strategy == "lock-fcntl" && threads.mode == "each")
            throw CLI::ValidationError("--accept", "lock-fcntl serializes processes, not threads: "
                                                   "use --thread-accept mutex or queue with it");
    });
    CLI11_PARSE(app, argc, argv);

    sl::start_process("master", options);
    // The strategy decides how the socket is shared: blocking or not, or
    // (reuseport) only bound by the master, with a listener per worker.
    const sl::ListenOptions listen = sl::listen_options_for(strategy, options.listen());
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // One slot per worker, and now one per thread, in memory every process
    // shares. It must exist before the first fork.
    sl::Scoreboard board(master.pool.slots(), threads.threads);
    auto acceptor = sl::make_accept_strategy(strategy, listener.get(), listen, board.size());
    master.dispatcher = acceptor->dispatcher();

    // What each worker runs, in its own process, after fork(): M threads.
    auto worker_main = [&](int slot) {
        sl::ServerContext ctx;
        ctx.model = kModel;
        ctx.worker = slot;
        ctx.idle_timeout_s = options.idle_timeout;
        ctx.totals = [&] { return board.totals(kModel); };
        ctx.debug_commands = master.pool.debug_commands;
        acceptor->worker_init(slot);
        return sl::run_worker_threads(board, slot, *acceptor, threads, ctx);
    };

    return sl::run_master(board, master, worker_main);
}
