// pass-fd: the master accepts, and hands each connection to an idle worker.
//
// A Unix-domain socket can carry open descriptors: sendmsg() with an
// SCM_RIGHTS control message installs a duplicate of the descriptor in the
// receiving process (unix(7)). UNP's serv05 builds a prefork server on it,
// and Node.js's cluster module does the same by default ("round-robin").
//
// Each worker has a channel with the master (a SOCK_SEQPACKET socketpair:
// message boundaries kept, one descriptor per message). Every thread of a
// worker that is about to wait sends one byte, "ready": a credit. The master
// counts each worker's credits and watches the listener only while some
// worker has one, so that when every thread is busy, clients wait in the
// kernel's backlog and not in a worker. No herd, an even spread, load
// awareness; the price is a master that does an accept and a sendmsg per
// connection, and a worker that does a recvmsg.
//
// A restart loses nothing: before the master asks a worker to leave it
// stops sending to it and closes its end (retiring()), and the leaving
// worker receives and serves whatever was already in its channel
// (leftover()), which SOCK_SEQPACKET delivers before the end of stream. A
// worker that leaves on its own (--max-requests) may still have credits out
// (04: its other threads said "ready"): it sends "leaving", the master
// answers by closing its end, and the worker serves what came before that.
//
// A channel can be full without being closed. Each message queued on a
// Unix socket counts against the sender's send buffer (for a socketpair the
// receiver's queue length is not what limits it: unix_dgram_sendmsg skips
// that check when the receiver's peer is the sender), so a few hundred
// messages fill it: 04's 1024 threads each saying "ready" at once, or the
// master passing connections faster than a worker takes them. A full
// channel answers EAGAIN, a closed one EPIPE (or ECONNRESET): the first
// means "wait for room", the second "the other side is gone". The worker
// waits for room; the master hands the connection to another worker, or
// holds it until a channel drains.
#include "accept/accept.hpp"

#include "base/clock.hpp"
#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace sl {
namespace {

// One byte of data (a message must carry some) and room for one descriptor.
struct FdMessage {
    char byte = 'c';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};

    FdMessage() {
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
    }
    FdMessage(const FdMessage&) = delete;  // msg points into this object
    FdMessage& operator=(const FdMessage&) = delete;
};

// What one non-blocking send on a channel did.
enum class Sent { sent, full, closed };

Sent sent_or_why(ssize_t n) {
    if (n >= 0) return Sent::sent;
    return errno == EAGAIN || errno == EWOULDBLOCK ? Sent::full : Sent::closed;  // EPIPE, ECONNRESET
}

