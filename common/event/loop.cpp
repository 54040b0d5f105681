#include "event/loop.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sl {
namespace {

// The eventfd's watcher: reading it resets the count, so that the next
// post() makes it readable again.
class Wakeup final : public Watcher {
public:
    explicit Wakeup(int fd) : fd_(fd) {}
    void on_events(uint32_t) override {
        uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(fd_, &count, sizeof count);
    }

private:
    int fd_;
};

}  // namespace

EventLoop::EventLoop(Trigger trigger) : trigger_(trigger) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) die("epoll_create1");
    wakeup_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wakeup_) die("eventfd");
    wakeup_watcher_ = std::make_unique<Wakeup>(wakeup_.get());
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered whatever the mode: on_events drains it
    ev.data.ptr = wakeup_watcher_.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wakeup_.get(), &ev) < 0) die("epoll_ctl ADD eventfd");
}

bool EventLoop::control(int op, int fd, uint32_t events, Watcher* watcher) {
    epoll_event ev{};
    ev.events = events | (trigger_ == Trigger::edge ? EPOLLET : 0u);
    ev.data.ptr = watcher;
    return ::epoll_ctl(epoll_.get(), op, fd, &ev) == 0;
}

bool EventLoop::add(int fd, uint32_t events, Watcher* watcher) {
    return control(EPOLL_CTL_ADD, fd, events, watcher);
}

bool EventLoop::modify(int fd, uint32_t events, Watcher* watcher) {
    return control(EPOLL_CTL_MOD, fd, events, watcher);  // EPOLLEXCLUSIVE is ADD's only (a MOD with it is EINVAL)
}

void EventLoop::remove(int fd) {
    // Fails only if it was not watched: nothing to undo then.
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::at(int64_t at_ms, std::function<void()> fn) {
    return timers_.at(at_ms, std::move(fn));
}

void EventLoop::cancel(TimerId id) {
    timers_.cancel(id);
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakeup_.get(), &one, sizeof one);  // EAGAIN: already readable
}

void EventLoop::defer(std::function<void()> fn) {
    deferred_.push_back(std::move(fn));
}

int EventLoop::timeout_ms(int max_wait_ms) const {
    if (!deferred_.empty()) return 0;  // deferred by a deferred function: run it without waiting
    int64_t wait = max_wait_ms < 0 ? INT32_MAX : max_wait_ms;
    if (int64_t next = timers_.next_deadline(); next >= 0) wait = std::min(wait, std::max<int64_t>(0, next - monotonic_ms()));
    return wait == INT32_MAX ? -1 : static_cast<int>(wait);
}

void EventLoop::wait(Ready& ready, int max_wait_ms) {
    int n = ::epoll_wait(epoll_.get(), ready.events, 256, timeout_ms(max_wait_ms));
    if (n < 0 && errno != EINTR) die("epoll_wait");  // EINTR: a signal; its flag is looked at by the caller
    ready.count = n < 0 ? 0 : n;
    ++turns_;
}

void EventLoop::dispatch(const Ready& ready, bool listeners) {
    for (int i = 0; i < ready.count; ++i) {
        auto* w = static_cast<Watcher*>(ready.events[i].data.ptr);
        if (w->listener() == listeners) w->on_events(ready.events[i].events);
    }
}

void EventLoop::run_once(int max_wait_ms) {
    Ready ready;
    wait(ready, max_wait_ms);
    dispatch(ready);
    run_timers();
    run_pending();
}

void EventLoop::run_timers() {
    timers_.run_due();
}

void EventLoop::run_pending() {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard<std::mutex> lock(posted_mutex_);
        ready.swap(posted_);
    }
    for (auto& fn : ready) fn();
    // Swapped out first: what a deferred function defers runs next turn.
    std::vector<std::function<void()>> deferred;
    deferred.swap(deferred_);
    for (auto& fn : deferred) fn();
}

}  // namespace sl
