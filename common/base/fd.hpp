// fd.hpp: ownership of a file descriptor in the type.
#pragma once

#include <unistd.h>

#include <utility>

namespace sl {

/// A move-only owner of one file descriptor; the destructor closes it.
/// Handlers take an Fd by value, so "who closes this socket" is visible at the
/// call site: `serve_connection(std::move(conn), ...)` gives it away.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }

    /// Gives up ownership without closing; the caller now owns the number.
    int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the current descriptor (if any) and owns `fd` instead.
    /// close(2) is not retried on EINTR: on Linux the descriptor is released
    /// even then, and a retry could close a number another thread just reused.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace sl
