#include "event/acceptor.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/trace.hpp"
#include "net/net.hpp"

#include <sys/socket.h>

namespace sl {
namespace {

// Out of descriptors: stop watching the listener this long (its clients
// wait in the backlog), instead of being told again at once, forever.
constexpr int64_t kOutOfDescriptorsPauseMs = 100;
// EPOLLEXCLUSIVE: re-add the listening socket after this many accepts (nginx's figure).
constexpr uint64_t kReorderEvery = 16;

}  // namespace

Acceptor::Acceptor(EventLoop& loop, int fd, bool drain, uint32_t extra, AcceptStats* stats,
                   std::function<void(Fd)> take)
    : loop_(loop), fd_(fd), drain_(drain), extra_(extra), stats_(stats), take_(std::move(take)) {}

Acceptor::~Acceptor() {
    if (paused_) loop_.cancel(paused_);
    if (quiet_timer_) loop_.cancel(quiet_timer_);
}

void Acceptor::accepting(bool on) {
    on_ = on;
    update();
}

// Watched while wanted and not paused.
void Acceptor::update() {
    bool watch = on_ && !paused_;
    if (watch == watched_) return;
    // The socket is shared with other processes (and, forked, with their
    // epoll sets): remove it explicitly, closing it would not.
    if (watch && !loop_.add(fd_, EPOLLIN | extra_, this)) die("epoll_ctl ADD listening socket");
    if (!watch) loop_.remove(fd_);
    watched_ = watch;
}

void Acceptor::on_events(uint32_t) {
    int taken = 0;
    // Edge-triggered: until EAGAIN, or the connections already queued would
    // never be reported again. Level-triggered: one, then back to the loop,
    // which reports the socket again while connections wait (nginx's
    // multi_accept off). Taking a batch looks cheaper, but in 06 a worker
    // that takes 16 at once keeps them all behind its slowest request, while
    // idle workers could have taken some: the herd scenario measures it.
    while (on_ && (drain_ || taken < 1)) {
        Accepted a = accept_one(fd_, SOCK_NONBLOCK);
        if (a.status == Accepted::out_of_descriptors) {
            pause_for_descriptors();
            break;
        }
        if (a.status == Accepted::empty) break;
        if (a.status == Accepted::nothing) continue;  // an aborted connection: the next may be there
        ++taken;
        take_(std::move(a.conn));
    }
    take_turns(taken);
    if (stats_) {
        stats_->wakeups.fetch_add(1, std::memory_order_relaxed);
        if (taken == 0) stats_->spurious.fetch_add(1, std::memory_order_relaxed);  // another worker won
    }
    if (taken > 0 && quiet_timer_) {  // draining: the quiet period starts again
        loop_.cancel(quiet_timer_);
        drain_until_quiet(quiet_ms_, std::move(drained_));
    }
}

// Draining: the quiet period is over, unless the socket is not empty. A
// turn that ran long (a WORK on the loop) may have kept the loop from
// seeing connections that came meanwhile: look before leaving.
void Acceptor::quiet_period_over() {
    quiet_timer_ = 0;
    Accepted a;
    int taken = 0;
    while ((a = accept_one(fd_, SOCK_NONBLOCK)).status != Accepted::empty) {
        if (a.status == Accepted::out_of_descriptors) break;
        if (a.status == Accepted::nothing) continue;
        ++taken;
        take_(std::move(a.conn));
    }
    if (taken > 0 || a.status == Accepted::out_of_descriptors) return drain_until_quiet(quiet_ms_, std::move(drained_));
    accepting(false);
    SL_TRACE("the closed place's socket stayed quiet {} ms: drained", quiet_ms_);
    if (drained_) std::exchange(drained_, nullptr)();
}

void Acceptor::pause_for_descriptors() {
    paused_ = loop_.at(monotonic_ms() + kOutOfDescriptorsPauseMs, [this] {
        paused_ = 0;
        update();
    });
    update();
}

// EPOLLEXCLUSIVE wakes the first worker, in the order they added the
// socket, that is waiting in epoll_wait: worker 0 whenever it is idle.
// Like nginx (ngx_reorder_accept_events), a worker that has accepted 16
// more connections removes and re-adds the socket, going to the back of
// the socket's wait queue, so that the others get their turn first.
void Acceptor::take_turns(int taken) {
    uint64_t before = accepted_;
    accepted_ += static_cast<uint64_t>(taken);
    if (!(extra_ & EPOLLEXCLUSIVE) || taken == 0 || !watched_) return;
    if (before / kReorderEvery == accepted_ / kReorderEvery) return;
    if (others_waiting_ && !others_waiting_()) return;
    loop_.remove(fd_);
    if (!loop_.add(fd_, EPOLLIN | extra_, this)) die("epoll_ctl ADD listening socket");
}

void Acceptor::drain_until_quiet(int quiet_ms, std::function<void()> done) {
    quiet_ms_ = quiet_ms;
    drained_ = std::move(done);
    accepting(true);
    quiet_timer_ = loop_.at(monotonic_ms() + quiet_ms, [this] { quiet_period_over(); });
}

}  // namespace sl
