// pass-fd: the master accepts, and hands each connection to an idle worker.
//
// A Unix-domain socket can carry open descriptors: sendmsg() with an
// SCM_RIGHTS control message installs a duplicate of the descriptor in the
// receiving process (unix(7)). UNP's serv05 builds a prefork server on it,
// and Node.js's cluster module does the same by default ("round-robin"),
// because letting the OS choose sent most connections to a few processes.
//
// Each worker has a socketpair with the master. A worker about to wait sends
// one byte ("ready"); the master keeps the set of ready workers and watches
// the listener only while that set is not empty, so that when every worker is
// busy, clients wait in the kernel's backlog and not in a worker. No herd, an
// even spread, load awareness; the price is a master that does an accept and
// a sendmsg per connection, and a worker that does a recvmsg.
#include "accept.hpp"

#include "signals.hpp"
#include "trace.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

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

bool send_fd(int channel, int fd) {
    FdMessage m;
    msghdr& msg = m.msg;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    for (;;) {
        if (::sendmsg(channel, &msg, MSG_NOSIGNAL) >= 0) return true;
        if (errno != EINTR) return false;
    }
}

// An empty Fd at end of stream (the master is gone) or on error.
Fd recv_fd(int channel) {
    FdMessage m;
    msghdr& msg = m.msg;
    for (;;) {
        ssize_t n = ::recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);  // the received fd is close-on-exec too
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Fd();
        break;
    }
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return Fd();
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return Fd(fd);
}

class PassFdAccept final : public AcceptStrategy, public Dispatcher {
public:
    PassFdAccept(int listen_fd, int workers)
        : listen_fd_(listen_fd), master_end_(workers), worker_end_(workers), ready_(workers, false) {}

    // ---- worker side ----
    void worker_init(int slot) override { slot_ = slot; }

    Fd accept(WorkerSlot& me) override {
        int channel = worker_end_[slot_].get();
        char ready = 'r';
        if (::send(channel, &ready, 1, MSG_NOSIGNAL) < 0) return Fd();
        if (wait_readable(channel, -1) != Wait::ready) return Fd();  // a stop
        Fd conn = recv_fd(channel);
        if (!conn) {  // the master closed our channel: it is gone, so are we
            request_stop();
            return conn;
        }
        return count_wakeup(std::move(conn), me);
    }

    Dispatcher* dispatcher() override { return this; }

    // ---- master side ----
    void before_fork(int slot) override {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
            log("socketpair: {}", std::strerror(errno));
            return;
        }
        master_end_[slot].reset(pair[0]);
        worker_end_[slot].reset(pair[1]);
        ::fcntl(pair[0], F_SETFL, O_NONBLOCK);
    }

    void after_fork_in_master(int slot) override {
        worker_end_[slot].reset();  // the worker's end belongs to the worker
        ready_[slot] = false;
    }

    void after_fork_in_worker(int slot) override {
        // A worker keeps only its own end: the master's ends, and other
        // workers' ends, inherited through fork, would be leaked descriptors.
        for (size_t i = 0; i < master_end_.size(); ++i) {
            master_end_[i].reset();
            if (static_cast<int>(i) != slot) worker_end_[i].reset();
        }
    }

    void worker_gone(int slot) override {
        master_end_[slot].reset();
        ready_[slot] = false;
    }

    void poll_set(std::vector<pollfd>& fds) override {
        first_ = fds.size();
        for (const Fd& channel : master_end_) fds.push_back({channel.get(), POLLIN, 0});  // -1: skipped by poll
        // Only while a worker is ready: otherwise clients wait in the backlog.
        fds.push_back({anyone_ready() ? listen_fd_ : -1, POLLIN, 0});
    }

    void on_ready(const std::vector<pollfd>& fds) override {
        for (size_t slot = 0; slot < master_end_.size(); ++slot) {
            if (fds[first_ + slot].revents == 0) continue;
            char buf[64];
            ssize_t n;
            while ((n = ::read(master_end_[slot].get(), buf, sizeof buf)) > 0) ready_[slot] = true;
            if (n == 0) worker_gone(static_cast<int>(slot));  // the reap will follow
        }
        if (fds[first_ + master_end_.size()].revents != 0) dispatch();
    }

private:
    // Accepts while there are ready workers and connections, round robin.
    void dispatch() {
        while (anyone_ready()) {
            Fd conn = try_accept(listen_fd_);  // non-blocking listener: empty when the backlog is empty
            if (!conn) return;
            int slot = next_ready();  // only now: the round robin moves only when a connection is handed out
            ready_[slot] = false;
            if (!send_fd(master_end_[slot].get(), conn.get())) {
                log("sendmsg to worker {}: {}", slot, std::strerror(errno));
                continue;  // `conn` closes: that client sees the connection end
            }
            trace("passed a connection to worker {}", slot);
        }  // the master's copy of `conn` closes here; the worker has its own
    }

    bool anyone_ready() const {
        for (bool r : ready_)
            if (r) return true;
        return false;
    }

    int next_ready() {
        int n = static_cast<int>(ready_.size());
        for (int k = 1; k <= n; ++k) {
            int slot = (last_ + k) % n;
            if (ready_[slot]) return last_ = slot;
        }
        return -1;
    }

    int listen_fd_;
    std::vector<Fd> master_end_;
    std::vector<Fd> worker_end_;
    std::vector<bool> ready_;
    size_t first_ = 0;
    int last_ = -1;
    int slot_ = -1;
};

}  // namespace

std::unique_ptr<AcceptStrategy> make_pass_fd_strategy(int listen_fd, int workers) {
    return std::make_unique<PassFdAccept>(listen_fd, workers);
}

}  // namespace sl
