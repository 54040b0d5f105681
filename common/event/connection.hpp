// connection.hpp: one connection of an event loop (muduo's TcpConnection):
// its buffers, its timers, and the state machine around the Session that
// every model shares. Made and owned by EventServer (server.hpp); used on
// the loop's thread only.
//
// The life of a connection:
//   open        registered for input, its idle timer armed
//   serving     reads what arrived, answers the complete requests in order
//               (one at a time: a SLEEP is a timer, an offloaded WORK runs
//               on a thread, and the requests behind them wait in the input
//               buffer), sends what the kernel takes, keeps the rest
//   lingering   the server ended it (QUIT, an error answer, Connection:
//               close, a stop) while the client may still be sending: our
//               side is shut down and input is read and dropped for a while
//   closed      the descriptor is closed; the object goes at the end of the turn
#pragma once

#include "base/fd.hpp"
#include "event/loop.hpp"
#include "net/server.hpp"
#include "protocol/session.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sl {

class EventServer;

/// A byte buffer read from the front, as muduo's Buffer with its reader
/// index: consuming moves an offset, and the bytes before it are dropped
/// only once they are at least half of it, so that each of many pipelined
/// requests costs its own size, not a copy of everything queued behind it.
class Buffer {
public:
    size_t size() const { return bytes_.size() - start_; }
    bool empty() const { return size() == 0; }
    std::string_view view() const { return std::string_view(bytes_).substr(start_); }
    void consume(size_t n);
    /// Where to append: the string, its consumed front dropped first if large.
    std::string& append_to();
    void clear() { bytes_.clear(), start_ = 0; }

private:
    std::string bytes_;
    size_t start_ = 0;
};

class Connection final : public Watcher {
public:
    Connection(EventServer& server, Fd fd, uint64_t serial);
    ~Connection() override;

    /// Registers the socket for input and arms the idle timer. False if
    /// epoll_ctl failed (logged): the server drops the connection.
    bool open();
    void on_events(uint32_t events) override;
    /// A stop: the next answer is this connection's last.
    void on_stop();
    /// The answer to the request being executed (a SLEEP's timer, an offloaded WORK).
    void finish(const Answer& answer);
    /// Edge-triggered: the input this connection left unread last time.
    void serve_again();
    uint64_t serial() const { return serial_; }

private:
    void read_some();
    void write_some();
    void progress();
    void answer_requests();
    void begin_request(const Command& command);
    void answered(const Answer& answer);
    void watch_what_is_needed();
    void come_back();
    void arm_idle_timer();
    void closing(const char* why);
    void discard_input();
    void close(const char* why);
    bool reading() const;

    EventServer& server_;
    EventLoop& loop_;
    const ServerContext& ctx_;
    Fd fd_;
    uint64_t serial_;
    ConnectionView view_;
    Session session_;
    int64_t idle_ms_;
    Buffer in_, out_;
    uint32_t watching_ = 0;     // what epoll waits for now (EPOLLIN, EPOLLOUT)
    bool may_read_ = false;     // edge-triggered: input may wait unread (no EAGAIN since the last event)
    bool coming_back_ = false;  // serve_again() is deferred already
    int64_t deadline_ms_ = 0;   // the idle timer closes the connection then (lingering: gives up)
    int64_t linger_until_ms_ = 0;
    size_t discarded_ = 0;      // lingering: input read and dropped
    EventLoop::TimerId idle_timer_ = 0;
    EventLoop::TimerId sleep_timer_ = 0;
    bool executing_ = false;
    bool grace_over_ = false;  // stopping: the grace is over, only the last answer's sending is waited for
    bool peer_done_ = false;
    bool lingering_ = false;
    bool closed_ = false;
};

}  // namespace sl
