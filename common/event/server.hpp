// server.hpp: the protocol served from an event loop (05, and each worker
// of 06). Many connections in one thread, none of them ever waited for.
//
// Three parts, as nginx (ngx_event_accept.c apart from the request code)
// and muduo (Acceptor apart from TcpConnection) cut them:
//   acceptor.hpp    the listening socket: when and how many to accept
//   connection.hpp  one connection: buffers, timers, the Session around it
//   this file       the server: its connections, the stop, WORK's threads
//
// What changes from the blocking models is that nothing may block:
//  - sockets are non-blocking; a connection reads what has arrived and writes
//    what the kernel takes, and keeps the rest in its own buffers;
//  - EPOLLOUT is watched only while answers wait to be sent;
//  - backpressure: a connection whose unsent answers pass --output-limit
//    (or whose unread requests fill its input buffer) is not read any more
//    until they drain, so a client that pipelines without reading cannot grow
//    the server's memory without bound;
//  - fairness: a connection reads at most 64 KiB per turn of the loop, so
//    that one client sending without pause cannot keep the others waiting;
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
#include "protocol/session.hpp"

#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

namespace sl {

class Acceptor;
class Connection;

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

    /// Accepts connections from the non-blocking listening socket `fd`
    /// (acceptor.hpp): one per wakeup, or until EAGAIN edge-triggered and
    /// with --multi-accept. `extra`: EPOLLEXCLUSIVE. `stats`, if given,
    /// counts each wakeup and each that found nothing (the herd, in 06).
    void accept_from(int fd, uint32_t extra = 0, AcceptStats* stats = nullptr);
    /// Stops or resumes watching the listening socket (06's accept mutex).
    void accepting(bool on);
    /// EPOLLEXCLUSIVE: asked before re-adding the socket every 16 accepts;
    /// false skips it (06: a pool of one worker has nobody to give the turn to).
    void others_waiting(std::function<bool()> fn);
    /// After the stop began, when the listening socket is this process's
    /// alone (06 reuseport: the place closed): take what is still queued in
    /// it, until it stays quiet for `quiet_ms`. finished() waits for it.
    void drain_listener(int quiet_ms);

    /// 07's main reactor: what the listening socket gives goes to `to` (a
    /// sub-reactor's queue), not to this server.
    void hand_off(std::function<void(Fd)> to) { hand_off_ = std::move(to); }
    /// Serves a connection accepted by another loop (07's sub-reactors).
    void serve(Fd conn) { take(std::move(conn)); }

    /// A request that someone else answers: `ask` gets the command, the
    /// framing the client speaks, and a `done` to call with the answer on this
    /// loop's thread, and returns false to let the command run here as usual.
    /// `done` is called later, never from inside `ask`: the connection is in
    /// the middle of reading its requests then (an answer known at once goes
    /// through EventLoop::defer, to the end of the turn).
    /// 07 --state sharded: INCR and GET of a name another loop owns (through
    /// its queue); 09: every command a backend answers (through a connection to it).
    using Delegate = std::function<bool(const Command&, Framing, std::function<void(Answer)> done)>;
    void delegate(Delegate ask) { delegate_ = std::move(ask); }

    bool stopping() const { return stopping_; }
    bool finished() const { return stopping_ && !draining_ && connections_.empty(); }
    size_t connections() const { return connections_.size(); }

private:
    friend class Connection;
    class StopWatcher;
    void begin_stop();
    void take(Fd conn);
    void closed(Connection* c);
    Connection* find(uint64_t serial);

    EventLoop& loop_;
    const ServerContext& ctx_;
    const EventOptions& options_;
    std::unique_ptr<WorkPool> pool_;
    std::unique_ptr<Acceptor> acceptor_;
    std::unique_ptr<StopWatcher> stop_watcher_;
    std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
    // Closed during a turn, destroyed after it: an event for one of them may
    // still be in the same epoll_wait batch.
    std::vector<std::unique_ptr<Connection>> closed_;
    std::function<void(Fd)> hand_off_;
    Delegate delegate_;
    bool stopping_ = false;
    bool draining_ = false;
};

}  // namespace sl
