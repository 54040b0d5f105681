// 02_fork_per_conn: a child process per connection.
//
//     listen
//     loop:
//         accept                 <- the parent only accepts
//         fork
//           child:  close the listener, serve the connection, exit
//           parent: close the connection, go back to accept
//         reap children that exited (SIGCHLD)
//
// Clients no longer wait for each other: each has a process of its own. The
// costs: a fork() per connection (visible in the CPU summary at exit), and as
// many processes as clients, hence --max-children. See docs/02-fork-per-connection.md.
#include "base/cli.hpp"
#include "base/shm.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"
#include "net/net.hpp"
#include "net/server.hpp"
#include "process/children.hpp"
#include "process/scoreboard.hpp"
#include "process/shared_state.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace {

// What the parent counts, in shared memory made before the first fork, so
// that a child answering STATS sees it.
struct SharedCounters {
    std::atomic<uint64_t> connections{0};
};

}  // namespace

int main(int argc, char** argv) {
    constexpr std::string_view kModel = "fork_per_conn";

    sl::CommonOptions options;
    int max_children = 256;
    int graceful_timeout = 10;
    CLI::App app{"Forks a child process for every connection.", std::string(kModel)};
    sl::add_common_options(app, options);
    app.add_option("--max-children", max_children, "at most this many children; then connections wait in the backlog")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    sl::add_graceful_timeout_option(app, graceful_timeout);
    CLI11_PARSE(app, argc, argv);

    sl::start_process("parent", options);
    sl::install_master_handlers();  // SIGCHLD sets a flag and wakes the loop; no waitpid in a handler

    sl::Fd listener = sl::listen_or_die(sl::listen_options(options));
    sl::announce_listening(kModel, options.host, listener.get());

    // Two tables with a row per child. The parent's own (ChildTable, in
    // its private memory) holds the pids it signals and reaps: no child can
    // change whom the parent signals. The scoreboard, in memory every child
    // shares, is where each child counts its requests and says what it is
    // doing (STATUS, /status). The parent frees both rows when it reaps.
    SharedCounters* shared = sl::shared_new<SharedCounters>();
    sl::ChildTable children(max_children);
    sl::Scoreboard board(max_children);
    // INCR's counters, shared by every child: a child's own map would die
    // with it after one connection, and count nothing of the others.
    sl::SharedStore store;
    auto requests = [&] { return board.totals(kModel).requests; };
    sl::ServerContext ctx;
    ctx.model = kModel;
    ctx.idle_timeout_s = options.idle_timeout;
    ctx.store = &store;
    ctx.totals = [&] {
        sl::Totals t = board.totals(kModel);
        return sl::Totals{kModel, board.live_workers(), shared->connections.load(), t.requests, t.uptime_ms};
    };
    ctx.status = [&] {
        sl::Status s = board.status(kModel, {});
        s.totals = ctx.totals();
        return s;
    };

    while (!sl::stop_requested()) {
        // Reap every child that exited since the last round: no zombies.
        if (sl::take_child_exited()) {
            for (const sl::ChildExit& e : sl::reap_children()) {
                if (int row = children.find(e.pid); row >= 0) {
                    board.retire(row);
                    children.reaped(row);
                }
            }
        }

        // The guard against a fork storm: at the limit (the table has a row
        // per allowed child, none free), stop accepting. New clients wait in
        // the kernel's backlog until a child exits. Only this loop takes rows,
        // so the row found stays free until forked() below.
        int row = children.free_slot();
        if (row < 0) {
            sl::wait_for_event(-1);
            continue;
        }

        sl::Fd conn = sl::accept_connection(listener.get());
        if (!conn) continue;  // a signal (SIGCHLD, a stop) or a transient accept error
        uint64_t serial = ++shared->connections;
        board.prepare(row, 0, row, 0);

        // fork() with signals blocked until the child has its own handlers
        // and pipes (signals.hpp): a SIGTERM that hits a child just born
        // must stop that child, not wake this loop.
        pid_t pid = sl::fork_child();
        if (pid < 0) {
            sl::log("fork: {} (closing connection {})", std::strerror(errno), serial);
            board.retire(row);
            sl::wait_for_event(100);  // EAGAIN: out of processes; give children time to exit
            continue;                 // `conn` closes here: the client sees the connection end
        }
        if (pid == 0) {
            sl::set_role("child");
            listener.reset();  // the child serves; it never accepts, so it drops its copy of the listener
            sl::WorkerSlot& me = board.slot(row);
            me.pid = ::getpid();  // the parent stores it too once fork() returns; whoever runs first
            me.counters.connections = 1;
            me.set_state(sl::WorkerState::busy);
            ctx.counters = &me.counters;
            sl::serve_connection(std::move(conn), ctx, serial);
            ::_exit(0);
        }
        conn.reset();  // the parent never serves, so it drops its copy of the connection
        children.forked(row, pid);    // whom the parent will signal and reap
        board.slot(row).pid = pid;    // for display
        SL_TRACE("forked pid {} for conn {}", pid, serial);
    }

    // Graceful stop: no more accepts; each child finishes its request and exits.
    listener.reset();
    sl::stop_children(children, graceful_timeout, [&](int row, const sl::ChildExit&) { board.retire(row); });
    sl::print_summary(kModel, shared->connections, requests());
    return 0;
}
