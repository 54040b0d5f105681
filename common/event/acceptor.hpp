// acceptor.hpp: the listening socket of an event loop, and how it accepts
// (muduo's Acceptor, nginx's ngx_event_accept.c, apart from the requests).
//
// One accept per wakeup, level-triggered, as nginx does with multi_accept
// off: the loop comes back for the next connection, and in 06 another worker
// may take it meanwhile. Edge-triggered, or with --multi-accept, until
// EAGAIN: edge-triggered, connections left in the queue would not be
// reported again. Out of descriptors (EMFILE), the socket is not watched
// for a moment, so that the loop does not spin on a queue it cannot drain.
#pragma once

#include "accept/accept.hpp"
#include "base/fd.hpp"
#include "event/loop.hpp"

#include <cstdint>
#include <functional>

namespace sl {

class Acceptor final : public Watcher {
public:
    /// Watches the non-blocking listening socket `fd` on `loop` once
    /// accepting(true) is called; each connection it accepts (non-blocking,
    /// close-on-exec) goes to `take`. `drain`: accept until EAGAIN. `extra`:
    /// EPOLLEXCLUSIVE, for a socket other processes watch too. `stats`, if
    /// given, counts each wakeup and each that found nothing (06's herd).
    Acceptor(EventLoop& loop, int fd, bool drain, uint32_t extra, AcceptStats* stats, std::function<void(Fd)> take);
    ~Acceptor() override;
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    /// Starts or stops watching the socket (a stop; 06's accept mutex).
    void accepting(bool on);
    /// EPOLLEXCLUSIVE: asked before the socket is re-added every 16 accepts;
    /// false skips it (06: a pool of one worker has nobody to give the turn to).
    void others_waiting(std::function<bool()> fn) { others_waiting_ = std::move(fn); }

    /// After a stop, for a socket no other process accepts from any more
    /// (06 reuseport, a place that closed): watch it again and take what is
    /// still queued there, until it has been quiet for `quiet_ms`; then `done`.
    void drain_until_quiet(int quiet_ms, std::function<void()> done);

    void on_events(uint32_t events) override;
    bool listener() const override { return true; }

private:
    void update();
    void pause_for_descriptors();
    void take_turns(int taken);
    void quiet_period_over();

    EventLoop& loop_;
    int fd_;
    bool drain_;
    uint32_t extra_;
    AcceptStats* stats_;
    std::function<void(Fd)> take_;
    std::function<bool()> others_waiting_;
    bool on_ = false;       // wanted: watched unless paused
    bool watched_ = false;  // registered with the loop now
    EventLoop::TimerId paused_ = 0;  // out of descriptors: watched again after a pause
    uint64_t accepted_ = 0;
    // drain_until_quiet: the quiet period, its timer, and what runs after it.
    int quiet_ms_ = 0;
    EventLoop::TimerId quiet_timer_ = 0;
    std::function<void()> drained_;
};

}  // namespace sl
