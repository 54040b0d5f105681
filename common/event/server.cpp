#include "event/server.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"
#include "net/net.hpp"
#include "protocol/session.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace sl {
namespace {

// A request may be 8 KiB (a text line) or 16 KiB (an HTTP head); a client
// that pipelines more than this ahead of the answers waits for them.
constexpr size_t kInputLimit = 64 * 1024;
// A connection waiting for a request when a stop comes gets this long for
// it to arrive (the same rule as the blocking models).
constexpr int64_t kStopGraceMs = 1000;
// Out of descriptors: stop watching the listener this long (its clients
// wait in the backlog), instead of being told again at once, forever.
constexpr int64_t kOutOfDescriptorsPauseMs = 100;
// EPOLLEXCLUSIVE: re-add the listening socket after this many accepts (nginx's figure).
constexpr uint64_t kReorderEvery = 16;

}  // namespace

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

// ---- one connection --------------------------------------------------------------------------

class EventServer::Connection final : public Watcher {
public:
    Connection(EventServer& server, Fd fd, uint64_t serial)
        : server_(server), loop_(server.loop_), ctx_(server.ctx_), fd_(std::move(fd)), serial_(serial),
          view_(server.ctx_, serial), session_(view_), idle_ms_(int64_t{server.ctx_.idle_timeout_s} * 1000) {}

    bool start() {
        SL_TRACE("conn {} from {}", serial_, peer_name(fd_.get()));
        if (!loop_.watch(fd_.get(), EPOLLIN, this)) {
            log("conn {}: epoll_ctl: {} (closing it)", serial_, std::strerror(errno));
            return false;
        }
        watching_ = EPOLLIN;
        deadline_ms_ = monotonic_ms() + idle_ms_;
        arm_idle_timer();
        return true;
    }

    ~Connection() override {
        if (idle_timer_) loop_.cancel(idle_timer_);
        if (sleep_timer_) loop_.cancel(sleep_timer_);
    }

    void on_events(uint32_t events) override {
        if (closed_) return;  // closed earlier in this turn
        // An error or a hang-up is reported whatever we watch, level-triggered:
        // if we are not reading, no read() will see it, so close now.
        if ((events & (EPOLLHUP | EPOLLERR)) && !reading()) return close("connection reset");
        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_some();
        if (!closed_ && (events & EPOLLOUT)) write_some();
        if (!closed_) progress();
    }

    // A stop: the next answer is this connection's last (Session::answer
    // sees the view stopping; HTTP: `Connection: close`). One whose request
    // is executing closes after that answer; one waiting for a request (just
    // accepted, half a request, or idle between two) gets a short grace for
    // it: closing an idle keep-alive connection at once would race the
    // request its client may be sending right now.
    void on_stop() {
        if (executing_) return;
        deadline_ms_ = std::min(deadline_ms_, monotonic_ms() + kStopGraceMs);
        if (idle_timer_) loop_.cancel(idle_timer_), idle_timer_ = 0;
        arm_idle_timer();
    }

    // The answer to the request being executed (a SLEEP's timer, an offloaded WORK).
    void finish(const Answer& answer) {
        if (closed_) return;
        executing_ = false;
        answered(answer);
        progress();
    }

