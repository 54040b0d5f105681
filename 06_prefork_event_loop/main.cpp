// 06_prefork_event_loop: a master and N workers, each running an event loop.
//
//     master: listen, create the scoreboard, fork N workers, then supervise
//     worker: one epoll loop, as 05: every connection of this worker at once
//
// nginx's architecture: one worker per core, each serving thousands of
// connections from its own loop, and 03's master around them (respawn,
// HUP, TTIN/TTOU, --max-requests, crash-loop backoff). What is new is how the
// workers share the listening socket, since none of them ever blocks in
// accept(): each watches it from its epoll set, and when a connection comes
//   epoll            every idle worker is woken: the herd, now of event loops
//   epoll-exclusive  EPOLLEXCLUSIVE: the kernel wakes one (usually the same one)
//   reuseport        each worker watches a socket of its own place
//   accept-mutex     nginx's accept_mutex: only the worker that holds a shared
//                    lock watches the socket during its next turn
// See docs/06-prefork-event-loop.md.
#include "accept/accept.hpp"
#include "base/cli.hpp"
#include "base/limits.hpp"
#include "base/signals.hpp"
#include "event/loop.hpp"
#include "event/server.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "process/master.hpp"
#include "process/scoreboard.hpp"
#include "process/shared_state.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "prefork_event_loop";
    // nginx's accept_mutex_delay: how long a worker that did not get the lock
    // waits, at most, before it tries again (nginx's default is 500 ms).
    constexpr int kAcceptMutexDelayMs = 50;

    sl::CommonOptions options;
    sl::Accept strategy = sl::Accept::epoll_exclusive;
    sl::State state = sl::State::shared;
    sl::EventOptions events;
    sl::MasterOptions master;
    master.model = kModel;
    CLI::App app{"A master and N workers, each serving its connections from an epoll event loop.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_pool_options(app, master.pool);  // --workers, --pool dynamic, --max-requests ...
    sl::add_accept_option(app, strategy, sl::event_strategies(),
                          "blocks in accept() or in a lock, and an event loop must never block");
    sl::add_event_options(app, events);  // --trigger, --offload, --output-limit
    sl::add_state_option(app, state);    // --state shared|local: where INCR counts
    CLI11_PARSE(app, argc, argv);

    sl::start_process("master", options);
    // A descriptor per connection, and thousands of connections: the soft
    // limit (often 1024) up to the hard one, before the workers inherit it.
    sl::raise_descriptor_limit();
    // Non-blocking whatever the strategy: an event loop accepts until EAGAIN
    // and must never wait in accept() (reuseport's sockets included).
    sl::ListenOptions listen = sl::listen_options_for(strategy, sl::listen_options(options));
    listen.nonblocking = true;
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // Made before the first fork, so that every worker shares them: the
    // scoreboard; reuseport's sockets, one per place; nginx's accept mutex.
    sl::Scoreboard board(master.pool.slots());
    auto places = strategy == sl::Accept::reuseport ? sl::make_accept_strategy(strategy, listener.get(), listen,
                                                                               master.pool.max_workers, board.size())
                                                    : nullptr;
    sl::AcceptMutex mutex;
    // INCR's counters: one table in shared memory, or (--state local) a map
    // each worker gets its own copy of at fork(): the wrong answer, on purpose.
    sl::SharedStore shared;
    sl::LocalStore local;
    sl::CounterStore& store = state == sl::State::local ? static_cast<sl::CounterStore&>(local) : shared;

    // What each worker runs, in its own process, after fork(): 05's loop.
    auto worker_main = [&](const sl::WorkerId& id) {
        sl::WorkerSlot& me = board.slot(id.slot);
        // WHO names this slot; STATS and STATUS read the whole scoreboard.
        const sl::ServerContext ctx =
            sl::worker_context(master, options, board, id.slot, sl::accept_name(strategy), store);

        sl::EventLoop loop(events.trigger);
        sl::EventServer server(loop, ctx, events);
        if (places) places->worker_init(id);
        int watched = places ? places->own_listener() : listener.get();
        const uint32_t exclusive = strategy == sl::Accept::epoll_exclusive ? static_cast<uint32_t>(EPOLLEXCLUSIVE) : 0u;
        server.accept_from(watched, exclusive, &me.accept);
        // Re-adding the socket hands the turn to other workers: alone in the
        // pool (--workers 1) there is nobody to hand it to, and it would only
        // cost two epoll_ctl calls every 16 accepts.
        server.others_waiting([&] { return board.live_workers() > 1; });
        const bool take_turns = strategy == sl::Accept::accept_mutex;

        // 05's loop, turn by turn, and the accept mutex around its wait.
        sl::EventLoop::Ready ready;
        bool drained = false;
        while (!server.finished()) {
            // idle: no connection open (the dynamic pool counts these); busy: some.
            me.set_state(server.connections() == 0 ? sl::WorkerState::idle : sl::WorkerState::busy);
            // The accept mutex: watch the listening socket this turn only if
            // we hold it; without it, wait at most kAcceptMutexDelayMs and try again.
            const bool holding = take_turns && !server.stopping() && mutex.try_lock();
            if (take_turns) server.accepting(holding);
            loop.wait(ready, take_turns && !holding ? kAcceptMutexDelayMs : -1);
            loop.dispatch(ready, /*listeners=*/true);  // accept first, as nginx does
            // Let go as soon as this turn's accepting is done, before any
            // connection is served, whether or not there was one to accept
            // (nginx does the same): a worker busy with its requests never
            // keeps the others from accepting.
            if (holding) mutex.unlock();
            loop.dispatch(ready, /*listeners=*/false);  // read, answer, send
            loop.run_timers();
            loop.run_pending();
            // --max-requests: the master starts a successor in our place, then retires us.
            if (board.recycle_due(id.slot)) board.ask_to_be_replaced(id.slot);
            // Leaving a reuseport place that closed: what is queued in its
            // socket is ours alone now; the loop takes it until it is quiet.
            if (server.stopping() && places && places->place_closed() && !drained) {
                drained = true;
                server.drain_listener(sl::kDrainQuietMs);
            }
        }
        me.set_state(sl::WorkerState::exiting);
        return 0;
    };

    return sl::run_master(board, places ? places->master_side() : nullptr, master, worker_main);
}
