#include "uring/ring.hpp"

#include "base/die.hpp"
#include "base/limits.hpp"
#include "base/trace.hpp"

#include <sys/mman.h>
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace sl {
namespace {

// The running kernel's version, as major * 100 + minor (6.1 -> 601).
int kernel_version() {
    utsname u{};
    if (::uname(&u) != 0) return 0;
    int major = 0, minor = 0;
    std::sscanf(u.release, "%d.%d", &major, &minor);
    return major * 100 + minor;
}

std::string kernel_release() {
    utsname u{};
    return ::uname(&u) == 0 ? u.release : "?";
}

// Why io_uring_queue_init failed with `err`, in words a reader can act on.
std::string why_no_ring(int err) {
    if (err == ENOSYS) return "the kernel has no io_uring (older than Linux 5.1, or built without CONFIG_IO_URING)";
    if (err == EPERM || err == EACCES) {
        std::ifstream sysctl("/proc/sys/kernel/io_uring_disabled");
        int disabled = 0;
        if (sysctl >> disabled && disabled == 2) return "kernel.io_uring_disabled is 2: io_uring is off for everyone";
        if (disabled == 1)
            return "kernel.io_uring_disabled is 1: only root and the group kernel.io_uring_group may use io_uring";
        return "io_uring_setup was refused (EPERM): a seccomp filter forbids it, as a container's default profile does";
    }
    if (err == ENOMEM) return "io_uring_setup: out of memory (RLIMIT_MEMLOCK on a kernel older than 5.12?)";
    return fmt::format("io_uring_setup: {}", std::strerror(err));
}

}  // namespace

void add_ring_options(CLI::App& app, RingOptions& o) {
    add_enum_option(app, "--mode", o.multishot, Names<bool>{{"oneshot", false}, {"multishot", true}},
                    "oneshot: one accept, receive or send request at a time, armed again by hand (05 translated); "
                    "multishot: one request yields many completions, with provided buffers");
    app.add_flag("--no-fixed-files{false}", o.fixed_files, "multishot: plain descriptors, not the ring's file table");
    app.add_flag("--no-defer-taskrun{false}", o.defer_taskrun,
                 "no IORING_SETUP_DEFER_TASKRUN | SINGLE_ISSUER: the kernel completes work whenever it likes");
}

void uring_unavailable(const std::string& why) {
    log("io_uring is not available here: {}", why);
    std::exit(2);
}

Ring::Ring(const RingOptions& options) : options_(options) {
    if (options_.multishot && kernel_version() < 600)
        uring_unavailable(fmt::format("--mode multishot needs Linux 6.0 (multishot receive); this is {} "
                                      "(try --mode oneshot)",
                                      kernel_release()));
    io_uring_params params{};
    params.flags = IORING_SETUP_SUBMIT_ALL;  // a request that fails at submission does not hold back the rest (5.18)
    std::string features;
    if (options_.defer_taskrun && kernel_version() >= 601) {
        params.flags |= IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
        features = "DEFER_TASKRUN | SINGLE_ISSUER";
    } else {
        // Without DEFER_TASKRUN, the kernel runs completion work by
        // interrupting the task; COOP_TASKRUN (5.19) lets it wait for the
        // next transition to the kernel instead.
        params.flags |= IORING_SETUP_COOP_TASKRUN;
        features = options_.defer_taskrun ? "COOP_TASKRUN (no DEFER_TASKRUN before Linux 6.1)" : "COOP_TASKRUN";
    }
    int rc = io_uring_queue_init_params(4096, &ring_, &params);
    if (rc == -EINVAL) {  // an older kernel refusing a flag: the plainest ring
        params = io_uring_params{};
        rc = io_uring_queue_init_params(4096, &ring_, &params);
        features = "no setup flags";
    }
    if (rc < 0) uring_unavailable(why_no_ring(-rc));
    if (options_.multishot) {
        setup_buffer_ring();
        features += fmt::format(", {} provided buffers of {} bytes", kBuffers, kBufferSize);
        if (options_.fixed_files) {
            // As many slots as this process may have descriptors (a fixed
            // file counts against RLIMIT_NOFILE too), at most 65536.
            fixed_slots_ = static_cast<unsigned>(std::min(raise_descriptor_limit(), 65536));
            if (int err = io_uring_register_files_sparse(&ring_, fixed_slots_); err < 0)
                uring_unavailable(fmt::format("io_uring_register_files_sparse: {} (a sparse file table needs "
                                              "Linux 5.19; try --no-fixed-files)",
                                              std::strerror(-err)));
            features += fmt::format(", a table of {} fixed files", fixed_slots_);
        }
    }
    description_ = features;
}

Ring::~Ring() {
    io_uring_queue_exit(&ring_);
    if (buf_ring_) ::munmap(buf_ring_, kBuffers * sizeof(io_uring_buf));
    std::free(buffers_);
}

// liburing 2.3 has no io_uring_setup_buf_ring (2.4): the ring of buffer
// descriptors is page-aligned memory of ours, registered with
// io_uring_register_buf_ring (Linux 5.19), then filled.
void Ring::setup_buffer_ring() {
    size_t bytes = kBuffers * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap buffer ring");
    buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uintptr_t>(buf_ring_);
    reg.ring_entries = kBuffers;
    reg.bgid = kBufferGroup;
    if (int err = io_uring_register_buf_ring(&ring_, &reg, 0); err < 0)
        uring_unavailable(fmt::format("io_uring_register_buf_ring: {} (provided buffer rings need Linux 5.19; "
                                      "try --mode oneshot)",
                                      std::strerror(-err)));
    buffers_ = static_cast<char*>(std::aligned_alloc(4096, static_cast<size_t>(kBuffers) * kBufferSize));
    if (buffers_ == nullptr) die("aligned_alloc provided buffers", ENOMEM);
    io_uring_buf_ring_init(buf_ring_);
    for (unsigned id = 0; id < kBuffers; ++id)
        io_uring_buf_ring_add(buf_ring_, buffers_ + static_cast<size_t>(id) * kBufferSize, kBufferSize,
                              static_cast<unsigned short>(id), io_uring_buf_ring_mask(kBuffers), static_cast<int>(id));
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(kBuffers));
}

void Ring::give_back(unsigned id) {
    io_uring_buf_ring_add(buf_ring_, buffers_ + static_cast<size_t>(id) * kBufferSize, kBufferSize,
                          static_cast<unsigned short>(id), io_uring_buf_ring_mask(kBuffers), 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
}

io_uring_sqe* Ring::sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s != nullptr) return s;
    io_uring_submit(&ring_);  // the queue is full: hand it to the kernel, which empties it
    s = io_uring_get_sqe(&ring_);
    if (s == nullptr) die("io_uring_get_sqe: the submission queue stays full", EBUSY);
    return s;
}

void Ring::submit_and_wait(int timeout_ms) {
    io_uring_cqe* cqe = nullptr;
    int rc;
    if (timeout_ms < 0) {
        rc = io_uring_submit_and_wait(&ring_, 1);
    } else {
        // The wait's timeout rides on the same system call (IORING_ENTER_EXT_ARG, Linux 5.11).
        __kernel_timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000LL};
        rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN && rc != -EBUSY) die("io_uring_enter", -rc);
}

}  // namespace sl
