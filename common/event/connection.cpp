#include "event/connection.hpp"

#include "base/clock.hpp"
#include "base/trace.hpp"
#include "event/server.hpp"
#include "net/net.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sl {
namespace {

// A request may be 8 KiB (a text line) or 16 KiB (an HTTP head); a client
// that pipelines more than this ahead of the answers waits for them.
constexpr size_t kInputLimit = 64 * 1024;
// A connection waiting for a request when a stop comes gets this long for
// it to arrive (the same rule as the blocking models).
constexpr int64_t kStopGraceMs = 1000;
// Edge-triggered, the reads one connection may make in one turn before the
// others get theirs (64 KiB, the input limit). libuv reads up to 32 times
// per callback, redis once per event. Level-triggered: one; the loop
// reports the socket again in the next turn if more is there.
constexpr int kEdgeReadsPerTurn = 4;

}  // namespace

void Buffer::consume(size_t n) {
    start_ += n;
    if (start_ == bytes_.size()) clear();
}

std::string& Buffer::append_to() {
    if (start_ > 0 && start_ >= bytes_.size() / 2) {
        bytes_.erase(0, start_);
        start_ = 0;
    }
    return bytes_;
}

Connection::Connection(EventServer& server, Fd fd, uint64_t serial)
    : server_(server), loop_(server.loop_), ctx_(server.ctx_), fd_(std::move(fd)), serial_(serial),
      view_(server.ctx_, serial), session_(view_), idle_ms_(int64_t{server.ctx_.idle_timeout_s} * 1000) {}

Connection::~Connection() {
    if (idle_timer_) loop_.cancel(idle_timer_);
    if (sleep_timer_) loop_.cancel(sleep_timer_);
}

bool Connection::open() {
    SL_TRACE("conn {} from {}", serial_, peer_name(fd_.get()));
    if (!loop_.add(fd_.get(), EPOLLIN, this)) {
        log("conn {}: epoll_ctl: {} (closing it)", serial_, std::strerror(errno));
        return false;
    }
    watching_ = EPOLLIN;
    deadline_ms_ = monotonic_ms() + idle_ms_;
    arm_idle_timer();
    return true;
}

void Connection::on_events(uint32_t events) {
    if (closed_) return;  // closed earlier in this turn
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) may_read_ = true;
    if (lingering_) return discard_input();
    // An error or a hang-up is reported whatever we watch, level-triggered:
    // if we are not reading, no read() will see it, so close now.
    if ((events & (EPOLLHUP | EPOLLERR)) && !reading()) return close("connection reset");
    read_some();
    if (!closed_ && (events & EPOLLOUT)) write_some();
    if (!closed_) progress();
}

void Connection::serve_again() {
    coming_back_ = false;
    if (closed_) return;
    if (lingering_) return discard_input();
    read_some();
    if (!closed_) progress();
}

// A stop: the next answer is this connection's last (Session::answer sees
// the view stopping; HTTP: `Connection: close`). One whose request is
// executing closes after that answer; one waiting for a request (just
// accepted, half a request, or idle between two) gets a short grace for
// it: closing an idle keep-alive connection at once would race the
// request its client may be sending right now.
void Connection::on_stop() {
    if (executing_ || lingering_) return;
    deadline_ms_ = std::min(deadline_ms_, monotonic_ms() + kStopGraceMs);
    if (idle_timer_) loop_.cancel(idle_timer_), idle_timer_ = 0;
    arm_idle_timer();
}

void Connection::finish(const Answer& answer) {
    if (closed_) return;
    executing_ = false;
    answered(answer);
    progress();
}