Sent send_fd(int channel, int fd) {
    FdMessage m;
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do {
        n = ::sendmsg(channel, &m.msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return sent_or_why(n);
}

// One byte to the other side ('r' ready, 'q' leaving), without waiting.
Sent send_byte(int channel, char byte) {
    ssize_t n;
    do {
        n = ::send(channel, &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return sent_or_why(n);
}

// What one non-blocking recvmsg() on a worker's channel brought.
struct Received {
    enum What { connection, nothing, lost, closed } what = nothing;
    Fd conn;
};

Received receive(int channel) {
    FdMessage m;
    ssize_t n;
    do {
        n = ::recvmsg(channel, &m.msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);  // the new fd is close-on-exec too
    } while (n < 0 && errno == EINTR);
    if (n < 0) return {errno == EAGAIN ? Received::nothing : Received::closed, Fd()};  // EAGAIN: a sibling thread took it
    if (n == 0) return {Received::closed, Fd()};  // the master closed our end: it retired us, or it is gone
    cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    // A message but no descriptor: the kernel could not install it here
    // (this process is at its descriptor limit), sets MSG_CTRUNC and closes
    // the connection. That client is lost; the master is fine.
    if ((m.msg.msg_flags & MSG_CTRUNC) || c == nullptr || c->cmsg_type != SCM_RIGHTS) return {Received::lost, Fd()};
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return {Received::connection, Fd(fd)};
}

class PassFdAccept final : public AcceptStrategy, public MasterSide {
public:
    PassFdAccept(int listen_fd, int slots)
        : listen_fd_(listen_fd), master_end_(static_cast<size_t>(slots)), worker_end_(static_cast<size_t>(slots)),
          credits_(static_cast<size_t>(slots), 0), full_(static_cast<size_t>(slots), false) {}

    // ---- worker side ----
    void worker_init(const WorkerId& me) override {
        // A worker keeps only its own end: the master's ends, and other
        // workers' ends, inherited through fork, would be leaked descriptors.
        for (size_t i = 0; i < master_end_.size(); ++i) {
            master_end_[i].reset();
            if (static_cast<int>(i) != me.slot) worker_end_[i].reset();
        }
        channel_ = worker_end_[static_cast<size_t>(me.slot)].get();
    }

    Fd accept(AcceptStats& stats) override {
        // Does this thread have a "ready" with the master that no connection
        // has answered yet? Per thread: 04's threads wait on one channel.
        thread_local bool credit = false;
        while (!credit) {
            switch (send_byte(channel_, 'r')) {
            case Sent::sent:
                credit = true;
                break;
            case Sent::full:  // the master has not read our earlier messages yet: wait for room
                if (wait_writable(channel_, -1) == Wait::stop) return Fd();
                break;
            case Sent::closed:  // the master closed our end: it retired us, or it is gone
                request_stop();
                return Fd();
            }
        }
        if (wait_readable(channel_, -1) != Wait::ready) return Fd();  // a stop
        Received r = receive(channel_);
        switch (r.what) {
        case Received::connection:
            credit = false;
            return count_wakeup(std::move(r.conn), stats);
        case Received::nothing:  // a sibling thread was quicker: a spurious wakeup
            return count_wakeup(Fd(), stats);
        case Received::lost:
            credit = false;
            lost_one();
            return Fd();
        case Received::closed:
            request_stop();
            return Fd();
        }
        return Fd();
    }

    Fd leftover() override {
        for (;;) {
            Received r = receive(channel_);
            switch (r.what) {
            case Received::connection:
                return std::move(r.conn);
            case Received::lost:
                lost_one();
                continue;
            case Received::closed:  // the master closed our end: nothing more can come
                return Fd();
            case Received::nothing:
                // The master may still send for a credit we gave it: ask it to
                // stop (once per process) and wait for the end of the stream.
                // A second is plenty; a master that does not answer is dying.
                if (!said_leaving_.exchange(true)) {
                    // Full: keep reading; the master reads its end and closes it soon anyway.
                    if (send_byte(channel_, 'q') == Sent::closed) return Fd();
                }
                if (!readable_within(channel_, 1000)) return Fd();
                continue;
            }
        }
    }

    MasterSide* master_side() override { return this; }

    // ---- master side ----
    bool before_fork(const WorkerId& w) override {
        int pair[2];
        // Non-blocking at both ends: the master never blocks on a worker, and
        // a worker waits in poll(), where a stop can reach it.
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0) {
            log("socketpair: {} (worker {} not started; trying again in a second)", std::strerror(errno), w.slot);
            return false;
        }
        master_end_[static_cast<size_t>(w.slot)].reset(pair[0]);
        worker_end_[static_cast<size_t>(w.slot)].reset(pair[1]);
        credits_[static_cast<size_t>(w.slot)] = 0;
        full_[static_cast<size_t>(w.slot)] = false;
        return true;
    }

    void after_fork(const WorkerId& w, bool forked) override {
        worker_end_[static_cast<size_t>(w.slot)].reset();  // the worker's end belongs to the worker
        if (!forked) master_end_[static_cast<size_t>(w.slot)].reset();
    }

    void retiring(int slot) override {
        // Nothing more for it. Closing our end makes its waiting threads see
        // the end of stream, after whatever is still queued for them.
        credits_[static_cast<size_t>(slot)] = 0;
        full_[static_cast<size_t>(slot)] = false;
        master_end_[static_cast<size_t>(slot)].reset();
    }

    void poll_set(std::vector<pollfd>& fds) override {
        // Only the open channels: poll() refuses more entries than the
        // descriptor limit (EINVAL), even entries of -1.
        first_ = fds.size();
        watched_.clear();
        for (size_t slot = 0; slot < master_end_.size(); ++slot) {
            if (!master_end_[slot]) continue;
            // POLLOUT only for a full channel: we wait for room in it.
            fds.push_back({master_end_[slot].get(), static_cast<short>(POLLIN | (full_[slot] ? POLLOUT : 0)), 0});
            watched_.push_back(slot);
        }
        // Only while a worker is ready and no connection waits for one:
        // otherwise clients wait in the backlog.
        fds.push_back({anyone_ready() && !held_ ? listen_fd_ : -1, POLLIN, 0});
    }

    void on_ready(const std::vector<pollfd>& fds) override {
        for (size_t k = 0; k < watched_.size(); ++k) {
            size_t slot = watched_[k];
            short revents = fds[first_ + k].revents;
            if (revents == 0 || !master_end_[slot]) continue;
            if (revents & POLLOUT) full_[slot] = false;  // room again
            // One message per read: 'r' is a credit, 'q' says the worker is
            // leaving on its own; the end of stream, that it is gone.
            char message;
            ssize_t n;
            while ((n = ::read(master_end_[slot].get(), &message, 1)) > 0 && message == 'r') ++credits_[slot];
            if (n >= 0) retiring(static_cast<int>(slot));  // 'q', or gone: the reap will follow
        }
        if (held_ || fds[first_ + watched_.size()].revents != 0) dispatch();
    }

private:
    // Out of descriptors: say so at most once a second, and pause before the
    // next "ready", so that the master does not pour connections into a
    // process that can only drop them.
    void lost_one() {
        static std::atomic<int64_t> last_logged_ms{-1000};  // atomic: 04's threads share it
        int64_t now = monotonic_ms(), last = last_logged_ms.load();
        if (now - last >= 1000 && last_logged_ms.compare_exchange_strong(last, now))
            log("recvmsg: a connection arrived without its descriptor (MSG_CTRUNC: out of descriptors?); "
                "that client is lost, pausing 100 ms");
        readable_within(stop_fd(), 100);
    }

    // Accepts while some worker has a credit and room in its channel, and
    // hands each connection out, round robin. A connection no channel could
    // take is held (held_) until one has room: never dropped.
    void dispatch() {
        while (anyone_ready()) {
            Fd conn = held_ ? std::move(held_) : try_accept(listen_fd_);  // non-blocking: empty when none waits
            if (!conn) return;
            if (!hand_out(conn)) {
                held_ = std::move(conn);  // every ready worker's channel is full: poll() waits for room
                return;
            }
        }  // the master's copy of each connection closes here; the worker has its own
    }

    // Sends `conn` to the next worker with a credit; tries the others when
    // a channel is full or closed. True once one has it.
    bool hand_out(Fd& conn) {
        while (anyone_ready()) {
            size_t slot = next_ready();  // only now: the round robin moves only when a connection is handed out
            switch (send_fd(master_end_[slot].get(), conn.get())) {
            case Sent::sent:
                --credits_[slot];
                SL_TRACE("passed a connection to worker {}", slot);
                return true;
            case Sent::full:
                full_[slot] = true;  // its credits stay; it gets more once it has taken what is queued
                SL_TRACE("worker {}'s channel is full; trying another", slot);
                break;
            case Sent::closed:
                log("sendmsg to worker {}: {} (its connection goes to another worker)", slot, std::strerror(errno));
                retiring(static_cast<int>(slot));  // gone: the reap will follow
                break;
            }
        }
        return false;
    }

    bool ready(size_t slot) const { return credits_[slot] > 0 && !full_[slot]; }

    bool anyone_ready() const {
        for (size_t slot = 0; slot < credits_.size(); ++slot)
            if (ready(slot)) return true;
        return false;
    }

    size_t next_ready() {
        size_t n = credits_.size();
        for (size_t k = 1; k <= n; ++k) {
            size_t slot = (last_ + k) % n;
            if (ready(slot)) return last_ = slot;
        }
        return 0;  // not reached: anyone_ready() was true
    }

    int listen_fd_;
    std::vector<Fd> master_end_;  // master: its end of each worker's channel
    std::vector<Fd> worker_end_;  // master: a new worker's end, from socketpair to fork
    std::vector<int> credits_;    // master: "ready" messages not yet answered with a connection
    std::vector<bool> full_;      // master: the channel answered EAGAIN; nothing more until POLLOUT
    Fd held_;                     // master: accepted, waiting for a channel with room
    size_t first_ = 0;            // master: where our entries start in the poll set
    std::vector<size_t> watched_;  // master: the slot of each channel in the poll set
    size_t last_ = 0;
    int channel_ = -1;                     // worker: its end
    std::atomic<bool> said_leaving_{false};  // worker: 'q' sent
};

}  // namespace

std::unique_ptr<AcceptStrategy> make_pass_fd_strategy(int listen_fd, int slots) {
    return std::make_unique<PassFdAccept>(listen_fd, slots);
}

}  // namespace sl
