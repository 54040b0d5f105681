// clock.hpp: CLOCK_MONOTONIC in milliseconds, for deadlines and uptime.
#pragma once

#include <sys/time.h>

#include <cstdint>
#include <ctime>

namespace sl {

/// Never jumps with the wall clock (date, NTP), so deadlines built on it hold.
inline int64_t monotonic_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

/// A struct timeval (getrusage, wait4) in seconds.
inline double to_seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace sl
