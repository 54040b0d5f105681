// clock.hpp: CLOCK_MONOTONIC in milliseconds, for deadlines and uptime.
#pragma once

#include <cstdint>
#include <ctime>

namespace sl {

/// Never jumps with the wall clock (date, NTP), so deadlines built on it hold.
inline int64_t monotonic_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace sl
