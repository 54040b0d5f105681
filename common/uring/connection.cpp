#include "uring/connection.hpp"

#include "base/clock.hpp"
#include "base/trace.hpp"
#include "net/net.hpp"
#include "uring/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace sl {
namespace {

// 05's limits and grace (event/connection.cpp).
constexpr size_t kInputLimit = 64 * 1024;
constexpr int64_t kStopGraceMs = 1000;
// oneshot: the buffer each connection's receive request fills. It is pinned
// for as long as the request waits, which for an idle connection is its
// whole life: the cost provided buffers remove.
constexpr size_t kOwnBufferSize = 4096;

}  // namespace

UringConnection::UringConnection(UringServer& server, int fd, bool fixed, uint64_t serial)
    : server_(server), ring_(server.ring_), ctx_(server.ctx_), fd_(fd), fixed_(fixed), serial_(serial),
      view_(server.ctx_, serial), session_(view_), idle_ms_(int64_t{server.ctx_.idle_timeout_s} * 1000) {
    if (!ring_.options().multishot) own_buffer_ = std::make_unique<char[]>(kOwnBufferSize);
}

UringConnection::~UringConnection() {
    if (idle_timer_) server_.timers_.cancel(idle_timer_);
    if (sleep_timer_) server_.timers_.cancel(sleep_timer_);
}

void UringConnection::open() {
    if (fixed_) SL_TRACE("conn {} from (fixed file {})", serial_, fd_);
    else SL_TRACE("conn {} from {}", serial_, peer_name(fd_));
    deadline_ms_ = monotonic_ms() + idle_ms_;
    arm_idle_timer();
    arm_receive();
}

// The request's target (a descriptor, or a slot of the file table) and its user_data.
void UringConnection::prep(io_uring_sqe* sqe, uint8_t op) {
    if (fixed_) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, UringServer::user_data(static_cast<UringServer::Op>(op), serial_));
    ++inflight_;
}

void UringConnection::arm_receive() {
    if (receive_armed_ || closed_) return;
    io_uring_sqe* sqe = ring_.sqe();
    if (ring_.options().multishot) {
        // One request, a completion per arrival, each in a buffer the kernel
        // takes from the ring (IOSQE_BUFFER_SELECT from group kBufferGroup).
        io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = Ring::kBufferGroup;
    } else {
        io_uring_prep_recv(sqe, fd_, own_buffer_.get(), kOwnBufferSize, 0);
    }
    prep(sqe, UringServer::recv);
    receive_armed_ = true;
    cancel_sent_ = false;
}

// Backpressure on a multishot receive: it would go on delivering, so it is
// cancelled, and armed again once the output has drained. A oneshot receive
// is simply not armed again.
void UringConnection::pause_receive() {
    if (ring_.options().multishot) cancel_receive();
}

void UringConnection::cancel_receive() {
    if (!receive_armed_ || cancel_sent_) return;
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_cancel64(sqe, UringServer::user_data(UringServer::recv, serial_), 0);
    io_uring_sqe_set_data64(sqe, UringServer::user_data(UringServer::cancel, serial_));
    ++inflight_;
    cancel_sent_ = true;
}

void UringConnection::received(const io_uring_cqe& cqe) {
    const bool more = cqe.flags & IORING_CQE_F_MORE;  // multishot: the request goes on
    if (!more) {
        --inflight_;
        receive_armed_ = false;
    }
    const char* data = own_buffer_.get();
    unsigned buffer = 0;
    if (cqe.flags & IORING_CQE_F_BUFFER) {
        buffer = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
        data = ring_.buffer(buffer);
    }
    if (cqe.res > 0 && !closed_) {
        size_t n = static_cast<size_t>(cqe.res);
        full_read_ = n == (ring_.options().multishot ? Ring::kBufferSize : kOwnBufferSize);
        if (lingering_) {
            discarded_ += n;
            deadline_ms_ = std::min(linger_until_ms_, monotonic_ms() + kLingerSilenceMs);
        } else {
            in_.append_to().append(data, n);
        }
    }
    if (cqe.flags & IORING_CQE_F_BUFFER) ring_.give_back(buffer);  // copied out: the kernel may fill it again
    if (closed_) return release();
    if (cqe.res == 0) {
        peer_done_ = true;
        if (lingering_) return close("client closed (lingering close)");
    } else if (cqe.res < 0 && cqe.res != -ENOBUFS && cqe.res != -ECANCELED) {
        return close("read failed (connection reset)");
    }
    if (lingering_ && discarded_ > kLingerMaxBytes) return close("lingering close: too much input");
    // ENOBUFS: the buffer ring ran dry, which ended the multishot receive;
    // the buffers came back as their completions were handled: arm it again.
    progress();
}

void UringConnection::sent(const io_uring_cqe& cqe) {
    --inflight_;
    send_in_flight_ = false;
    if (closed_) return release();
    if (cqe.res < 0) return close("write failed (client gone or not reading)");
    sending_.consume(static_cast<size_t>(cqe.res));  // a short send: the rest goes next
    progress();
}

void UringConnection::other_done(const io_uring_cqe&) {
    --inflight_;
    if (closed_) release();
}