    uint64_t serial() const { return serial_; }

private:
    // Reads what has arrived, within the input limit. Level-triggered, one
    // read per event is enough: epoll reports the socket again while data
    // remains. Edge-triggered, the rule is to read until EAGAIN: epoll
    // reports a change once, and data left behind would sit there unreported.
    void read_some() {
        char buf[16384];
        const bool edge = loop_.trigger() == Trigger::edge;
        const size_t chunk = server_.options_.debug_read_once ? 64 : sizeof buf;
        while (reading()) {
            ssize_t n = ::read(fd_.get(), buf, chunk);
            if (n > 0) {
                in_.append(buf, static_cast<size_t>(n));
                if (!edge || server_.options_.debug_read_once) return;
                continue;
            }
            if (n == 0) {
                peer_done_ = true;  // the client closed its side: answer what it sent, then close
                return;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            return close("read failed (connection reset)");
        }
    }

    // Sends what the kernel takes now; the rest waits for EPOLLOUT.
    void write_some() {
        while (!out_.empty()) {
            ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                out_.erase(0, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            return close("write failed (client gone or not reading)");
        }
    }

    // Not while a request executes, not while answers pile up, not past the
    // input limit, not after the client closed its side.
    bool reading() const { return !closed_ && !peer_done_ && in_.size() < kInputLimit && out_.size() < limit(); }
    size_t limit() const { return server_.options_.output_limit; }

    // Answers requests while it can, sends, decides whether to close, and
    // tells epoll what this connection waits for now.
    void progress() {
        bool was_reading = reading();
        while (!closed_ && !executing_ && !session_.closing() && out_.size() < limit()) {
            Session::Parsed p = session_.parse(in_, out_);
            if (p.consumed == 0) break;
            in_.erase(0, p.consumed);
            if (p.command) start(p.what);
        }
        write_some();
        if (closed_) return;
        if (out_.empty() && !executing_) {
            if (session_.closing()) return close(server_.stopping_ ? "server stopping" : "closed by the server");
            if (peer_done_) return close("client closed");
        }
        // Edge-triggered, a socket we stopped reading is not reported again
        // when we start again: read what is already there ourselves.
        if (!was_reading && reading() && loop_.trigger() == Trigger::edge) {
            read_some();
            if (!closed_) return progress();
        }
        uint32_t want = (reading() ? EPOLLIN : 0u) | (out_.empty() ? 0u : EPOLLOUT);
        if (want != watching_) {
            if (!loop_.watch(fd_.get(), want, this)) return close("epoll_ctl failed");
            watching_ = want;
        }
    }

    // One request: SLEEP becomes a timer, WORK may go to the pool, the rest
    // is answered at once, on the loop.
    void start(const Command& c) {
        if (c.verb == Verb::sleep) {
            executing_ = true;
            uint64_t ms = c.number;
            sleep_timer_ = loop_.at(monotonic_ms() + static_cast<int64_t>(ms), [this, ms] {
                sleep_timer_ = 0;
                finish({fmt::format("SLEPT {}", ms)});
            });
            return;
        }
        if (c.verb == Verb::work && server_.pool_) {
            executing_ = true;
            uint64_t serial = serial_;
            EventServer* server = &server_;
            server_.pool_->submit(c.number, [server, serial](std::string line) {
                if (Connection* conn = server->find(serial)) conn->finish({std::move(line)});
            });
            return;
        }
        // On the loop: for WORK, every other client waits meanwhile. The
        // master's --request-timeout (06) sees a loop stuck this way.
        // The loop's state on the status page: 'W' while it executes, '_' while it waits for events.
        ctx_.counters->busy_since_ms.store(monotonic_ms(), std::memory_order_relaxed);
        ctx_.counters->set_activity(Activity::working);
        Answer a = execute(c, view_);
        ctx_.counters->set_activity(Activity::waiting);
        ctx_.counters->busy_since_ms.store(0, std::memory_order_relaxed);
        answered(a);
    }

    void answered(const Answer& a) {
        session_.answer(a, out_);
        int64_t now = monotonic_ms();
        ctx_.counters->requests.fetch_add(1, std::memory_order_relaxed);
        ctx_.counters->last_active_ms.store(now, std::memory_order_relaxed);
        deadline_ms_ = now + idle_ms_;  // the idle timer sees the new deadline when it fires
        SL_TRACE("conn {}: {} -> {}", serial_, session_.last_request(), session_.last_answer());
    }

    // One timer per connection, moved lazily: each answer only moves
    // deadline_ms_, and the timer, when it fires early, sets itself again for
    // the new deadline. A busy connection costs no heap operation per request.
    void arm_idle_timer() {
        idle_timer_ = loop_.at(deadline_ms_, [this] {
            idle_timer_ = 0;
            if (closed_) return;
            // A request being executed (a SLEEP timer, WORK on a thread) is not
            // idleness: look again one idle period from now (answered() moves
            // the deadline anyway). Not at the old deadline, which has passed:
            // a timer set for the past would fire again at once, forever.
            if (executing_) deadline_ms_ = std::max(deadline_ms_, monotonic_ms() + idle_ms_);
            if (executing_ || monotonic_ms() < deadline_ms_) return arm_idle_timer();
            if (server_.stopping_ && !out_.empty() && !grace_over_) {
                // Its last answer is still going out to a slow reader: give it
                // the idle timeout to take it (the blocking models' SO_SNDTIMEO).
                grace_over_ = true;
                deadline_ms_ = monotonic_ms() + idle_ms_;
                return arm_idle_timer();
            }
            if (server_.stopping_) return close("server stopping (no request within the grace)");
            out_ += session_.idle_goodbye();
            write_some();  // best effort: a client that does not read gets no goodbye
            close("idle timeout");
        });
    }

    void close(const char* why) {
        if (closed_) return;
        closed_ = true;
        SL_TRACE("conn {} closed: {}", serial_, why);
        // No EPOLL_CTL_DEL: closing the last descriptor of a socket takes it
        // out of every epoll set (epoll(7)), and this is the only one (no
        // dup, no fork after accept). One system call less per connection;
        // nginx skips it the same way.
        fd_.reset();
        server_.closed(this);
    }

    EventServer& server_;
    EventLoop& loop_;
    const ServerContext& ctx_;
    Fd fd_;
    uint64_t serial_;
    ConnectionView view_;
    Session session_;
    int64_t idle_ms_;
    std::string in_, out_;
    uint32_t watching_ = 0;
    int64_t deadline_ms_ = 0;
    EventLoop::TimerId idle_timer_ = 0;
    EventLoop::TimerId sleep_timer_ = 0;
    bool executing_ = false;
    bool grace_over_ = false;  // stopping: the grace is over, only the last answer's sending is waited for
    bool peer_done_ = false;
    bool closed_ = false;
};

// ---- the listening socket, and the stop --------------------------------------------------------

class EventServer::Listener final : public Watcher {
public:
    Listener(EventServer& server, int fd, uint32_t extra, AcceptStats* stats)
        : server_(server), fd_(fd), extra_(extra), stats_(stats) {}
    void on_events(uint32_t) override { server_.accept_ready(); }
    bool first() const override { return true; }  // accept before serving, as nginx does

    EventServer& server_;
    int fd_;
    uint32_t extra_;
    AcceptStats* stats_;
    bool watched_ = false;
    EventLoop::TimerId paused_ = 0;  // out of descriptors: watched again after a pause
    uint64_t accepted_ = 0;
};

class EventServer::StopWatcher final : public Watcher {
public:
    explicit StopWatcher(EventServer& server) : server_(server) {}
    void on_events(uint32_t) override { server_.begin_stop(); }

private:
    EventServer& server_;
};

// ---- the server --------------------------------------------------------------------------------

EventServer::EventServer(EventLoop& loop, const ServerContext& ctx, const EventOptions& options)
    : loop_(loop), ctx_(ctx), options_(options), stop_watcher_(std::make_unique<StopWatcher>(*this)) {
    if (options.offload > 0) pool_ = std::make_unique<WorkPool>(loop, options.offload);
    // The stop pipe is never drained (signals.hpp): watched once, then forgotten.
    if (!loop_.watch(stop_fd(), EPOLLIN, stop_watcher_.get())) die("epoll_ctl stop pipe");
    if (stop_requested()) begin_stop();
}

EventServer::~EventServer() {
    if (listener_ && listener_->paused_) loop_.cancel(listener_->paused_);
    pool_.reset();  // joins the threads before the connections they post to go away
}

void EventServer::accept_from(int fd, uint32_t extra, AcceptStats* stats) {
    listener_ = std::make_unique<Listener>(*this, fd, extra, stats);
    accepting(!stopping_);
}

void EventServer::accepting(bool on) {
    Listener* l = listener_.get();
    if (l == nullptr || on == l->watched_ || l->paused_) return;
    if (on && !loop_.watch(l->fd_, EPOLLIN | l->extra_, l)) die("epoll_ctl listening socket");
    if (!on) loop_.unwatch(l->fd_);
    l->watched_ = on;
}

void EventServer::accept_ready() {
    Listener& l = *listener_;
    const bool edge = loop_.trigger() == Trigger::edge;
    int taken = 0;
    // Edge-triggered: until EAGAIN, or the connections already queued would
    // never be reported again. Level-triggered: one, then back to the loop,
    // which reports the socket again while connections wait (nginx's
    // multi_accept off). Taking a batch looks cheaper, but in 06 a worker
    // that takes 16 at once keeps them all behind its slowest request, while
    // idle workers could have taken some: the herd scenario measures it.
    const bool drain = edge || options_.multi_accept;
    while (!stopping_ && (drain || taken < 1)) {
        Accepted a = accept_one(l.fd_, SOCK_NONBLOCK);
        if (a.status == Accepted::out_of_descriptors) {
            accepting(false);
            l.paused_ = loop_.at(monotonic_ms() + kOutOfDescriptorsPauseMs, [this] {
                listener_->paused_ = 0;
                accepting(!stopping_);
            });
            break;
        }
        if (a.status == Accepted::empty) break;
        if (a.status == Accepted::nothing) continue;  // an aborted connection: the next may be there
        ++taken;
        take(std::move(a.conn), /*nonblocking=*/true);
    }
    // EPOLLEXCLUSIVE wakes the first worker, in the order they added the
    // socket, that is waiting in epoll_wait: worker 0 whenever it is idle.
    // Like nginx (ngx_reorder_accept_events), a worker that has accepted 16
    // more connections removes and re-adds the socket, going to the back of
    // the socket's wait queue, so that the others get their turn first.
    if ((l.extra_ & EPOLLEXCLUSIVE) && taken > 0 && l.watched_ &&
        l.accepted_ / kReorderEvery != (l.accepted_ + taken) / kReorderEvery &&
        (!others_waiting_ || others_waiting_())) {
        loop_.unwatch(l.fd_);
        if (!loop_.watch(l.fd_, EPOLLIN | l.extra_, &l)) die("epoll_ctl listening socket");
    }
    l.accepted_ += static_cast<uint64_t>(taken);
    if (l.stats_) {
        l.stats_->wakeups.fetch_add(1, std::memory_order_relaxed);
        if (taken == 0) l.stats_->spurious.fetch_add(1, std::memory_order_relaxed);  // another worker won
    }
}

void EventServer::adopt(Fd conn) {
    take(std::move(conn), /*nonblocking=*/false);
}

void EventServer::take(Fd conn, bool nonblocking) {
    uint64_t serial = ctx_.counters->connections.fetch_add(1, std::memory_order_relaxed) + 1;
    int flags = nonblocking ? 0 : ::fcntl(conn.get(), F_GETFL);
    if (!nonblocking && (flags < 0 || ::fcntl(conn.get(), F_SETFL, flags | O_NONBLOCK) < 0)) {
        log("conn {}: fcntl O_NONBLOCK: {} (closing it)", serial, std::strerror(errno));
        return;
    }
    auto c = std::make_unique<Connection>(*this, std::move(conn), serial);
    Connection* raw = c.get();
    connections_.emplace(serial, std::move(c));
    ctx_.counters->open.store(connections_.size(), std::memory_order_relaxed);
    if (!raw->start()) return closed(raw);
    // Adopted after the stop began (a reuseport place that closed, drained
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

EventServer::Connection* EventServer::find(uint64_t serial) {
    auto it = connections_.find(serial);
    return it == connections_.end() ? nullptr : it->second.get();
}

void EventServer::begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    loop_.unwatch(stop_fd());
    accepting(false);
    SL_TRACE("stopping: {} connections open", connections_.size());
    std::vector<Connection*> open;
    for (auto& [serial, c] : connections_) open.push_back(c.get());
    for (Connection* c : open) c->on_stop();
}

}  // namespace sl
