// accept.hpp: how prefork workers compete for a connection (prefork --accept).
//
// Every strategy answers one question: when a connection arrives and several
// workers are idle, who is woken, and how many? Each is a small class with a
// comment on the problem it shows or solves; docs/accept-competition.md tells
// the story and docs/thundering-herd.md has the measurements.
//
//   blocking         every worker blocks in accept(); the kernel wakes one
//   poll             every worker waits in poll(); all wake, one wins: the herd
//   epoll            the same with a private epoll instance per worker
//   epoll-exclusive  EPOLLEXCLUSIVE (Linux 4.5): the kernel wakes one (or a few)
//   lock-fcntl       accept serialized by an fcntl() lock (UNP serv03, Apache)
//   lock-mutex       ... by a robust process-shared pthread mutex (UNP serv04)
//   reuseport        a listening socket per worker (SO_REUSEPORT, Linux 3.9)
//   pass-fd          the master accepts and passes the fd (SCM_RIGHTS; UNP serv05)
#pragma once

#include "fd.hpp"
#include "net.hpp"
#include "scoreboard.hpp"

#include <poll.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sl {

/// The master's part of a strategy in which the master takes part (pass-fd).
/// Called only from the master's loop, in the master process.
class Dispatcher {
public:
    virtual ~Dispatcher() = default;
    virtual void before_fork(int slot) = 0;           // master, just before fork() for `slot`
    virtual void after_fork_in_master(int slot) = 0;  // master, after fork()
    virtual void after_fork_in_worker(int slot) = 0;  // the new worker, first thing
    virtual void worker_gone(int slot) = 0;           // master, after reaping the worker in `slot`
    /// Adds the descriptors the master should watch to its poll set...
    virtual void poll_set(std::vector<pollfd>& fds) = 0;
    /// ...and handles the ones poll() reported (the same vector, same order).
    virtual void on_ready(const std::vector<pollfd>& fds) = 0;
};

class AcceptStrategy {
public:
    virtual ~AcceptStrategy() = default;

    /// In the worker right after fork(): per-process setup (its own epoll
    /// instance, its own SO_REUSEPORT socket). Made after fork on purpose:
    /// one made before would be shared by every worker.
    virtual void worker_init(int /*slot*/) {}

    /// In the worker: waits for a connection and takes it, counting in `me`
    /// its wakeups, spurious wakeups and lock waits. Empty Fd: a stop, or a
    /// wakeup that found nothing (another worker won); the caller loops.
    virtual Fd accept(WorkerSlot& me) = 0;

    /// The master's part, or nullptr where the master does not take part.
    virtual Dispatcher* dispatcher() { return nullptr; }
};

/// The names --accept takes, in the order the docs present them.
const std::vector<std::string>& accept_strategy_names();

/// The listening socket as the strategy needs it: blocking for `blocking` and
/// the locks; non-blocking for the poll/epoll family and pass-fd (a worker
/// that lost the race must get EAGAIN, not block); for reuseport the master
/// only binds, to hold the port, and each worker listens on a socket of its own.
ListenOptions listen_options_for(std::string_view strategy, ListenOptions base);

/// Creates the strategy in the master, before the first fork (locks and
/// lock files must exist before the workers that share them).
std::unique_ptr<AcceptStrategy> make_accept_strategy(std::string_view name, int listen_fd,
                                                     const ListenOptions& listen, int workers);

/// Shared bookkeeping for one return from a wait: counts a wakeup, and a
/// spurious one if `conn` is empty (unless we are stopping); traces both.
Fd count_wakeup(Fd conn, WorkerSlot& me);

// The families, one file each.
std::unique_ptr<AcceptStrategy> make_wait_strategy(std::string_view name, int listen_fd, const ListenOptions& listen);
std::unique_ptr<AcceptStrategy> make_lock_strategy(std::string_view name, int listen_fd);
std::unique_ptr<AcceptStrategy> make_pass_fd_strategy(int listen_fd, int workers);

}  // namespace sl
