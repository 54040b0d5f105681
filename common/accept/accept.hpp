// accept.hpp: how prefork workers compete for a connection (--accept).
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
//   lock-fcntl       accept serialized by an fcntl() lock (UNP serv03)
//   lock-mutex       ... by a robust process-shared pthread mutex (UNP serv04)
//   reuseport        a listening socket per worker place (SO_REUSEPORT, Linux 3.9)
//   pass-fd          the master accepts and passes the fd (SCM_RIGHTS; UNP serv05)
//
// For event loops (06), which never block in accept, four of them apply:
// epoll, epoll-exclusive, reuseport, and accept-mutex, nginx's accept mutex
// (only the worker holding a shared lock watches the listening socket).
#pragma once

#include "base/fd.hpp"
#include "net/net.hpp"

#include <CLI/CLI.hpp>
#include <poll.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace sl {

enum class Accept { blocking, poll, epoll, epoll_exclusive, lock_fcntl, lock_mutex, reuseport, pass_fd, accept_mutex };

/// Every strategy with its --accept name, in the order the docs present them.
const Names<Accept>& accept_strategies();
std::string_view accept_name(Accept strategy);

/// The strategies of the prefork models (03, 04), and those of 06's event loops.
std::vector<Accept> prefork_strategies();
std::vector<Accept> event_strategies();

/// --accept NAME, parsed once by CLI11 into the enum. Only `allowed` are
/// accepted; another strategy's name is refused with `why_not` and the list
/// of those that are allowed, an unknown name with that list.
void add_accept_option(CLI::App& app, Accept& strategy, const std::vector<Accept>& allowed,
                       std::string_view why_not = "");

/// What a strategy counts, in the worker's scoreboard slot (shared memory:
/// lock-free atomics only, relaxed: statistics).
struct AcceptStats {
    std::atomic<uint64_t> wakeups{0};     // returns from the wait that precedes accept
    std::atomic<uint64_t> spurious{0};    // wakeups that got no connection: another worker won
    std::atomic<uint64_t> lock_waits{0};  // times the accept lock was held by another worker
};

/// A worker as its strategy knows it: its scoreboard slot, and its place in
/// the pool (0 .. --max-workers - 1). A place outlives its workers: the
/// replacement of a crashed or recycled worker, and the next generation after
/// a HUP, take the place of the worker they succeed (reuseport's listener
/// belongs to the place, so whatever waits in it is served by the successor).
struct WorkerId {
    int slot = 0;
    int place = 0;
};

/// The master's part of a strategy, for the two in which the master takes
/// part: pass-fd (it accepts, and hands connections out over a channel per
/// worker) and reuseport (it owns one listening socket per place). Called from
/// the master's loop only, in the master.
class MasterSide {
public:
    virtual ~MasterSide() = default;
    /// Before fork() for `w`: what the new worker inherits. False (logged):
    /// not now; the master tries again a second later, as after a failed fork.
    virtual bool before_fork(const WorkerId&) { return true; }
    /// In the master after fork(), `forked` false if fork() failed: drop what is the worker's now.
    virtual void after_fork(const WorkerId&, bool /*forked*/) {}
    /// The worker in `slot` is about to be asked to leave, or was reaped:
    /// hand it nothing more. (pass-fd: no connection is sent to a leaving worker.)
    virtual void retiring(int /*slot*/) {}
    /// Which places have a worker accepting now (index: place). (reuseport:
    /// new connections are steered to those listeners only.)
    virtual void open_places(const std::vector<bool>& /*open*/) {}
    /// Descriptors the master's wait watches besides its event pipe, and what
    /// to do when poll() reports them (the same vector, the same order).
    virtual void poll_set(std::vector<pollfd>& /*fds*/) {}
    virtual void on_ready(const std::vector<pollfd>& /*fds*/) {}
};

class AcceptStrategy {
public:
    virtual ~AcceptStrategy() = default;

