#include "threads.hpp"

#include "signals.hpp"
#include "trace.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace sl {

const std::vector<std::string>& thread_accept_names() {
    static const std::vector<std::string> names = {"each", "mutex", "queue"};
    return names;
}

namespace {

class WorkerThreads {
public:
    WorkerThreads(Scoreboard& board, int slot, AcceptStrategy& acceptor, const ThreadOptions& options,
                  const ServerContext& context)
        : board_(board), slot_(slot), acceptor_(acceptor), options_(options), context_(context),
          me_(board.slot(slot)), done_(static_cast<size_t>(options.threads) + 1) {}

    int run() {
        const int n = options_.threads;
        // Ready before any thread runs: a thread that is quick to get a
        // connection marks the worker busy, and this must not overwrite that.
        me_.set_state(WorkerState::idle);
        if (options_.mode == "queue") {
            for (int t = 0; t < n; ++t) start(t, [this, t] { queue_worker(t); });
            start(n, [this] { queue_listener(); });
        } else {
            for (int t = 0; t < n; ++t) start(t, [this, t] { accepting_worker(t); });
        }

        // The main thread supervises: it sleeps until a stop (or --max-requests, which a thread turns into one).
        while (!stop_requested()) {
            pollfd p{stop_fd(), POLLIN, 0};
            ::poll(&p, 1, -1);
        }
        me_.set_state(WorkerState::exiting);
        wake_everyone();
        for (auto& t : threads_) t.join();
        return 0;
    }

private:
    template <class Body>
    void start(int index, Body body) {
        threads_.emplace_back([this, index, body] {
            body();
            done_[static_cast<size_t>(index)] = true;
        });
    }

    // Condition variables are woken by notify; a thread blocked in accept()
    // only by a signal sent to it. Repeat until all have left (one may have
    // been about to block when the previous round came).
    void wake_everyone() {
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(queue_mutex_);
                idle_or_stopping_.notify_all();
                work_or_stopping_.notify_all();
            }
            bool all_done = true;
            for (size_t i = 0; i < threads_.size(); ++i) {
                if (done_[i]) continue;
                all_done = false;
                ::pthread_kill(threads_[i].native_handle(), SIGTERM);
            }
            if (all_done) return;
            ::usleep(50000);
        }
    }

    ThreadSlot& enter(int t) {
        ThreadSlot& slot = board_.thread(slot_, t);
        slot.tid = static_cast<pid_t>(::syscall(SYS_gettid));
        slot.set_state(WorkerState::idle);
        trace("thread {} started", t);
        return slot;
    }

    void serve(ThreadSlot& thread, Fd conn) {
        thread.set_state(WorkerState::busy);
        if (++busy_ == options_.threads) me_.set_state(WorkerState::busy);  // idle again when one frees
        ServerContext ctx = context_;
        ctx.counters = &thread.counters;
        uint64_t serial = ++serial_;
        thread.counters.connections.fetch_add(1, std::memory_order_relaxed);
        serve_connection(std::move(conn), ctx, serial);
        if (busy_-- == options_.threads && !stop_requested()) me_.set_state(WorkerState::idle);
        thread.set_state(WorkerState::idle);
        // --max-requests: the whole process leaves, gracefully, as a stop does.
        if (board_.recycle_due(slot_) && !stop_requested()) {
            trace("leaving after {} requests (--max-requests)", board_.counts(slot_).requests);
            request_stop();
        }
    }

    // --thread-accept each | mutex: every thread accepts for itself.
    void accepting_worker(int t) {
        ThreadSlot& thread = enter(t);
        while (!stop_requested()) {
            Fd conn;
            if (options_.mode == "mutex") {
                std::unique_lock<std::mutex> lock(accept_mutex_, std::try_to_lock);
                if (!lock.owns_lock()) {
                    me_.lock_waits.fetch_add(1, std::memory_order_relaxed);
                    lock.lock();
                }
                if (stop_requested()) break;
                conn = acceptor_.accept(me_);
            } else {
                conn = acceptor_.accept(me_);
            }
            if (conn) serve(thread, std::move(conn));
        }
    }

    // --thread-accept queue: one listener, the pool takes from a queue.
    void queue_listener() {
        while (!stop_requested()) {
            {
                // Accept only for a thread that is idle and not already promised a connection.
                std::unique_lock<std::mutex> lock(queue_mutex_);
                idle_or_stopping_.wait(lock, [this] { return idle_ > queue_.size() || stop_requested(); });
            }
            if (stop_requested()) break;
            Fd conn = acceptor_.accept(me_);
            if (!conn) continue;
            std::lock_guard<std::mutex> lock(queue_mutex_);
            queue_.push_back(std::move(conn));
            work_or_stopping_.notify_one();
        }
    }

    void queue_worker(int t) {
        ThreadSlot& thread = enter(t);
        for (;;) {
            Fd conn;
            {
                std::unique_lock<std::mutex> lock(queue_mutex_);
                ++idle_;
                idle_or_stopping_.notify_one();
                work_or_stopping_.wait(lock, [this] { return !queue_.empty() || stop_requested(); });
                --idle_;
                if (queue_.empty()) return;  // stopping, and nothing left to serve
                conn = std::move(queue_.front());
                queue_.pop_front();
            }
            serve(thread, std::move(conn));
        }
    }

    Scoreboard& board_;
    int slot_;
    AcceptStrategy& acceptor_;
    const ThreadOptions& options_;
    const ServerContext& context_;
    WorkerSlot& me_;
    std::vector<std::thread> threads_;
    std::vector<std::atomic<bool>> done_;
    std::atomic<int> busy_{0};
    std::atomic<uint64_t> serial_{0};  // this process's connection serial (WHO's conn=)
    std::mutex accept_mutex_;          // --thread-accept mutex
    std::mutex queue_mutex_;           // --thread-accept queue: guards queue_ and idle_
    std::condition_variable idle_or_stopping_;
    std::condition_variable work_or_stopping_;
    std::deque<Fd> queue_;
    size_t idle_ = 0;
};

}  // namespace

int run_worker_threads(Scoreboard& board, int slot, AcceptStrategy& acceptor, const ThreadOptions& options,
                       const ServerContext& context) {
    return WorkerThreads(board, slot, acceptor, options, context).run();
}

}  // namespace sl
