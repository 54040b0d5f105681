// 09_reverse_proxy: a server that is also a client.
//
//     master: listen, create the scoreboard, fork N workers, supervise (03's)
//     worker: 05's loop; each request the client sends goes to a backend
//             (--backend, any server that speaks the protocol), and the
//             backend's answer comes back to the client
//
// nginx's main job. The front is 06: the same master, the same event loops
// (the workers share the socket with EPOLLEXCLUSIVE, as nginx does on Linux).
// What is new is the back: each worker keeps keep-alive connections to the
// backends (proxy/upstream.hpp), connects without blocking, gives up on a
// backend that fails for a while, and answers 502 or 504 when no backend
// can. The proxy answers QUIT, STATS and STATUS itself: they are about the
// server a client talks to. The lessons are the connection's life on both
// sides (docs/tcp.md): half-closes, lingering closes, and no socket left in
// CLOSE_WAIT. See docs/09-reverse-proxy.md.
#include "accept/accept.hpp"
#include "base/cli.hpp"
#include "base/limits.hpp"
#include "event/loop.hpp"
#include "event/server.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "process/master.hpp"
#include "process/scoreboard.hpp"
#include "process/shared_state.hpp"
#include "proxy/upstream.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "proxy";

    sl::CommonOptions options;
    sl::EventOptions events;
    sl::UpstreamOptions upstream;
    sl::MasterOptions master;
    master.model = kModel;
    CLI::App app{"A reverse proxy: a master and N event-loop workers relaying to backends.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_pool_options(app, master.pool);     // --workers, --pool dynamic, --max-requests ...
    sl::add_event_options(app, events);         // --trigger, --output-limit
    sl::add_upstream_options(app, upstream);    // --backend, --upstream-keepalive, timeouts, --balance
    CLI11_PARSE(app, argc, argv);

    sl::start_process("master", options);
    sl::raise_descriptor_limit();
    sl::ListenOptions listen = sl::listen_options(options);
    listen.nonblocking = true;
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    sl::Scoreboard board(master.pool.slots());
    sl::SharedStore unused_store;  // the proxy counts nothing itself: INCR goes to a backend

    auto worker_main = [&](const sl::WorkerId& id) {
        sl::WorkerSlot& me = board.slot(id.slot);
        sl::ServerContext ctx = sl::worker_context(master, options, board, id.slot, "epoll-exclusive", unused_store);
        ctx.status = [&board] { return board.status(kModel, "epoll-exclusive", /*upstream=*/true); };

        sl::EventLoop loop(events.trigger);
        sl::EventServer server(loop, ctx, events);
        sl::Upstreams backends(loop, upstream, me.counters);  // this worker's connections to the backends
        // Every request but the proxy's own (QUIT, STATS, STATUS) goes to a
        // backend, in the framing the client speaks; the answer comes back
        // through `done`, on this loop, and the client's connection goes on.
        server.delegate([&backends](const sl::Command& c, sl::Framing framing, std::function<void(sl::Answer)> done) {
            if (c.verb == sl::Verb::quit || c.verb == sl::Verb::stats || c.verb == sl::Verb::status ||
                c.verb == sl::Verb::crash || c.verb == sl::Verb::invalid)
                return false;
            backends.relay(c, framing, std::move(done));
            return true;
        });
        server.accept_from(listener.get(), EPOLLEXCLUSIVE, &me.accept);
        server.others_waiting([&] { return board.live_workers() > 1; });

        sl::EventLoop::Ready ready;
        while (!server.finished()) {
            me.set_state(server.connections() == 0 ? sl::WorkerState::idle : sl::WorkerState::busy);
            loop.wait(ready);
            loop.dispatch(ready);
            loop.run_timers();
            loop.run_pending();
            if (board.recycle_due(id.slot)) board.ask_to_be_replaced(id.slot);
        }
        me.set_state(sl::WorkerState::exiting);
        return 0;
    };

    return sl::run_master(board, nullptr, master, worker_main);
}
