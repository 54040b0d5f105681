// offload.hpp: WORK on threads, so that it does not stall the event loop
// (05 and 06 --offload N).
//
// A CPU-bound request run on the loop's thread stops every other client
// until it is done: that is the lesson of `WORK` in 05. libuv's answer is a
// pool of threads (`uv_queue_work`, 4 by default) that run the work and hand
// the result back to the loop through an async handle, an eventfd on Linux.
// This is the same: submit() queues a job, a pool thread runs it, and the
// completion is posted to the loop (EventLoop::post, which writes the
// eventfd; 08's ring has its own post), so the answer is sent from the
// loop's thread like every other.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sl {

class WorkPool {
public:
    /// How a pool thread hands a function to the loop's thread (EventLoop::post).
    using Post = std::function<void(std::function<void()>)>;

    /// Starts `threads` threads (> 0) that post their results with `post`.
    WorkPool(Post post, int threads);
    /// Stops the threads, dropping the jobs no thread has started (the
    /// server has ended: their connections are closed), and joins them; a
    /// WORK already running is finished first.
    ~WorkPool();
    WorkPool(const WorkPool&) = delete;
    WorkPool& operator=(const WorkPool&) = delete;

    /// Runs WORK `steps` on a pool thread; `done` then runs on the loop's
    /// thread with the answer line.
    void submit(uint64_t steps, std::function<void(std::string answer)> done);

private:
    void run();

    struct Job {
        uint64_t steps;
        std::function<void(std::string)> done;
    };
    Post post_;
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace sl
