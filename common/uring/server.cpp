#include "uring/server.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"
#include "uring/connection.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace sl {
namespace {

// Out of descriptors (or fixed file slots): accept again after this pause,
// as 05 does, instead of failing at once, forever.
constexpr int64_t kOutOfDescriptorsPauseMs = 100;

}  // namespace

void add_uring_server_options(CLI::App& app, UringServerOptions& o) {
    app.add_option("--offload", o.offload, "run WORK on this many threads (0: on the loop, stalling everyone)")
        ->capture_default_str()
        ->check(CLI::Range(0, 256));
    app.add_option("--output-limit", o.output_limit, "stop receiving on a connection with this many bytes unsent")
        ->capture_default_str()
        ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
}

UringServer::UringServer(Ring& ring, TimerHeap& timers, const ServerContext& ctx, const UringServerOptions& options,
                         int listen_fd)
    : ring_(ring), timers_(timers), ctx_(ctx), options_(options), listen_fd_(listen_fd) {
    wakeup_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (wakeup_fd_ < 0) die("eventfd");
    if (options.offload > 0)
        pool_ = std::make_unique<WorkPool>([this](std::function<void()> fn) { post(std::move(fn)); }, options.offload);
    arm_wakeup();
    arm_stop_watch();
    if (stop_requested()) begin_stop();
    else arm_accept();
}

UringServer::~UringServer() {
    pool_.reset();  // joins the threads before the connections they post to go away
    ::close(wakeup_fd_);
}

int UringServer::wait_ms() const {
    int64_t next = timers_.next_deadline();
    if (next < 0) return -1;
    return static_cast<int>(std::max<int64_t>(0, next - monotonic_ms()));
}

// ---- accepting ---------------------------------------------------------------------------

void UringServer::arm_accept() {
    io_uring_sqe* sqe = ring_.sqe();
    if (!ring_.options().multishot) {
        io_uring_prep_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    } else if (ring_.fixed_slots() > 0) {
        // Straight into a free slot of the ring's file table (IORING_FILE_INDEX_ALLOC).
        io_uring_prep_multishot_accept_direct(sqe, listen_fd_, nullptr, nullptr, 0);
    } else {
        io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(sqe, user_data(accept, 0));
    accept_armed_ = true;
}

void UringServer::accepted(int fd, bool fixed) {
    uint64_t serial = ctx_.counters->connections.fetch_add(1, std::memory_order_relaxed) + 1;
    auto c = std::make_unique<UringConnection>(*this, fd, fixed, serial);
    UringConnection* raw = c.get();
    connections_.emplace(serial, std::move(c));
    ctx_.counters->open.fetch_add(1, std::memory_order_relaxed);
    raw->open();
    if (stopping_) raw->on_stop();
}

// ---- completions ---------------------------------------------------------------------------

void UringServer::complete(const io_uring_cqe& cqe) {
    const Op op = static_cast<Op>(cqe.user_data >> 56);
    const uint64_t serial = cqe.user_data & ((uint64_t{1} << 56) - 1);
    switch (op) {
    case accept: {
        const bool more = cqe.flags & IORING_CQE_F_MORE;
        if (cqe.res >= 0) accepted(cqe.res, ring_.options().multishot && ring_.fixed_slots() > 0);
        if (more) return;
        accept_armed_ = false;  // a oneshot accept, or a multishot one that ended
        if (stopping_) return;
        if (cqe.res == -EMFILE || cqe.res == -ENFILE || cqe.res == -ENOMEM || cqe.res == -ENOBUFS) {
            log("accept: {} (pausing accepts; queued clients wait in the backlog)", std::strerror(-cqe.res));
            accept_paused_ = timers_.at(monotonic_ms() + kOutOfDescriptorsPauseMs, [this] {
                accept_paused_ = 0;
                arm_accept();
            });
            return;
        }
        if (cqe.res < 0 && cqe.res != -ECANCELED && cqe.res != -EINTR && cqe.res != -ECONNABORTED)
            log("accept: {}", std::strerror(-cqe.res));
        arm_accept();
        return;
    }
    case recv:
    case send:
    case shutdown:
    case cancel: {
        UringConnection* c = find(serial);
        if (c == nullptr) {
            // A completion for a connection already gone: only its buffer matters.
            if (op == recv && (cqe.flags & IORING_CQE_F_BUFFER)) ring_.give_back(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
            return;
        }
        if (op == recv) c->received(cqe);
        else if (op == send) c->sent(cqe);
        else c->other_done(cqe);
        return;
    }
    case stop:
        begin_stop();
        return;
    case wake:
        arm_wakeup();  // what was posted runs in run_pending(), with the rest of the turn
        return;
    case close:
        return;  // a fixed file's slot freed: nothing waits for it
    }
}

// ---- threads, and the stop ---------------------------------------------------------------

void UringServer::arm_wakeup() {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_read(sqe, wakeup_fd_, &wakeup_count_, sizeof wakeup_count_, 0);
    io_uring_sqe_set_data64(sqe, user_data(wake, 0));
}

// From any thread: a pool thread's answer. The eventfd's counter makes the
// pending read on the ring complete, which ends the loop's wait.
void UringServer::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeup_fd_, &one, sizeof one);
}

void UringServer::run_pending() {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        ready.swap(posted_);
    }
    for (auto& fn : ready) fn();
    gone_.clear();  // freed at the end of the turn: no handler of theirs is running
}

void UringServer::forget(UringConnection* c) {
    auto it = connections_.find(c->serial());
    if (it == connections_.end()) return;
    gone_.push_back(std::move(it->second));
    connections_.erase(it);
}

// The stop pipe (signals.hpp) as a poll request of the ring: it completes on a stop.
void UringServer::arm_stop_watch() {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_poll_add(sqe, stop_fd(), POLLIN);
    io_uring_sqe_set_data64(sqe, user_data(stop, 0));
}

void UringServer::begin_stop() {
    if (stopping_) return;
    stopping_ = true;
    SL_TRACE("stopping: {} connections open", connections_.size());
    if (accept_paused_) timers_.cancel(accept_paused_), accept_paused_ = 0;
    if (accept_armed_) {
        io_uring_sqe* sqe = ring_.sqe();
        io_uring_prep_cancel64(sqe, user_data(accept, 0), 0);
        io_uring_sqe_set_data64(sqe, user_data(close, 0));  // its own completion needs nothing
    }
    std::vector<UringConnection*> open;
    for (auto& [serial, c] : connections_) open.push_back(c.get());
    for (UringConnection* c : open) c->on_stop();
}

UringConnection* UringServer::find(uint64_t serial) {
    auto it = connections_.find(serial);
    return it == connections_.end() ? nullptr : it->second.get();
}

}  // namespace sl
