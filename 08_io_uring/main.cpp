// 08_io_uring: one process, one thread, one io_uring.
//
//     listen
//     queue an accept (multishot: one request, a connection per completion)
//     loop, one turn at a time:
//         submit and wait   one io_uring_enter(2): what this turn queued goes
//                           to the kernel, and completions come back, many at
//                           once, or the next timer is due
//         completions       a connection accepted: queue a receive for it;
//                           data received: answer the complete requests and
//                           queue a send; data sent: send the rest
//         timers            a SLEEP ends, or an idle connection closes
//         pending           the answers of WORK run on threads (--offload)
//
// 05 asks the kernel "which sockets may I read?" and then reads each one:
// a system call per read and per send. Here the server hands the kernel the
// reads and sends themselves and is told when each is done: the completion
// model, with as many requests and completions per system call as a turn
// has. Everything above the bytes (the Session, one request at a time per
// connection, backpressure, the stop's rules) is 05's. See docs/08-io-uring.md.
#include "base/cli.hpp"
#include "base/limits.hpp"
#include "base/trace.hpp"
#include "event/timers.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "uring/ring.hpp"
#include "uring/server.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "uring";

    sl::CommonOptions options;
    sl::RingOptions ring_options;
    sl::UringServerOptions server_options;
    CLI::App app{"One thread serving every connection from an io_uring.", std::string(kModel)};
    sl::add_common_options(app, options);
    sl::add_ring_options(app, ring_options);            // --mode, --no-fixed-files, --no-defer-taskrun
    sl::add_uring_server_options(app, server_options);  // --offload, --output-limit
    CLI11_PARSE(app, argc, argv);

    sl::start_process(kModel, options);
    sl::raise_descriptor_limit();
    // The ring first: where io_uring cannot be had, say why and exit with
    // status 2, before a socket exists.
    sl::Ring ring(ring_options);
    SL_TRACE("io_uring: {}", ring.description());

    // A blocking listening socket: nothing but the ring reads it, and the ring
    // waits for connections itself. (Before Linux 5.18 an accept request on a
    // non-blocking socket completed at once with EAGAIN; 08 needs 5.19 anyway.)
    sl::Fd listener = sl::listen_or_die(sl::listen_options(options));
    sl::announce_listening(kModel, options.host, listener.get());

    sl::Counters counters;
    sl::LocalStore store;  // INCR: one thread, a plain map
    const sl::ServerContext ctx = sl::one_process_context(kModel, options, counters, store);
    sl::TimerHeap timers;
    sl::UringServer server(ring, timers, ctx, server_options, listener.get());

    while (!server.finished()) {
        ring.submit_and_wait(server.wait_ms());
        ring.completions([&](const io_uring_cqe& cqe) { server.complete(cqe); });
        timers.run_due();
        server.run_pending();
    }

    sl::print_summary(kModel, counters.connections, counters.requests);
    return 0;
}
