// 05_event_loop: one process, one thread, one epoll instance.
//
//     listen (non-blocking)
//     loop, one turn at a time:
//         wait       in epoll_wait, until something is ready: the listening
//                    socket, a connection, the next timer, finished work, a stop
//         dispatch   the listener is ready? accept a connection (all that
//                    wait, with --trigger edge or --multi-accept);
//                    a connection is ready? read what arrived, answer the
//                    complete requests, send what the kernel takes
//         timers     a SLEEP ends, or an idle connection closes
//         pending    offloaded WORK's answers come back
//
// No process or thread per connection: one thread serves them all, because
// it never waits for any one of them. Sockets are non-blocking, and every
// connection keeps what it could not read or send yet in buffers of its own.
// The price is that nothing may block: a SLEEP becomes a timer, and a WORK,
// which is CPU, stalls every client while it runs (--offload N moves it to
// N threads). This is the design of redis, of nginx's workers and of Node.js.
// See docs/05-event-loop.md.
#include "base/cli.hpp"
#include "base/limits.hpp"
#include "event/loop.hpp"
#include "event/server.hpp"
#include "net/net.hpp"
#include "net/server.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "event_loop";

    sl::CommonOptions options;
    sl::EventOptions events;
    CLI::App app{"One thread serving every connection from an epoll event loop.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_event_options(app, events);  // --trigger, --offload, --output-limit
    CLI11_PARSE(app, argc, argv);

    sl::start_process(kModel, options);
    // A descriptor per connection, and thousands of connections: the soft
    // limit (often 1024) up to the hard one.
    sl::raise_descriptor_limit();

    // The listening socket is non-blocking: an accept must never wait. When
    // epoll says it is readable we accept one connection (level-triggered,
    // what is still queued is reported again) or, edge-triggered, until EAGAIN.
    sl::ListenOptions listen = sl::listen_options(options);
    listen.nonblocking = true;
    sl::Fd listener = sl::listen_or_die(listen);
    sl::announce_listening(kModel, options.host, listener.get());

    // What STATS reports: one process, one thread, its own counters. INCR's
    // counters: a plain map, no lock: only the loop's thread touches it.
    sl::Counters counters;
    sl::LocalStore store;
    const sl::ServerContext ctx = sl::one_process_context(kModel, options, counters, store);

    // The loop (event/loop.hpp) waits and dispatches; the server
    // (event/server.hpp) is what each ready descriptor and timer does: the
    // connections' state machines around the same Session as every model.
    sl::EventLoop loop(events.trigger);
    sl::EventServer server(loop, ctx, events);
    server.accept_from(listener.get());

    // The loop that is the whole model. Nothing in a turn blocks but the
    // wait. A stop (SIGINT/SIGTERM) makes the server stop accepting and close
    // its connections as their requests end; when the last one is gone, we
    // are done.
    sl::EventLoop::Ready ready;
    while (!server.finished()) {
        loop.wait(ready);      // epoll_wait: a socket is ready, a timer is due, work came back, a stop
        loop.dispatch(ready);  // accept; on each ready connection read, answer, send
        loop.run_timers();     // SLEEPs that end, connections idle too long
        loop.run_pending();    // the answers of offloaded WORK, and what this turn deferred
    }

    sl::print_summary(kModel, counters.connections, counters.requests);
    return 0;
}
