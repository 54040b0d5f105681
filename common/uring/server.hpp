// server.hpp: the protocol served from an io_uring (08), in one thread.
//
// 05 asks "may I read?" and then reads: epoll_wait, then a read(2) or a
// send(2) per ready connection. Here the server asks the kernel to do the
// reading and the sending itself and to say when it is done: a request per
// operation, a completion per result, as many as are ready per system call.
// Everything else is 05's: the same Session per connection, its buffers,
// one request at a time, SLEEP as a timer, backpressure, the stop's rules,
// lingering close.
//
// Every request carries a user_data of (what it is, the connection's
// serial): a completion that comes for a connection already gone is known
// as such, and its provided buffer still goes back to the ring.
#pragma once

#include "event/offload.hpp"
#include "event/timers.hpp"
#include "net/server.hpp"
#include "uring/ring.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace sl {

class UringConnection;

struct UringServerOptions {
    size_t output_limit = 64 * 1024;  // stop receiving on a connection with this much unsent
    int offload = 0;                  // threads for WORK (0: WORK runs on the loop)
};

/// --output-limit, --offload (05's meaning).
void add_uring_server_options(CLI::App& app, UringServerOptions& options);

class UringServer {
public:
    /// What a request is, in the upper byte of its user_data.
    enum Op : uint8_t { accept = 1, recv, send, shutdown, close, cancel, stop, wake };
    static uint64_t user_data(Op op, uint64_t serial) { return uint64_t{op} << 56 | serial; }

    /// Serves what the non-blocking socket `listen_fd` accepts, on `ring`,
    /// counting into `ctx.counters`. Arms the accept, and a watch on the stop
    /// pipe: a stop ends the accepting and closes connections by 05's rules.
    UringServer(Ring& ring, TimerHeap& timers, const ServerContext& ctx, const UringServerOptions& options,
                int listen_fd);
    ~UringServer();
    UringServer(const UringServer&) = delete;
    UringServer& operator=(const UringServer&) = delete;

    /// One completion: an accepted connection, data received, data sent, a stop...
    void complete(const io_uring_cqe& cqe);
    /// At the end of a turn: what other threads posted (offloaded WORK's
    /// answers), run on this thread; then the connections closed this turn go.
    void run_pending();

    bool stopping() const { return stopping_; }
    bool finished() const { return stopping_ && !accept_armed_ && connections_.empty(); }
    /// How long the loop may wait: until the next timer, -1 without one.
    int wait_ms() const;

private:
    friend class UringConnection;
    void arm_accept();
    void accepted(int fd, bool fixed);
    void arm_stop_watch();
    void arm_wakeup();
    void begin_stop();
    void post(std::function<void()> fn);  // any thread
    void forget(UringConnection* c);  // closed, and every request of it completed
    UringConnection* find(uint64_t serial);

    Ring& ring_;
    TimerHeap& timers_;
    const ServerContext& ctx_;
    const UringServerOptions& options_;
    int listen_fd_;
    bool accept_armed_ = false;
    uint64_t accept_paused_ = 0;  // out of descriptors: the timer that arms the accept again
    bool stopping_ = false;
    std::unique_ptr<WorkPool> pool_;
    int wakeup_fd_ = -1;  // eventfd: other threads write, a read request on the ring wakes the loop
    uint64_t wakeup_count_ = 0;
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    std::unordered_map<uint64_t, std::unique_ptr<UringConnection>> connections_;
    std::vector<std::unique_ptr<UringConnection>> gone_;  // forgotten this turn, freed at its end
};

}  // namespace sl
