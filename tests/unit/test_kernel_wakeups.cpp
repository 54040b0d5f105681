// The tracepoint filter herd gives the kernel: wakeups of these tasks only.
#include "kernel_wakeups.hpp"

#include <gtest/gtest.h>

TEST(KernelWakeups, FilterNamesEveryWokenPid) {
    EXPECT_EQ(lg::woken_filter({12}), "pid == 12");
    EXPECT_EQ(lg::woken_filter({12, 13, 40}), "pid == 12 || pid == 13 || pid == 40");
}
