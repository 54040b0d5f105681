#include "process/threads.hpp"

#include "base/die.hpp"
#include "base/signals.hpp"
#include "base/trace.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace sl {

const Names<ThreadAccept>& thread_accept_modes() {
    static const Names<ThreadAccept> all = {
        {"each", ThreadAccept::each}, {"mutex", ThreadAccept::mutex}, {"queue", ThreadAccept::queue}};
    return all;
}

void add_thread_options(CLI::App& app, ThreadOptions& o) {
    app.add_option("--threads", o.threads, "serving threads per worker process")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    add_enum_option(app, "--thread-accept", o.mode, thread_accept_modes(),
                    "how a worker's threads get connections: " + name_list(thread_accept_modes()));
}

class WorkerThreads {
public:
    WorkerThreads(Scoreboard& board, const WorkerId& me, AcceptStrategy& acceptor, const ThreadOptions& options)
        : board_(board), me_(me), acceptor_(acceptor), options_(options), worker_(board.slot(me.slot)),
          done_(static_cast<size_t>(options.threads) + 1) {}

    int run(const std::function<void(WorkerThread&)>& thread_main) {
        const int n = options_.threads;
        // Ready before any thread runs: a thread that is quick to get a
        // connection marks the worker busy, and this must not overwrite that.
        worker_.set_state(WorkerState::idle);
        for (int t = 0; t < n; ++t) {
            start(t, [this, t, &thread_main] {
                ThreadSlot& slot = board_.thread(me_.slot, t);
                slot.tid = static_cast<pid_t>(::syscall(SYS_gettid));
                slot.set_state(WorkerState::idle);
                SL_TRACE("thread {} started", t);
                WorkerThread me(*this, slot);
                thread_main(me);
            });
        }
        if (options_.mode == ThreadAccept::queue) start(n, [this] { queue_listener(); });

        // The main thread supervises: it sleeps until a stop, then makes sure every thread sees it.
        while (!stop_requested()) {
            pollfd p{stop_fd(), POLLIN, 0};
            ::poll(&p, 1, -1);
        }
        worker_.set_state(WorkerState::exiting);
        wake_everyone();
        for (auto& t : threads_) t.join();
        return 0;
    }

    // ---- what a WorkerThread asks of its process ----

    Fd next_connection() {
        switch (options_.mode) {
        case ThreadAccept::each:
            return acceptor_.accept(worker_.accept);
        case ThreadAccept::mutex: {
            std::unique_lock<std::mutex> lock(accept_mutex_, std::try_to_lock);
            if (!lock.owns_lock()) {
                worker_.accept.lock_waits.fetch_add(1, std::memory_order_relaxed);
                lock.lock();
            }
            if (stop_requested()) return Fd();
            return acceptor_.accept(worker_.accept);
        }
        case ThreadAccept::queue:
            return take_from_queue(/*leaving=*/false);
        }
        return Fd();
    }

    Fd leftover() {
        if (options_.mode == ThreadAccept::queue) return take_from_queue(/*leaving=*/true);
        return acceptor_.leftover();
    }

    uint64_t begin_connection(ThreadSlot& thread) {
        thread.set_state(WorkerState::busy);
        if (++busy_ == options_.threads) worker_.set_state(WorkerState::busy);  // idle again when one frees
        thread.counters.connections.fetch_add(1, std::memory_order_relaxed);
        return ++serial_;
    }

    void end_connection(ThreadSlot& thread) {
        if (busy_-- == options_.threads && !stop_requested()) worker_.set_state(WorkerState::idle);
        thread.set_state(WorkerState::idle);
    }

private:
    template <class Body>
    void start(int index, Body body) {
        try {
            threads_.emplace_back([this, index, body] {
                body();
                done_[static_cast<size_t>(index)] = true;
            });
        } catch (const std::system_error& e) {  // EAGAIN: out of threads (RLIMIT_NPROC, threads-max)
            die_now("pthread_create", e.code().value());  // other threads run: no exit() here
        }
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

    // --thread-accept queue: one listener accepts, the pool takes from a queue.
    void queue_listener() {
        while (!stop_requested()) {
            {
                // Accept only for a thread that is idle and not already promised a connection.
                std::unique_lock<std::mutex> lock(queue_mutex_);
                idle_or_stopping_.wait(lock, [this] { return idle_ > queue_.size() || stop_requested(); });
            }
            if (stop_requested()) break;
            Fd conn = acceptor_.accept(worker_.accept);
            if (!conn) continue;
            std::lock_guard<std::mutex> lock(queue_mutex_);
            queue_.push_back(std::move(conn));
            work_or_stopping_.notify_one();
        }
        // Leaving: what is already this process's goes to the queue too.
        while (Fd conn = acceptor_.leftover()) {
            std::lock_guard<std::mutex> lock(queue_mutex_);
            queue_.push_back(std::move(conn));
        }
        std::lock_guard<std::mutex> lock(queue_mutex_);
        listener_done_ = true;
        work_or_stopping_.notify_all();
    }

    // A queued connection. While serving: wait for one (empty on a stop).
    // While leaving: what is left once the listener has finished.
    Fd take_from_queue(bool leaving) {
        std::unique_lock<std::mutex> lock(queue_mutex_);
        if (!leaving) {
            ++idle_;
            idle_or_stopping_.notify_one();
            work_or_stopping_.wait(lock, [this] { return !queue_.empty() || stop_requested(); });
            --idle_;
        } else {
            work_or_stopping_.wait(lock, [this] { return !queue_.empty() || listener_done_; });
        }
        if (queue_.empty()) return Fd();
        Fd conn = std::move(queue_.front());
        queue_.pop_front();
        return conn;
    }

    Scoreboard& board_;
    WorkerId me_;
    AcceptStrategy& acceptor_;
    const ThreadOptions& options_;
    WorkerSlot& worker_;
    std::vector<std::thread> threads_;
    std::vector<std::atomic<bool>> done_;
    std::atomic<int> busy_{0};
    std::atomic<uint64_t> serial_{0};  // this process's connection serial (WHO's conn=)
    std::mutex accept_mutex_;          // --thread-accept mutex
    std::mutex queue_mutex_;           // --thread-accept queue: guards queue_, idle_, listener_done_
    std::condition_variable idle_or_stopping_;
    std::condition_variable work_or_stopping_;
    std::deque<Fd> queue_;
    size_t idle_ = 0;
    bool listener_done_ = false;
};

Fd WorkerThread::next_connection() {
    return pool_.next_connection();
}

Fd WorkerThread::leftover() {
    return pool_.leftover();
}

uint64_t WorkerThread::begin_connection() {
    return pool_.begin_connection(slot_);
}

void WorkerThread::end_connection() {
    pool_.end_connection(slot_);
}

Counters& WorkerThread::counters() {
    return slot_.counters;
}

int run_worker_threads(Scoreboard& board, const WorkerId& me, AcceptStrategy& acceptor, const ThreadOptions& options,
                       const std::function<void(WorkerThread&)>& thread_main) {
    return WorkerThreads(board, me, acceptor, options).run(thread_main);
}

}  // namespace sl
