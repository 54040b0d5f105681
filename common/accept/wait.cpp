// The strategies where every worker waits on the listening socket itself.
#include "accept/accept.hpp"

#include "base/die.hpp"
#include "base/signals.hpp"

#include <sys/epoll.h>

#include <cerrno>

namespace sl {
namespace {

/// blocking: every idle worker sleeps in accept(2) on the one shared socket.
/// The kernel keeps them on an *exclusive* wait queue and wakes exactly one
/// per connection: the thundering herd in accept() was fixed in Linux 2.4
/// (after "Accept() scalability on Linux", USENIX 2000). Nothing to add in
/// user space; the other strategies show what goes wrong around it.
class BlockingAccept final : public AcceptStrategy {
public:
    explicit BlockingAccept(int listen_fd) : listen_fd_(listen_fd) {}
    Fd accept(AcceptStats& stats) override { return count_wakeup(try_accept(listen_fd_), stats); }

private:
    int listen_fd_;
};

/// poll: every idle worker waits in poll(2) for the shared (non-blocking)
/// socket to become readable, then calls accept. poll's wait is not
/// exclusive, so one connection wakes *every* idle worker; one accept wins,
/// the others get EAGAIN and go back to sleep. That is the thundering herd
/// (UNP's "select collisions", Apache's reason for an accept mutex): N-1
/// wasted wakeups, context switches and syscalls per connection.
class PollAccept final : public AcceptStrategy {
public:
    explicit PollAccept(int listen_fd) : listen_fd_(listen_fd) {}
    Fd accept(AcceptStats& stats) override {
        if (wait_readable(listen_fd_, -1) != Wait::ready) return Fd();  // a stop
        return count_wakeup(try_accept(listen_fd_), stats);
    }

private:
    int listen_fd_;
};

/// epoll and epoll-exclusive: each worker has its own epoll instance (made
/// after fork: one inherited instance would be shared by all) watching the
/// shared socket, level-triggered. Plain epoll wakes every worker, the herd
/// again, as in event-driven servers that each watch the listener (nginx
/// without accept_mutex). EPOLLEXCLUSIVE (Linux 4.5) puts the waiters on an
/// exclusive queue: one wakeup, or a few, per event. Its catch, noted in
/// nginx's sources: the queue is not fair, so the worker that waits first
/// keeps being chosen, and the spread over workers is skewed.
class EpollAccept final : public AcceptStrategy {
public:
    EpollAccept(int listen_fd, bool exclusive) : listen_fd_(listen_fd), exclusive_(exclusive) {}

    void worker_init(const WorkerId&) override {
        epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
        if (!epoll_) die("epoll_create1");
        epoll_event listener{};
        listener.events = EPOLLIN | (exclusive_ ? EPOLLEXCLUSIVE : 0u);
        listener.data.fd = listen_fd_;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_fd_, &listener) < 0) die("epoll_ctl ADD listener");
        epoll_event stop{};
        stop.events = EPOLLIN;
        stop.data.fd = stop_fd();
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stop_fd(), &stop) < 0) die("epoll_ctl ADD stop pipe");
    }

    Fd accept(AcceptStats& stats) override {
        bool listener_ready = wait(-1);
        // Woken for a connection, we take it even if a stop came meanwhile,
        // and if the stop woke us (the signal's EINTR, or the stop pipe) we
        // look once more without waiting. With EPOLLEXCLUSIVE the kernel may
        // have woken this worker alone for that connection: left in the
        // backlog, it would wait until another connection wakes another
        // worker, and a client that waits for its answer before connecting
        // again never sends one. (Found by test_leaving: an ECHO unanswered
        // while --max-requests retired a worker.)
        if (!listener_ready && stop_requested()) listener_ready = wait(0);
        if (!listener_ready) return Fd();  // EINTR: the caller looks at the flags and waits again
        return count_wakeup(try_accept(listen_fd_), stats);
    }

private:
    // epoll_wait for `timeout_ms`: whether the listening socket is ready.
    bool wait(int timeout_ms) {
        epoll_event events[2];
        int n = ::epoll_wait(epoll_.get(), events, 2, timeout_ms);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; ++i)
            if (events[i].data.fd == listen_fd_) return true;
        return false;
    }

    int listen_fd_;
    bool exclusive_;
    Fd epoll_;
};

}  // namespace

std::unique_ptr<AcceptStrategy> make_wait_strategy(Accept strategy, int listen_fd) {
    switch (strategy) {
    case Accept::poll: return std::make_unique<PollAccept>(listen_fd);
    case Accept::epoll: return std::make_unique<EpollAccept>(listen_fd, false);
    case Accept::epoll_exclusive: return std::make_unique<EpollAccept>(listen_fd, true);
    default: return std::make_unique<BlockingAccept>(listen_fd);
    }
}

}  // namespace sl
