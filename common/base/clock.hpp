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

/// `ms` from now on `clock`, as the absolute timespec that clock_nanosleep
/// (TIMER_ABSTIME) and the pthread timed waits take: a wait cut short by a
/// signal resumes toward the same deadline.
inline timespec clock_after_ms(clockid_t clock, uint64_t ms) {
    timespec t{};
    ::clock_gettime(clock, &t);
    t.tv_sec += static_cast<time_t>(ms / 1000);
    t.tv_nsec += static_cast<long>(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec += 1;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/// A struct timeval (getrusage, wait4) in seconds.
inline double to_seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

}  // namespace sl
