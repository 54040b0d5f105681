#include "event/server.hpp"

#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"
#include "event/acceptor.hpp"
#include "event/connection.hpp"

namespace sl {

void add_event_options(CLI::App& app, EventOptions& o) {
    add_enum_option(app, "--trigger", o.trigger, Names<Trigger>{{"level", Trigger::level}, {"edge", Trigger::edge}},
                    "epoll's mode: level or edge (edge: read and accept until EAGAIN)");
    app.add_option("--offload", o.offload, "run WORK on this many threads (0: on the loop, stalling everyone)")
        ->capture_default_str()
        ->check(CLI::Range(0, 256));
    app.add_option("--output-limit", o.output_limit, "stop reading a connection with this many bytes unsent")
        ->capture_default_str()
        ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
    app.add_flag("--multi-accept", o.multi_accept,
                 "level-triggered: accept every waiting connection per wakeup, not one (nginx's multi_accept)");
    app.add_flag("--debug-read-once", o.debug_read_once,
                 "teaching hook: with --trigger edge, read at most 64 bytes per event (the rest is never reported)");
}

// The stop pipe is never drained (signals.hpp): watched once, then forgotten.
class EventServer::StopWatcher final : public Watcher {
public:
    explicit StopWatcher(EventServer& server) : server_(server) {}
    void on_events(uint32_t) override { server_.begin_stop(); }

private:
    EventServer& server_;
};

EventServer::EventServer(EventLoop& loop, const ServerContext& ctx, const EventOptions& options)
    : loop_(loop), ctx_(ctx), options_(options), stop_watcher_(std::make_unique<StopWatcher>(*this)) {
    if (options.offload > 0)
        pool_ = std::make_unique<WorkPool>([&loop](std::function<void()> fn) { loop.post(std::move(fn)); },
                                           options.offload);
    if (!loop_.add(stop_fd(), EPOLLIN, stop_watcher_.get())) die("epoll_ctl ADD stop pipe");
    if (stop_requested()) begin_stop();
}

EventServer::~EventServer() {
    pool_.reset();  // joins the threads before the connections they post to go away
}

void EventServer::accept_from(int fd, uint32_t extra, AcceptStats* stats) {
    const bool drain = loop_.trigger() == Trigger::edge || options_.multi_accept;
    acceptor_ = std::make_unique<Acceptor>(loop_, fd, drain, extra, stats, [this](Fd conn) {
        if (hand_off_) return hand_off_(std::move(conn));
        take(std::move(conn));
    });
    acceptor_->accepting(!stopping_);
}

void EventServer::accepting(bool on) {
    if (acceptor_) acceptor_->accepting(on && !stopping_);
}

void EventServer::others_waiting(std::function<bool()> fn) {
    if (acceptor_) acceptor_->others_waiting(std::move(fn));
}

void EventServer::drain_listener(int quiet_ms) {
    if (!acceptor_ || draining_) return;
    draining_ = true;
    SL_TRACE("leaving a closed place: taking what is queued in its socket");
    acceptor_->drain_until_quiet(quiet_ms, [this] { draining_ = false; });
}

// Accepted connections are non-blocking already (accept4's SOCK_NONBLOCK).
void EventServer::take(Fd conn) {
    uint64_t serial = ctx_.counters->connections.fetch_add(1, std::memory_order_relaxed) + 1;
    auto c = std::make_unique<Connection>(*this, std::move(conn), serial);
    Connection* raw = c.get();
    connections_.emplace(serial, std::move(c));
    ctx_.counters->open.store(connections_.size(), std::memory_order_relaxed);
    if (!raw->open()) return closed(raw);
    // Taken after the stop began (a reuseport place that closed, drained
    // by its leaving worker): the stop's rule applies to it too, or a client
    // that keeps asking would keep this worker alive until its SIGKILL.
    if (stopping_) raw->on_stop();
}

void EventServer::closed(Connection* c) {
    auto it = connections_.find(c->serial());
    if (it == connections_.end()) return;
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
    ctx_.counters->open.store(connections_.size(), std::memory_order_relaxed);
    // Destroyed at the end of this turn, when no event of it can come up.
    if (closed_.size() == 1) loop_.defer([this] { closed_.clear(); });
}

Connection* EventServer::find(uint64_t serial) {
    auto it = connections_.find(serial);
    return it == connections_.end() ? nullptr : it->second.get();
}

void EventServer::begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    loop_.remove(stop_fd());
    if (acceptor_) acceptor_->accepting(false);
    SL_TRACE("stopping: {} connections open", connections_.size());
    std::vector<Connection*> open;
    for (auto& [serial, c] : connections_) open.push_back(c.get());
    for (Connection* c : open) c->on_stop();
}

}  // namespace sl
