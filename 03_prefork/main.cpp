// 03_prefork: a master and N workers, forked before any client arrives.
//
//     master: listen, create the scoreboard, fork N workers, then supervise
//     worker: loop { accept; serve that connection until it ends }
//
// Every worker inherits the one listening socket and, by default, blocks in
// accept() on it; when a connection arrives the kernel wakes one of them
// (accept has been wake-one on Linux since 2.4). --accept chooses another
// way to compete (accept.hpp), and the scoreboard counts what each costs.
// No fork per connection any more, and the number of processes is fixed.
// The limit: N workers serve N connections at once; client N+1 waits in the
// backlog until a worker is free. See docs/03-prefork.md.
#include "accept.hpp"
#include "cli.hpp"
#include "master.hpp"
#include "net.hpp"
#include "scoreboard.hpp"
#include "server.hpp"
#include "signals.hpp"

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "prefork";

    sl::CommonOptions options;
    std::string strategy = "blocking";
    sl::MasterOptions master;
    master.model = kModel;
    CLI::App app{"A master and N prefork workers competing in accept().", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_pool_options(app, master.pool);  // --workers, --pool dynamic, --max-requests ...
    app.add_option("--accept", strategy, "how workers compete for connections")
        ->capture_default_str()
        ->check(CLI::IsMember(sl::accept_strategy_names()));
    CLI11_PARSE(app, argc, argv);

    sl::start_process("master", options);
    // The strategy decides how the socket is shared: blocking or not, or
    // (reuseport) only bound by the master, with a listener per worker.
    const sl::ListenOptions listen = sl::listen_options_for(strategy, options.listen());
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // One slot per worker in memory every process shares (with room for a
    // pool that grows or restarts). It must exist before the first fork:
    // workers write their counters, STATS sums them.
    sl::Scoreboard board(master.pool.slots());
    auto acceptor = sl::make_accept_strategy(strategy, listener.get(), listen, board.size());
    master.dispatcher = acceptor->dispatcher();

    // What each worker runs, in its own process, after fork().
    auto worker_main = [&](int slot) {
        sl::WorkerSlot& me = board.slot(slot);
        sl::ServerContext ctx;
        ctx.model = kModel;
        ctx.worker = slot;
        ctx.idle_timeout_s = options.idle_timeout;
        ctx.counters = &me.counters;
        ctx.totals = [&] { return board.totals(kModel); };
        ctx.debug_commands = master.pool.debug_commands;
        acceptor->worker_init(slot);

        // Serve until told to stop, or until --max-requests says to make way
        // for a fresh worker (checked between connections: none is cut short).
        while (!sl::stop_requested() && !board.recycle_due(slot)) {
            me.set_state(sl::WorkerState::idle);
            // Waits with every other idle worker; who is woken depends on the
            // strategy. Empty: a stop, or another worker won this one.
            sl::Fd conn = acceptor->accept(me);
            if (!conn) continue;
            me.set_state(sl::WorkerState::busy);
            uint64_t serial = ++me.counters.connections;
            sl::serve_connection(std::move(conn), ctx, serial);
        }
        me.set_state(sl::WorkerState::exiting);
        return 0;
    };

    return sl::run_master(board, master, worker_main);
}
