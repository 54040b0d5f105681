// die() in a forked child must not run what the parent registered with
// atexit(): a worker that dies would otherwise flush the master's stdio
// buffers a second time, or run its cleanup.
#include "base/die.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace {

int g_report_fd = -1;  // where the atexit handler says it ran; -1 once the test is over

void say_atexit_ran() {
    if (g_report_fd >= 0) [[maybe_unused]] ssize_t n = ::write(g_report_fd, "x", 1);
}

TEST(Die, InAForkedChildExitsWithoutTheParentsAtexitHandlers) {
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    g_report_fd = report[1];
    static bool registered = false;
    if (!registered) registered = std::atexit(say_atexit_ran) == 0;
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) sl::die("a fatal error in a worker", EINVAL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    g_report_fd = -1;
    ::close(report[1]);
    char c;
    ssize_t n = ::read(report[0], &c, 1);
    ::close(report[0]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << "die() should exit with status 1";
    EXPECT_EQ(n, 0) << "a forked child's die() ran the parent's atexit handler: it must _exit";
}

}  // namespace
