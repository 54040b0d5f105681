// loop.hpp: the reactor. One epoll instance, timers, and work handed back
// from other threads, all run by one thread that never blocks but in
// epoll_wait (redis's ae.c, libuv's uv_run, nginx's event module).
//
// One turn of the loop, in four phases a model's main() calls in order
// (run_once() is the four in one):
//   1. wait():        epoll_wait until a watched descriptor is ready, the
//                     earliest timer is due, another thread posts work, or a
//                     stop is requested;
//   2. dispatch():    call each ready descriptor's watcher (listening
//                     sockets first, as nginx handles accept events first);
//   3. run_timers():  the timers that are due;
//   4. run_pending(): what other threads posted, and what this turn deferred.
// Everything a watcher or timer does must be quick and must not block: a
// read or write that would block returns EAGAIN instead (the descriptors
// are non-blocking), and anything slow becomes a timer or goes to a thread.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/fd.hpp"
#include "event/timers.hpp"

namespace sl {

/// Level-triggered epoll reports a descriptor as long as it is ready: a
/// watcher may read some and come back later. Edge-triggered (EPOLLET)
/// reports it once per change: a watcher must remember that it has not
/// read (or accepted, or written) everything until it saw EAGAIN, because
/// what it left behind is not reported again.
enum class Trigger { level, edge };

/// What the loop calls when a watched descriptor is ready.
class Watcher {
public:
    virtual ~Watcher() = default;
    /// `events`: EPOLLIN, EPOLLOUT, EPOLLHUP, EPOLLERR as epoll_wait(2) gave them.
    virtual void on_events(uint32_t events) = 0;
    /// A listening socket: dispatched before the other watchers of the same
    /// turn (nginx handles accept events first, then lets go of its accept mutex).
    virtual bool listener() const { return false; }
};

class EventLoop {
public:
    using TimerId = TimerHeap::TimerId;

    explicit EventLoop(Trigger trigger = Trigger::level);
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    Trigger trigger() const { return trigger_; }

    /// Starts watching `fd` (EPOLL_CTL_ADD) for `events`: EPOLLIN and/or
    /// EPOLLOUT (0: none for now), plus EPOLLEXCLUSIVE for a listening socket
    /// shared with other processes. The loop adds EPOLLET in edge mode. False
    /// if epoll_ctl failed (errno set): the caller closes that descriptor.
    /// The caller keeps track of what it registered, so that each change is
    /// one system call that cannot fail for being the wrong one.
    bool add(int fd, uint32_t events, Watcher* watcher);
    /// Changes what a watched `fd` waits for (EPOLL_CTL_MOD). False as add().
    bool modify(int fd, uint32_t events, Watcher* watcher);
    /// Stops watching `fd` (before it is closed, if it is not its last descriptor).
    void remove(int fd);

    /// Runs `fn` once, on this thread, at CLOCK_MONOTONIC time `at_ms`.
    TimerId at(int64_t at_ms, std::function<void()> fn);
    /// A timer that has not run yet will not run.
    void cancel(TimerId id);

    /// From any thread: `fn` runs on the loop's thread in its next turn. An
    /// eventfd wakes the loop (libuv's uv_async_send does the same).
    void post(std::function<void()> fn);
    /// From the loop's own thread: `fn` runs at the end of this turn, after
    /// every descriptor that was ready had its turn. No wakeup is needed (the
    /// loop is awake), so no system call is made. What a deferred function
    /// defers runs in the next turn, whose wait does not block.
    void defer(std::function<void()> fn);

    /// What one epoll_wait reported.
    struct Ready {
        epoll_event events[256];
        int count = 0;
    };
    /// 1. Waits at most `max_wait_ms` (-1: no limit but the timers; 0 when
    ///    something is deferred). A signal (EINTR) ends the wait with nothing
    ///    ready; its flag is the caller's to look at.
    void wait(Ready& ready, int max_wait_ms = -1);
    /// 2. Calls the watchers of what is ready: `listeners` selects the
    ///    listening sockets' watchers, or all the others.
    void dispatch(const Ready& ready, bool listeners);
    void dispatch(const Ready& ready) {
        dispatch(ready, true);
        dispatch(ready, false);
    }
    /// 3. Runs the timers that are due (only those that existed when it began).
    void run_timers();
    /// 4. Runs what other threads posted, then what this turn deferred.
    void run_pending();
    /// The four phases in order.
    void run_once(int max_wait_ms = -1);

    /// How many turns the loop has made (returns from epoll_wait).
    uint64_t turns() const { return turns_; }
    /// Entries in the timer heap, cancelled ones included (for the tests).
    size_t timer_entries() const { return timers_.entries(); }

private:
    bool control(int op, int fd, uint32_t events, Watcher* watcher);
    int timeout_ms(int max_wait_ms) const;

    Trigger trigger_;
    Fd epoll_;
    Fd wakeup_;  // eventfd: post() writes, the loop reads
    std::unique_ptr<Watcher> wakeup_watcher_;
    TimerHeap timers_;
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    std::vector<std::function<void()>> deferred_;
    uint64_t turns_ = 0;
};

}  // namespace sl