    /// In the worker right after fork(): per-process setup (its own epoll
    /// instance, its listener, its channel). Made after fork on purpose: one
    /// made before would be shared by every worker.
    virtual void worker_init(const WorkerId& /*me*/) {}

    /// In the worker: waits for a connection and takes it, counting in
    /// `stats` its wakeups, spurious wakeups and lock waits. Empty Fd: a stop,
    /// or a wakeup that found nothing (another worker won); the caller loops.
    /// Thread-safe: 04's threads call it at the same time.
    virtual Fd accept(AcceptStats& stats) = 0;

    /// In a worker that is leaving: a connection that is already this
    /// worker's and that no other worker can take (pass-fd: one the master
    /// sent before it stopped sending; reuseport: one queued on the listener
    /// of a place that closed). Empty when there is none; never waits long.
    /// Serving them is what makes a restart lose nothing.
    virtual Fd leftover() { return Fd(); }

    /// The master's part, or nullptr where the master does not take part.
    virtual MasterSide* master_side() { return nullptr; }

    /// After worker_init: the listening socket of this worker's own (reuseport's
    /// place), for an event loop to watch; -1 where the workers share one.
    virtual int own_listener() const { return -1; }

    /// In a leaving worker: is its own listener's place closed for good (the
    /// pool shrank), so that what is queued in it is this worker's to serve
    /// (an event loop drains it until it stays quiet for kDrainQuietMs)?
    virtual bool place_closed() const { return false; }
};

/// A place's socket that stays quiet this long after its last connection is
/// drained is done. The master has stopped steering connections to it
/// before the leaving worker drains, but a handshake the kernel began just
/// before that completes into the same socket; on loopback it completes
/// within microseconds, across a network within a round trip. (Linux 5.14's
/// net.ipv4.tcp_migrate_req, off by default, lets the kernel move such
/// connections to another socket of the group instead.)
inline constexpr int kDrainQuietMs = 200;

/// nginx's accept mutex, for event loops (06 --accept accept-mutex): a
/// robust, process-shared pthread mutex in shared memory, made before the
/// first fork. An event loop never waits for a lock, so it is only tried:
/// the worker that gets it watches the listening socket during its next
/// turn, the others do not, and try again after at most a short wait.
class AcceptMutex {
public:
    AcceptMutex();
    /// True if this process now holds it. EOWNERDEAD (its holder died holding
    /// it) is recovered and counts as taken.
    bool try_lock();
    void unlock();

private:
    void* mutex_;  // a pthread_mutex_t in shared memory
};

/// The listening socket as the strategy needs it: blocking for `blocking`,
/// the locks and reuseport; non-blocking for the poll/epoll family and
/// pass-fd (a worker that lost the race must get EAGAIN, not block);
/// SO_REUSEPORT for reuseport, whose first place it is.
ListenOptions listen_options_for(Accept strategy, ListenOptions base);

/// Creates the strategy in the master, before the first fork (locks, lock
/// files and listeners must exist before the workers that share them).
/// `places`: the most workers at once (--max-workers); `slots`: scoreboard slots.
std::unique_ptr<AcceptStrategy> make_accept_strategy(Accept strategy, int listen_fd, const ListenOptions& listen,
                                                     int places, int slots);

/// Shared bookkeeping for one return from a wait: counts a wakeup, and a
/// spurious one if `conn` is empty (unless we are stopping); traces both.
Fd count_wakeup(Fd conn, AcceptStats& stats);

// The families, one file each.
std::unique_ptr<AcceptStrategy> make_wait_strategy(Accept strategy, int listen_fd);
std::unique_ptr<AcceptStrategy> make_lock_strategy(Accept strategy, int listen_fd);
std::unique_ptr<AcceptStrategy> make_reuseport_strategy(int listen_fd, const ListenOptions& listen, int places);
std::unique_ptr<AcceptStrategy> make_pass_fd_strategy(int listen_fd, int slots);

}  // namespace sl
