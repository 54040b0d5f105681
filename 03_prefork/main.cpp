// 03_prefork: a master and N workers, forked before any client arrives.
//
//     master: listen, create the scoreboard, fork N workers, then supervise
//     worker: loop { accept; serve that connection until it ends }
//
// Every worker inherits the one listening socket and, by default, blocks in
// accept() on it; when a connection arrives the kernel wakes one of them
// (accept has been wake-one on Linux since 2.4). --accept chooses another
// way to compete (accept/accept.hpp), and the scoreboard counts what each
// costs. No fork per connection any more, and the number of processes is
// fixed. The limit: N workers serve N connections at once; client N+1 waits
// in the backlog until a worker is free. See docs/03-prefork.md.
#include "accept/accept.hpp"
#include "base/cli.hpp"
#include "base/signals.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "process/master.hpp"
#include "process/scoreboard.hpp"
#include "process/shared_state.hpp"

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "prefork";

    sl::CommonOptions options;
    sl::Accept strategy = sl::Accept::blocking;
    sl::State state = sl::State::shared;
    sl::MasterOptions master;
    master.model = kModel;
    CLI::App app{"A master and N prefork workers competing in accept().", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_pool_options(app, master.pool);  // --workers, --pool dynamic, --max-requests ...
    sl::add_accept_option(app, strategy, sl::prefork_strategies(),
                          "is 06's, for event loops (a blocking worker's accept mutex is lock-mutex)");
    sl::add_state_option(app, state);  // --state shared|local: where INCR counts
    CLI11_PARSE(app, argc, argv);

    sl::start_process("master", options);
    // The strategy decides how the socket is shared: blocking or not, or
    // (reuseport) one listening socket per place in the pool.
    const sl::ListenOptions listen = sl::listen_options_for(strategy, sl::listen_options(options));
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // One slot per worker in memory every process shares (with room for a
    // pool that grows or restarts). It must exist before the first fork:
    // workers write their counters, STATS sums them.
    sl::Scoreboard board(master.pool.slots());
    auto acceptor = sl::make_accept_strategy(strategy, listener.get(), listen, master.pool.max_workers, board.size());
    // INCR's counters: one table in shared memory that every worker counts
    // in; or (--state local) a map each worker gets its own copy of at
    // fork(), which counts only its own INCRs: the wrong answer, on purpose.
    sl::SharedStore shared;
    sl::LocalStore local;
    sl::CounterStore& store = state == sl::State::local ? static_cast<sl::CounterStore&>(local) : shared;

    // What each worker runs, in its own process, after fork().
    auto worker_main = [&](const sl::WorkerId& id) {
        sl::WorkerSlot& me = board.slot(id.slot);
        // WHO names this slot; STATS and STATUS read the whole scoreboard.
        const sl::ServerContext ctx =
            sl::worker_context(master, options, board, id.slot, sl::accept_name(strategy), store);
        acceptor->worker_init(id);

        // Serve until told to stop.
        while (!sl::stop_requested()) {
            me.set_state(sl::WorkerState::idle);
            // Waits with every other idle worker; who is woken depends on the
            // strategy. Empty: a stop, or another worker won this one.
            sl::Fd conn = acceptor->accept(me.accept);
            if (!conn) continue;
            me.set_state(sl::WorkerState::busy);
            sl::serve_connection(std::move(conn), ctx, ++me.counters.connections);
            // --max-requests: the master starts a successor in our place and
            // then retires us, as a HUP does for all; we serve on meanwhile.
            if (board.recycle_due(id.slot)) board.ask_to_be_replaced(id.slot);
        }
        // Leaving: serve what is already ours and no other worker can take
        // (pass-fd's channel, the socket of a reuseport place that closed).
        while (sl::Fd conn = acceptor->leftover()) sl::serve_connection(std::move(conn), ctx, ++me.counters.connections);
        me.set_state(sl::WorkerState::exiting);
        return 0;
    };

    return sl::run_master(board, acceptor->master_side(), master, worker_main);
}
