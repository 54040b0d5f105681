// server.hpp: the protocol served from an event loop (05, and each worker
// of 06). Many connections in one thread, none of them ever waited for.
//
// Each connection is a small state machine around the same Session as
// every other model: bytes in, requests parsed, answers out. What changes is
// that nothing may block:
//  - sockets are non-blocking; a connection reads what has arrived and writes
//    what the kernel takes, and keeps the rest in its own buffers;
//  - EPOLLOUT is watched only while answers wait to be sent;
//  - backpressure: a connection whose unsent answers pass --output-limit
//    (or whose unread requests fill its input buffer) is not read any more
//    until they drain, so a client that pipelines without reading cannot grow
//    the server's memory without bound;
//  - SLEEP is a timer; the idle timeout is a timer too;
//  - WORK runs on the loop (every other client waits: the lesson) or, with
//    --offload N, on N threads (offload.hpp);
//  - one request at a time per connection, answered in order; requests
//    pipelined behind it wait in the input buffer.
#pragma once

#include "accept/accept.hpp"
#include "event/loop.hpp"
#include "event/offload.hpp"
#include "net/server.hpp"

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

namespace sl {

struct EventOptions {
    Trigger trigger = Trigger::level;
    int offload = 0;                  // threads for WORK (0: WORK runs on the loop)
    size_t output_limit = 64 * 1024;  // stop reading a connection with this much unsent
    bool debug_read_once = false;     // edge-triggered: read once per event (shows what is lost)
    bool multi_accept = false;        // level-triggered: accept all waiting connections per wakeup, not one
};

/// --trigger, --offload, --output-limit, --multi-accept, --debug-read-once.
void add_event_options(CLI::App& app, EventOptions& options);

class EventServer {
public:
    /// Serves on `loop`; counts into `ctx.counters`. Watches the stop pipe:
    /// on SIGINT/SIGTERM it stops accepting, answers what is in flight, closes
    /// connections idle between requests (one still waiting for its first
    /// request gets a second), and finished() becomes true when none is left.
    EventServer(EventLoop& loop, const ServerContext& ctx, const EventOptions& options);
    ~EventServer();
    EventServer(const EventServer&) = delete;
    EventServer& operator=(const EventServer&) = delete;

    /// Accepts connections from the non-blocking listening socket `fd`:
    /// watched for readability (with `extra` flags: EPOLLEXCLUSIVE), then
    /// accepted until EAGAIN in edge mode or with --multi-accept, else one
    /// per wakeup (nginx's default): the loop comes back for the next, and
    /// in 06 another worker may take it meanwhile. `stats`, if given, counts
    /// each wakeup and each that found nothing (the herd, in 06).
    void accept_from(int fd, uint32_t extra = 0, AcceptStats* stats = nullptr);
    /// Stops or resumes watching the listening socket (06's accept mutex).
    void accepting(bool on);
    /// EPOLLEXCLUSIVE: asked before re-adding the socket every 16 accepts;
    /// false skips it (06: a pool of one worker has nobody to give the turn to).
    void others_waiting(std::function<bool()> fn) { others_waiting_ = std::move(fn); }

    /// Serves a connection accepted elsewhere (06: what a leaving reuseport
    /// worker drains from its own socket).
    void adopt(Fd conn);

    bool stopping() const { return stopping_; }
    bool finished() const { return stopping_ && connections_.empty(); }
    size_t connections() const { return connections_.size(); }

    class Connection;  // server.cpp

private:
    friend class Connection;
    class Listener;
    class StopWatcher;
    void begin_stop();
    void accept_ready();
    void take(Fd conn, bool nonblocking);
    void closed(Connection* c);
    Connection* find(uint64_t serial);

    EventLoop& loop_;
    const ServerContext& ctx_;
    const EventOptions& options_;
    std::unique_ptr<WorkPool> pool_;
    std::unique_ptr<Listener> listener_;
    std::unique_ptr<StopWatcher> stop_watcher_;
    std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
    // Closed during a turn, destroyed after it: an event for one of them may
    // still be in the same epoll_wait batch.
    std::vector<std::unique_ptr<Connection>> closed_;
    std::function<bool()> others_waiting_;
    bool stopping_ = false;
};

}  // namespace sl
