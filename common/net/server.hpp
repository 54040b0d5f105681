// server.hpp: what every model shares around its connections: start-up,
// counters, the connection loop, and the summary printed at exit.
#pragma once

#include "base/cli.hpp"
#include "base/fd.hpp"
#include "protocol/commands.hpp"
#include "protocol/counters.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string_view>

namespace sl {

/// What a model tells serve_connection about itself.
struct ServerContext {
    std::string_view model;
    int worker = -1;                 // the worker index WHO reports; -1: none
    int idle_timeout_s = 30;
    Counters* counters = nullptr;    // serve_connection counts answered requests here
    std::function<Totals()> totals;  // STATS: the whole server
    std::function<Status()> status;  // STATUS; unset: one row, this process (01, 05)
    CounterStore* store = nullptr;   // INCR and GET count here (protocol/state.hpp)
    bool debug_commands = false;     // CRASH is accepted (a test hook of the prefork models)
};

/// The context of a model that is one process (01, 05): its own counters
/// are the whole server's, for STATS and STATUS, and INCR counts in
/// `store`. Both must outlive it.
ServerContext one_process_context(std::string_view model, const CommonOptions& options, Counters& counters,
                                  CounterStore& store);

/// WHO's and STATS's view of one connection of a model: who serves it (pid,
/// ppid, tid, worker, the connection's serial) and the whole server's totals.
class ConnectionView final : public ServerView {
public:
    ConnectionView(const ServerContext& ctx, uint64_t serial) : ctx_(&ctx), serial_(serial) {}
    Identity identity() const override;
    Totals totals() const override { return ctx_->totals(); }
    Status status() const override;
    bool debug_commands() const override { return ctx_->debug_commands; }
    bool stopping() const override;  // stop_requested(): this process was told to stop
    CounterStore* store() const override { return ctx_->store; }

private:
    const ServerContext* ctx_;
    uint64_t serial_;
};

/// Names the process for logs and traces, turns on --trace, installs the stop
/// handlers. The first call of every model's main().
void start_process(std::string_view role, const CommonOptions& options);

/// Prints the one start-up line `<model> listening on <host>:<port> pid <pid>`
/// to stdout and flushes it: tests, tools and graders wait for it.
void announce_listening(std::string_view model, std::string_view host, int listen_fd);

/// Serves one connection until the client leaves, QUITs, sends what must
/// close it, stays idle for ctx.idle_timeout_s, or a stop is requested. On a
/// stop the request being executed completes and is answered; then the
/// connection is closed. Takes ownership of `conn` and closes it. If the
/// socket's timeouts cannot be set (setsockopt fails), the connection is
/// logged and closed at once: without them a silent client would hold it,
/// and the thread serving it, past every timeout and every stop.
void serve_connection(Fd conn, const ServerContext& ctx, uint64_t serial);

/// The closing line on stderr: connections, requests, and the CPU time of this
/// process and its reaped children (getrusage) since start_process(), the
/// figure UNP ch. 30 compares server designs by.
void print_summary(std::string_view model, uint64_t connections, uint64_t requests);

}  // namespace sl
