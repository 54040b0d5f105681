// loop_threads.hpp: event loops, one per thread, in one process (07):
// muduo's EventLoopThreadPool, the "main/sub reactor" of many C++ servers.
//
// Each LoopThread is 05's loop (an EventLoop and an EventServer) in a thread
// of its own. Connections reach it one of three ways (--accept):
//   main-reactor     one loop, the main reactor, accepts and hands each
//                    connection to a sub-reactor: round robin, or the one
//                    with the fewest open connections (--balance). The
//                    hand-off is a queue woken by an eventfd (EventLoop::post,
//                    muduo's queueInLoop): a wakeup per connection.
//   reuseport        each loop has a listening socket of its own on the port
//                    (SO_REUSEPORT): the kernel picks, by a hash of the
//                    addresses; no hand-off, and no say in the balance.
//   epoll-exclusive  every loop watches the one listening socket with
//                    EPOLLEXCLUSIVE: the kernel wakes one waiting loop.
// A loop's thread is the only one that touches its server, its connections
// and its timers; other threads talk to it only through post().
#pragma once

#include "base/cli.hpp"
#include "base/fd.hpp"
#include "event/loop.hpp"
#include "event/server.hpp"
#include "protocol/state.hpp"

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace sl {

enum class LoopAccept { main_reactor, reuseport, epoll_exclusive };
enum class Balance { round_robin, least };

struct LoopOptions {
    int threads = 0;  // loops; 0: one per CPU
    LoopAccept accept = LoopAccept::main_reactor;
    Balance balance = Balance::round_robin;
};

/// --threads, --accept main-reactor|reuseport|epoll-exclusive, --balance rr|least.
void add_loop_options(CLI::App& app, LoopOptions& options);
const Names<LoopAccept>& loop_accept_names();

class LoopThread {
public:
    /// Loop `index` serving with a copy of `base`, which it counts into its
    /// own counters (a row of STATUS) and names in WHO as worker=`index`.
    LoopThread(int index, const ServerContext& base, const EventOptions& events);
    LoopThread(const LoopThread&) = delete;
    LoopThread& operator=(const LoopThread&) = delete;

    int index() const { return index_; }
    EventLoop& loop() { return loop_; }
    EventServer& server() { return *server_; }
    ServerContext& context() { return ctx_; }
    Counters& counters() { return counters_; }
    const Counters& counters() const { return counters_; }
    LocalStore& own_store() { return own_store_; }
    pid_t tid() const { return tid_.load(std::memory_order_relaxed); }
    /// Connections open in this loop, and handed to it but not taken yet.
    uint32_t load() const;

    /// From any thread: a connection accepted elsewhere, to be served here.
    /// It is posted to the loop's queue, and the loop's eventfd wakes it.
    void hand_over(Fd conn);
    /// From the thread that hands over, after its last hand_over(): once it
    /// has been seen, the loop may end when its own connections have.
    void no_more_hand_overs();
    /// Stopping, no connection left, and nothing more can be handed over.
    bool finished() const { return server_->finished() && !expecting_; }

    /// Runs `body` in a new thread named "loop N" in traces; signals stay
    /// with the main thread. run_here() runs it in the calling thread instead.
    void start(const std::function<void(LoopThread&)>& body);
    void run_here(const std::function<void(LoopThread&)>& body);
    void join();

private:
    int index_;
    EventLoop loop_;
    Counters counters_;
    LocalStore own_store_;  // --state local and sharded: this loop's own counters of INCR
    ServerContext ctx_;
    std::unique_ptr<EventServer> server_;
    std::atomic<pid_t> tid_{0};
    std::atomic<uint32_t> on_the_way_{0};  // handed over, still in the queue
    bool expecting_ = true;  // hand-offs may still come; the loop's thread alone reads and writes it
    std::atomic<bool> done_{false};  // finished(), as its thread last saw it (LoopThreads::all_finished)
    std::thread thread_;
    friend class LoopThreads;
};

/// The loops of 07, and what concerns them all.
class LoopThreads {
public:
    LoopThreads(int count, const ServerContext& base, const EventOptions& events);

    size_t size() const { return loops_.size(); }
    LoopThread& operator[](size_t i) { return *loops_[i]; }
    auto begin() { return loops_.begin(); }
    auto end() { return loops_.end(); }

    /// The loop for the next connection: the next in turn, or the one with
    /// the fewest connections, open or on their way to it (read without a
    /// lock: a moment stale).
    LoopThread& pick(Balance balance);

    /// --state sharded: INCR and GET of a name go to the loop that owns it
    /// (a hash of the name), through that loop's queue; its answer comes
    /// back through the asking loop's queue. Each loop counts its own names
    /// in its own map: no lock anywhere (Seastar's submit_to); only a new
    /// name takes a place of the server's kMaxCounters, with one atomic add.
    void shard_counters();

    /// In loop `me`'s thread, every turn: is every loop done (stopping, no
    /// connection left, no hand-off to come)? A loop that is done goes on
    /// turning until all are: under --state sharded another loop's client
    /// may still ask it to count.
    bool all_finished(LoopThread& me);
    /// How long `me` may wait in epoll_wait: no limit while serving; once
    /// stopping 100 ms, since nothing wakes a loop when the last other one
    /// is done.
    static int wait_ms(LoopThread& me) { return me.server().stopping() ? 100 : -1; }

    /// STATS: every loop's counters summed; STATUS: a row per loop.
    Totals totals(std::string_view model) const;
    Status status(std::string_view model, std::string_view accept) const;

private:
    std::atomic<size_t> sharded_names_{0};  // --state sharded: names in all the shards (the limit is the server's)
    std::vector<std::unique_ptr<LoopThread>> loops_;  // after it: their stores point to it
    size_t next_ = 0;
    int64_t started_ms_;
};

}  // namespace sl
