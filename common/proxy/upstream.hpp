// upstream.hpp: a proxy worker's side as a client (09): its connections to
// the backends, in the worker's own event loop.
//
// A request the proxy relays goes to a backend (round robin, or the one with
// the fewest requests in flight: --balance) over a keep-alive connection
// from the worker's pool, or a new one (a non-blocking connect(), bounded by
// --connect-timeout). The answer is read whole (answers are small: a line,
// or a response with its Content-Length), within --read-timeout, and the
// connection goes back to the pool (at most --upstream-keepalive idle per
// worker, nginx's `keepalive`). A backend that refuses or does not answer a
// connect is left alone for --fail-timeout (nginx's max_fails=1
// fail_timeout), and the request, not yet sent, goes to another, once. When
// no backend can take it the client gets 502 (504 for a timeout), or in the
// text protocol `ERR upstream ...`, and its connection goes on.
//
// The connection's life, where proxies leak: a backend that closes an idle
// pooled connection is seen at once (the pool watches each for input), so
// no socket waits in CLOSE_WAIT for a request that will never come.
#pragma once

#include "base/cli.hpp"
#include "event/loop.hpp"
#include "event/loop_threads.hpp"
#include "protocol/commands.hpp"
#include "protocol/counters.hpp"
#include "protocol/session.hpp"

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sl {

struct UpstreamOptions {
    std::vector<std::string> backends;  // HOST:PORT, at least one (--backend, repeatable)
    int keepalive = 32;                 // idle connections a worker keeps; 0: a connection per request
    double connect_timeout_s = 1.0;
    double read_timeout_s = 30.0;
    double fail_timeout_s = 10.0;
    Balance balance = Balance::round_robin;
};

/// --backend, --upstream-keepalive, --connect-timeout, --read-timeout, --fail-timeout, --balance.
void add_upstream_options(CLI::App& app, UpstreamOptions& options);

class UpstreamConnection;

class Upstreams {
public:
    /// A worker's pool, on its loop; counts its open connections in `counters.upstream`.
    Upstreams(EventLoop& loop, const UpstreamOptions& options, Counters& counters);
    ~Upstreams();
    Upstreams(const Upstreams&) = delete;
    Upstreams& operator=(const Upstreams&) = delete;

    /// Sends `command` to a backend in the client's `framing` and calls
    /// `done` with its answer, or with the proxy's 502/504, on the loop's thread.
    void relay(const Command& command, Framing framing, std::function<void(Answer)> done);

    /// For the status views: connections open now.
    uint32_t open() const;

private:
    friend class UpstreamConnection;
    struct Backend {
        std::string name;  // HOST:PORT, as given
        sockaddr_in addr{};
        int64_t down_until_ms = 0;  // refused or timed out: skipped until then
        int busy = 0;               // requests in flight
        // Its pooled connections, the most recent last: text ones and HTTP ones
        // apart, since a backend's connection keeps the framing of its first request.
        std::vector<UpstreamConnection*> idle[2];
    };
    struct Job {
        std::string request;  // the bytes to send
        bool http = false;
        std::function<void(Answer)> done;
        int tries = 0;
    };

    void dispatch(Job job);
    int pick(bool advance = true);
    void done_with(int backend);            // a job left it: answered, failed, or sent elsewhere
    void give_back(UpstreamConnection* c);  // answered: to the pool, or closed
    void closed(UpstreamConnection* c);     // its descriptor is gone
    void failed(int backend, const std::string& why, bool timeout, Job job, bool sent);

    EventLoop& loop_;
    const UpstreamOptions& options_;
    Counters& counters_;
    std::vector<Backend> backends_;
    size_t next_ = 0;
    std::vector<std::unique_ptr<UpstreamConnection>> connections_;
    std::vector<std::unique_ptr<UpstreamConnection>> closed_;  // freed at the end of the turn
};

}  // namespace sl
