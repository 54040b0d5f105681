// ring.hpp: one io_uring, set up for a server, and told apart from a machine
// that cannot give one.
//
// A ring is two queues in memory the kernel and the program share: the
// program writes requests into the submission queue (SQEs: "receive on this
// socket", "accept on that one"), one io_uring_enter(2) hands the kernel all
// of them, and the kernel writes a completion (a CQE: what happened, and the
// request's user_data) into the completion queue when each is done. The
// same system call can wait for completions, with a timeout.
//
// What the options switch on, one by one (docs/08-io-uring.md measures each):
//   multishot        one accept request yields a connection per completion,
//                    one receive request data per completion, until told
//                    otherwise; received data lands in *provided buffers*,
//                    taken by the kernel from a ring of buffers the program
//                    hands back once it has copied them out
//   fixed files      connections accepted straight into the ring's table of
//                    files: no descriptor, and no reference count taken per
//                    request on the file
//   defer taskrun    IORING_SETUP_DEFER_TASKRUN | SINGLE_ISSUER (Linux 6.1):
//                    the kernel finishes requests only when the program
//                    waits, in its thread, instead of interrupting it
#pragma once

#include "base/cli.hpp"

#include <liburing.h>

#include <cstdint>
#include <string>

namespace sl {

struct RingOptions {
    bool multishot = true;      // --mode multishot (default) or oneshot
    bool fixed_files = true;    // multishot: accept into the ring's file table
    bool defer_taskrun = true;  // IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER where the kernel has them
};

/// --mode oneshot|multishot, --no-fixed-files, --no-defer-taskrun.
void add_ring_options(CLI::App& app, RingOptions& options);

/// Prints `uring: io_uring is not available here: <why>` and exits with
/// status 2, the status every tool and test reads as "cannot run here".
[[noreturn]] void uring_unavailable(const std::string& why);

class Ring {
public:
    /// Sets up the ring and what `options` ask for, or exits through
    /// uring_unavailable() naming what is missing: io_uring itself (an old
    /// kernel, a kernel built without it, kernel.io_uring_disabled, a
    /// seccomp filter), or a feature the mode needs.
    explicit Ring(const RingOptions& options);
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    const RingOptions& options() const { return options_; }
    /// What the setup got, for the start-up trace: "DEFER_TASKRUN, fixed files, 1024 buffers of 4096".
    const std::string& description() const { return description_; }

    /// A free SQE. When the queue is full, what is queued is submitted first.
    io_uring_sqe* sqe();

    /// One io_uring_enter(2): submits what this turn queued and waits until
    /// at least one completion is there, or `timeout_ms` (-1: no limit).
    /// EINTR (a signal) and the timeout return with nothing new.
    void submit_and_wait(int timeout_ms);

    /// Calls `handle(cqe)` for each completion ready, then marks them seen.
    template <class Handle>
    void completions(Handle&& handle) {
        unsigned head, seen = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            handle(*cqe);
            ++seen;
        }
        io_uring_cq_advance(&ring_, seen);
    }

    // ---- provided buffers (multishot receive) ----
    static constexpr unsigned kBufferGroup = 0;
    static constexpr unsigned kBuffers = 1024;     // a power of two
    static constexpr unsigned kBufferSize = 4096;
    /// The buffer a completion names (IORING_CQE_F_BUFFER: its id in the flags' upper bits).
    const char* buffer(unsigned id) const { return buffers_ + static_cast<size_t>(id) * kBufferSize; }
    /// Hands buffer `id` back to the kernel. Every buffer a completion
    /// brought must come back, or the ring runs dry (ENOBUFS).
    void give_back(unsigned id);

    /// How many connections the fixed file table holds (0 without fixed files).
    unsigned fixed_slots() const { return fixed_slots_; }

private:
    void setup_buffer_ring();

    RingOptions options_;
    io_uring ring_{};
    std::string description_;
    io_uring_buf_ring* buf_ring_ = nullptr;  // the ring of buffer descriptors (page-aligned, ours)
    char* buffers_ = nullptr;                // kBuffers x kBufferSize bytes
    unsigned fixed_slots_ = 0;
};

}  // namespace sl
