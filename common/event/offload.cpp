#include "event/offload.hpp"

#include "base/die.hpp"
#include "base/signals.hpp"
#include "protocol/commands.hpp"

#include <pthread.h>

#include <csignal>
#include <system_error>

namespace sl {

WorkPool::WorkPool(Post post, int threads) : post_(std::move(post)) {
    // The pool's threads take no signals: a SIGTERM must reach the loop's
    // thread, whose epoll_wait it interrupts. Threads inherit the mask of the
    // thread that creates them, so block everything around their creation.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
    } catch (const std::system_error& e) {  // EAGAIN: out of threads (RLIMIT_NPROC, threads-max)
        die_now("pthread_create", e.code().value());  // other pool threads may run: no exit() here
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

WorkPool::~WorkPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : threads_) t.join();
}

void WorkPool::submit(uint64_t steps, std::function<void(std::string)> done) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.push_back({steps, std::move(done)});
    }
    ready_.notify_one();
}

void WorkPool::run() {
    // WORK needs nothing of the server: no identity, no totals.
    struct NoServer : ServerView {
        Identity identity() const override { return {}; }
        Totals totals() const override { return {}; }
        Status status() const override { return {}; }
    } no_server;
    for (;;) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            // Stopping: the server has ended, so every connection has closed and
            // what is still queued has nobody to answer. Computing it would only
            // delay the exit (a WORK may take seconds).
            if (stopping_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        Command work;
        work.verb = Verb::work;
        work.number = job.steps;
        std::string answer = execute(work, no_server).line;
        post_([done = std::move(job.done), answer = std::move(answer)]() mutable { done(std::move(answer)); });
    }
}

}  // namespace sl