// Reads while the input is wanted (reading()) and may be there, within
// this turn's budget. Level-triggered, one read: epoll reports the socket
// again while data remains. Edge-triggered, epoll reports a change once:
// may_read_ remembers that the socket may hold more until a read sees
// EAGAIN, and progress() comes back for it at the end of the turn instead
// of reading on now. A client that sends as fast as we read would
// otherwise keep the turn, and every other client waiting, for good.
void Connection::read_some() {
    char buf[16384];
    const bool edge = loop_.trigger() == Trigger::edge;
    const bool once = server_.options_.debug_read_once;  // the teaching hook: 64 bytes, then nothing
    const size_t chunk = once ? 64 : sizeof buf;
    for (int budget = edge && !once ? kEdgeReadsPerTurn : 1; budget > 0 && may_read_ && reading(); --budget) {
        ssize_t n = ::read(fd_.get(), buf, chunk);
        if (n > 0) {
            in_.append_to().append(buf, static_cast<size_t>(n));
            // Level-triggered, a short read has most likely emptied the socket
            // (and if not, epoll says so again). A full one probably has not:
            // closing() needs to know.
            if ((!edge && static_cast<size_t>(n) < chunk) || once) may_read_ = false;
            continue;
        }
        if (n == 0) {
            peer_done_ = true;  // the client closed its side: answer what it sent, then close
            may_read_ = false;
            return;
        }
        if (errno == EINTR) {
            ++budget;
            continue;
        }
        may_read_ = false;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        return close("read failed (connection reset)");
    }
}

