// connection.hpp: one connection of 08's ring: what 05's Connection does,
// driven by completions instead of readiness.
//
// The differences, each a pitfall of the completion model:
//   - Bytes the kernel is sending are out of the program's hands until the
//     send completes: they sit in `sending_`, which nothing touches
//     meanwhile, and new answers go to `out_` (appending to the buffer the
//     kernel reads from could move it, and the kernel would send freed memory).
//   - A receive request, multishot above all, outlives any wish to stop
//     reading: backpressure and closing must *cancel* it, and the socket may
//     be closed only once every request on it has completed (a pending
//     receive holds the socket open, and would complete into freed memory).
//   - Every completion that brought a provided buffer gives it back, even
//     for a connection that is gone, or the ring runs dry (ENOBUFS).
#pragma once

#include "event/connection.hpp"
#include "net/server.hpp"
#include "protocol/session.hpp"
#include "uring/ring.hpp"

#include <cstdint>
#include <memory>

namespace sl {

class UringServer;

class UringConnection {
public:
    /// `fd` is a descriptor, or with `fixed` a slot of the ring's file table.
    UringConnection(UringServer& server, int fd, bool fixed, uint64_t serial);
    ~UringConnection();

    /// Arms the first receive and the idle timer.
    void open();
    void received(const io_uring_cqe& cqe);
    void sent(const io_uring_cqe& cqe);
    /// A completion of a request of ours that needs no handling (a
    /// cancellation, a shutdown): only counted.
    void other_done(const io_uring_cqe& cqe);
    void on_stop();
    /// The answer to the request being executed (a SLEEP's timer, an offloaded WORK).
    void finish(const Answer& answer);
    uint64_t serial() const { return serial_; }

private:
    void prep(io_uring_sqe* sqe, uint8_t op);
    void arm_receive();
    void pause_receive();
    void cancel_receive();
    void start_sending();
    void progress();
    void answer_requests();
    void begin_request(const Command& c);
    void answered(const Answer& a);
    bool reading() const;
    void arm_idle_timer();
    void closing(const char* why);
    void close(const char* why);
    void release();

    UringServer& server_;
    Ring& ring_;
    const ServerContext& ctx_;
    int fd_;
    bool fixed_;
    uint64_t serial_;
    ConnectionView view_;
    Session session_;
    Buffer in_, out_, sending_;  // sending_: what the kernel is sending now; out_: what comes after
    std::unique_ptr<char[]> own_buffer_;  // oneshot: the buffer a receive request fills
    int inflight_ = 0;          // requests submitted whose last completion has not come
    bool receive_armed_ = false;
    bool send_in_flight_ = false;
    bool cancel_sent_ = false;  // the armed receive is being cancelled
    bool full_read_ = false;    // the last receive filled its buffer: more may be waiting
    int64_t idle_ms_;
    int64_t deadline_ms_ = 0;
    int64_t linger_until_ms_ = 0;
    size_t discarded_ = 0;
    uint64_t idle_timer_ = 0;
    uint64_t sleep_timer_ = 0;
    bool executing_ = false;
    bool grace_over_ = false;
    bool peer_done_ = false;
    bool lingering_ = false;
    bool closed_ = false;
};

}  // namespace sl
