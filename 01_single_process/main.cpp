// 01_single_process: the iterative server.
//
// One process does everything, one connection at a time:
//
//     listen -> accept -> serve that connection until it ends -> accept the next
//
// While one client is being served nobody else is. A second client's
// connect() still succeeds, because the kernel finishes the TCP handshake and
// queues the connection in the listen backlog, but its requests wait there
// until the first client leaves. One slow client stalls everyone: the limit
// every later model removes in its own way. See docs/01-single-process.md.
#include "base/cli.hpp"
#include "base/signals.hpp"
#include "net/net.hpp"
#include "net/server.hpp"

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "single_process";

    sl::CommonOptions options;
    CLI::App app{"The iterative server: serves one connection at a time.", std::string(kModel)};
    sl::add_common_options(app, options);
    CLI11_PARSE(app, argc, argv);

    sl::start_process(kModel, options);

    // socket + bind + listen. From here on the kernel accepts connections for
    // us, even while we are busy, up to --backlog of them.
    sl::Fd listener = sl::listen_or_die(sl::listen_options(options));
    sl::announce_listening(kModel, options.host, listener.get());

    // What STATS reports: one process does all the work, so "the whole
    // server" is this process's own counters. INCR's counters: a plain map,
    // with no lock, since one thread is all that ever touches it.
    sl::Counters counters;
    sl::LocalStore store;
    const sl::ServerContext ctx = sl::one_process_context(kModel, options, counters, store);

    // The loop that is the whole model. accept_connection() returns an empty
    // Fd when SIGINT/SIGTERM asked us to stop (or on a transient error it has
    // already dealt with); serve_connection() returns only when this client is
    // done. Nothing else runs in between: that is the lesson.
    while (!sl::stop_requested()) {
        sl::Fd conn = sl::accept_connection(listener.get());
        if (!conn) continue;
        uint64_t serial = ++counters.connections;
        sl::serve_connection(std::move(conn), ctx, serial);
    }

    sl::print_summary(kModel, counters.connections, counters.requests);
    return 0;
}