// One send in flight at a time, from sending_, which nothing else touches
// until it completes; answers meanwhile go to out_, and follow.
void UringConnection::start_sending() {
    if (send_in_flight_) return;
    if (sending_.empty()) {
        if (out_.empty()) return;
        std::swap(sending_, out_);
    }
    std::string_view bytes = sending_.view();
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_send(sqe, fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    prep(sqe, UringServer::send);
    send_in_flight_ = true;
}

bool UringConnection::reading() const {
    return !closed_ && !peer_done_ && (lingering_ || (in_.size() < kInputLimit &&
                                                      out_.size() + sending_.size() < server_.options_.output_limit));
}

void UringConnection::progress() {
    answer_requests();
    start_sending();
    if (closed_) return;
    if (out_.empty() && sending_.empty() && !executing_ && !lingering_) {
        if (session_.closing()) return closing(server_.stopping_ ? "server stopping" : "closed by the server");
        if (peer_done_) return close("client closed");
    }
    if (reading()) arm_receive();
    else pause_receive();
}

void UringConnection::answer_requests() {
    while (!closed_ && !executing_ && !lingering_ && !session_.closing() &&
           out_.size() < server_.options_.output_limit) {
        Session::Parsed p = session_.parse(in_.view(), out_.append_to());
        if (p.consumed == 0) break;
        in_.consume(p.consumed);
        if (p.command) begin_request(p.what);
    }
}

// One request: SLEEP becomes a timer, WORK may go to the pool, the rest is answered at once.
void UringConnection::begin_request(const Command& c) {
    UringServer* server = &server_;
    uint64_t serial = serial_;
    if (c.verb == Verb::sleep) {
        executing_ = true;
        uint64_t ms = c.number;
        sleep_timer_ = server_.timers_.at(monotonic_ms() + static_cast<int64_t>(ms), [server, serial, ms] {
            if (UringConnection* conn = server->find(serial)) {
                conn->sleep_timer_ = 0;
                conn->finish({fmt::format("SLEPT {}", ms)});
            }
        });
        return;
    }
    if (c.verb == Verb::work && server_.pool_) {
        executing_ = true;
        server_.pool_->submit(c.number, [server, serial](std::string line) {
            if (UringConnection* conn = server->find(serial)) conn->finish({std::move(line)});
        });
        return;
    }
    ctx_.counters->begin_request(monotonic_ms());
    Answer a = execute(c, view_);
    ctx_.counters->end_request();
    answered(a);
}

void UringConnection::answered(const Answer& a) {
    session_.answer(a, out_.append_to());
    int64_t now = monotonic_ms();
    ctx_.counters->count_answer(now);
    deadline_ms_ = now + idle_ms_;
    SL_TRACE("conn {}: {} -> {}", serial_, session_.last_request(), session_.last_answer());
}

void UringConnection::finish(const Answer& answer) {
    if (closed_) return;
    executing_ = false;
    answered(answer);
    progress();
}

void UringConnection::on_stop() {
    if (executing_ || lingering_ || closed_) return;
    deadline_ms_ = std::min(deadline_ms_, monotonic_ms() + kStopGraceMs);
    if (idle_timer_) server_.timers_.cancel(idle_timer_), idle_timer_ = 0;
    arm_idle_timer();
}

// 05's lazily moved idle timer (event/connection.cpp), found again by serial.
void UringConnection::arm_idle_timer() {
    UringServer* server = &server_;
    uint64_t serial = serial_;
    idle_timer_ = server_.timers_.at(deadline_ms_, [server, serial] {
        UringConnection* c = server->find(serial);
        if (c == nullptr || c->closed_) return;
        c->idle_timer_ = 0;
        int64_t now = monotonic_ms();
        if (c->lingering_) {
            if (now >= c->deadline_ms_) return c->close("lingering close: the client sent nothing more in time");
            return c->arm_idle_timer();
        }
        if (c->executing_) c->deadline_ms_ = std::max(c->deadline_ms_, now + c->idle_ms_);
        if (c->executing_ || now < c->deadline_ms_) return c->arm_idle_timer();
        bool unsent = !c->out_.empty() || !c->sending_.empty();
        if (server->stopping_ && unsent && !c->grace_over_) {
            c->grace_over_ = true;
            c->deadline_ms_ = now + c->idle_ms_;
            return c->arm_idle_timer();
        }
        if (server->stopping_) return c->close("server stopping (no request within the grace)");
        c->out_.append_to() += c->session_.idle_goodbye();
        c->start_sending();  // best effort: the close waits for it, not for the client
        c->close("idle timeout");
    });
}

// 05's lingering close (event/connection.cpp), with the ring's shutdown request.
void UringConnection::closing(const char* why) {
    if (peer_done_ || (in_.empty() && !full_read_ && !session_.ended_on_error())) return close(why);
    SL_TRACE("conn {}: {}; lingering close (the client may still be sending)", serial_, why);
    lingering_ = true;
    in_.clear();
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_shutdown(sqe, fd_, SHUT_WR);
    prep(sqe, UringServer::shutdown);
    int64_t now = monotonic_ms();
    linger_until_ms_ = now + kLingerTotalMs;
    deadline_ms_ = std::min(linger_until_ms_, now + kLingerSilenceMs);
    arm_receive();
}

void UringConnection::close(const char* why) {
    if (closed_) return;
    closed_ = true;
    SL_TRACE("conn {} closed: {}", serial_, why);
    ctx_.counters->open.fetch_sub(1, std::memory_order_relaxed);
    cancel_receive();  // the socket stays open while a receive waits on it: cancel it first
    release();
}

// Once closed and every request has completed: the descriptor goes.
void UringConnection::release() {
    if (!closed_ || inflight_ > 0 || fd_ < 0) return;
    if (fixed_) {
        io_uring_sqe* sqe = ring_.sqe();
        io_uring_prep_close_direct(sqe, static_cast<unsigned>(fd_));
        io_uring_sqe_set_data64(sqe, UringServer::user_data(UringServer::close, 0));  // nobody waits for it
    } else {
        ::close(fd_);
    }
    fd_ = -1;
    server_.forget(this);
}

}  // namespace sl