// Sends what the kernel takes now; the rest waits for EPOLLOUT.
void Connection::write_some() {
    while (!out_.empty()) {
        std::string_view pending = out_.view();
        ssize_t n = ::send(fd_.get(), pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            out_.consume(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        return close("write failed (client gone or not reading)");
    }
}

// Reading is wanted unless answers pile up past --output-limit, unanswered
// input fills the input limit, or the client closed its side. The first two
// are backpressure: the kernel's buffers fill, and the client's sends wait.
// A request being executed (a SLEEP, an offloaded WORK) does not stop it:
// what the client pipelines meanwhile waits in the input buffer, within its
// limit, and a client that vanishes is seen at once.
bool Connection::reading() const {
    return !closed_ && !peer_done_ && in_.size() < kInputLimit && out_.size() < server_.options_.output_limit;
}

// Answers requests while it can, sends, decides whether to close, and
// tells epoll what this connection waits for now.
void Connection::progress() {
    answer_requests();
    write_some();
    if (closed_) return;
    if (out_.empty() && !executing_) {
        if (session_.closing()) return closing(server_.stopping_ ? "server stopping" : "closed by the server");
        if (peer_done_) return close("client closed");
    }
    if (may_read_ && reading() && loop_.trigger() == Trigger::edge) come_back();
    watch_what_is_needed();
}

void Connection::answer_requests() {
    while (!closed_ && !executing_ && !session_.closing() && out_.size() < server_.options_.output_limit) {
        Session::Parsed p = session_.parse(in_.view(), out_.append_to());
        if (p.consumed == 0) break;
        in_.consume(p.consumed);
        if (p.command) begin_request(p.what);
    }
}

void Connection::watch_what_is_needed() {
    uint32_t want = lingering_ || reading() ? EPOLLIN : 0u;
    if (!out_.empty()) want |= EPOLLOUT;
    if (want == watching_) return;
    if (!loop_.modify(fd_.get(), want, this)) return close("epoll_ctl failed");
    watching_ = want;
}

// At the end of this turn, after every other ready connection had its
// turn (EventLoop::defer); found again by serial, since it may be closed
// and gone by then.
void Connection::come_back() {
    if (coming_back_) return;
    coming_back_ = true;
    EventServer* server = &server_;
    uint64_t serial = serial_;
    loop_.defer([server, serial] {
        if (Connection* c = server->find(serial)) c->serve_again();
    });
}

// One request: someone else's to answer (a delegate: 09's backends, 07's
// shards), else SLEEP becomes a timer, WORK may go to the pool, and the rest
// is answered at once, on the loop.
void Connection::begin_request(const Command& c) {
    if (server_.delegate_) {
        EventServer* server = &server_;
        uint64_t serial = serial_;
        auto done = [server, serial](Answer answer) {
            if (Connection* conn = server->find(serial)) conn->finish(answer);
        };
        if (server_.delegate_(c, session_.framing(), done)) {  // `done` comes later (server.hpp)
            executing_ = true;
            return;
        }
    }
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
        EventServer* server = &server_;
        uint64_t serial = serial_;
        server_.pool_->submit(c.number, [server, serial](std::string line) {
            if (Connection* conn = server->find(serial)) conn->finish({std::move(line)});
        });
        return;
    }
    // On the loop: for WORK, every other client waits meanwhile. The
    // master's --request-timeout (06) sees a loop stuck this way.
    // The loop's state on the status page: 'W' while it executes, '_' while it waits for events.
    ctx_.counters->begin_request(monotonic_ms());
    Answer a = execute(c, view_);
    ctx_.counters->end_request();
    answered(a);
}

void Connection::answered(const Answer& a) {
    session_.answer(a, out_.append_to());
    int64_t now = monotonic_ms();
    ctx_.counters->count_answer(now);
    deadline_ms_ = now + idle_ms_;  // the idle timer sees the new deadline when it fires
    SL_TRACE("conn {}: {} -> {}", serial_, session_.last_request(), session_.last_answer());
}

// One timer per connection, moved lazily: each answer only moves
// deadline_ms_, and the timer, when it fires early, sets itself again for
// the new deadline. A busy connection costs no heap operation per request.
void Connection::arm_idle_timer() {
    idle_timer_ = loop_.at(deadline_ms_, [this] {
        idle_timer_ = 0;
        if (closed_) return;
        if (lingering_) {
            if (monotonic_ms() >= deadline_ms_) return close("lingering close: the client sent nothing more in time");
            return arm_idle_timer();
        }
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
        out_.append_to() += session_.idle_goodbye();
        write_some();  // best effort: a client that does not read gets no goodbye
        close("idle timeout");
    });
}

// The server ends the connection, every answer sent. If the client may
// still be sending (bytes behind the last request, a read that filled the
// buffer, a malformed request whose rest we never read, such as a body
// after a 413), close() now would answer its next bytes with a reset, and
// a reset can make the client's TCP throw away our last answer before it
// was read (RFC 9112, section 9.6). So we linger: shut down our side (the
// client reads the answers and then end of file), read and drop what still
// comes, and close once the client closes too, or after at most
// kLingerSilenceMs without a byte, kLingerTotalMs or kLingerMaxBytes
// (net.hpp). nginx's lingering_close, Apache's ap_lingering_close.
void Connection::closing(const char* why) {
    if (peer_done_ || (in_.empty() && !may_read_ && !session_.ended_on_error())) return close(why);
    SL_TRACE("conn {}: {}; lingering close (the client may still be sending)", serial_, why);
    lingering_ = true;
    ::shutdown(fd_.get(), SHUT_WR);  // our FIN: a failure only means the peer is gone, which the reads will say
    in_.clear();
    int64_t now = monotonic_ms();
    linger_until_ms_ = now + kLingerTotalMs;
    deadline_ms_ = std::min(linger_until_ms_, now + kLingerSilenceMs);
    may_read_ = true;
    discard_input();
}

void Connection::discard_input() {
    char buf[16384];
    for (int budget = kEdgeReadsPerTurn; budget > 0 && may_read_; --budget) {
        ssize_t n = ::read(fd_.get(), buf, sizeof buf);
        if (n > 0) {
            discarded_ += static_cast<size_t>(n);
            if (discarded_ > kLingerMaxBytes) return close("lingering close: too much input");
            deadline_ms_ = std::min(linger_until_ms_, monotonic_ms() + kLingerSilenceMs);
            continue;
        }
        if (n == 0) return close("client closed (lingering close)");
        if (errno == EINTR) {
            ++budget;
            continue;
        }
        may_read_ = false;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return close("connection reset (lingering close)");
    }
    if (may_read_ && loop_.trigger() == Trigger::edge) come_back();
    watch_what_is_needed();
}

void Connection::close(const char* why) {
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

}  // namespace sl
